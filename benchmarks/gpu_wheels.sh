#!/usr/bin/env bash
# Run HERE (a machine with PyPI), in the repo root, before a GPU check: the wheels the GPU machine lacks
# (its image has torch, transformers, typer, rich, safetensors, huggingface-hub; not these), for its
# Python 3.12 on x86-64, into .whl/ (ignored by git; carried with `carry: [".whl"]`).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
mkdir -p .whl
for pkg in diffusers==0.42.1 torchao==0.18.0 imageio-ffmpeg==0.6.0 importlib-metadata; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl "$pkg"
done
ls -la .whl
