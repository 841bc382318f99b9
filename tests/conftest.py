"""Test-wide safety: no test reaches the network or the user's caches."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path_factory, monkeypatch):
    """Point the Hugging Face cache and the conversion cache at empty folders, offline."""
    from huggingface_hub import constants

    root = tmp_path_factory.mktemp("caches")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LONGLIVE_CACHE", str(root / "longlive"))
    return root


def populate_hub_cache(repo: str, files: dict[str, Path], *, commit: str = "0" * 40) -> Path:
    """Lay ``files`` (path in repo -> local file or folder) out as huggingface-hub's cache holds a
    downloaded snapshot of ``repo`` (``models--owner--name/snapshots/<commit>/...``, ``refs/main``)."""
    from huggingface_hub import constants

    root = Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / commit
    for name, src in files.items():
        dest = snapshot / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if Path(src).is_dir():
            shutil.copytree(src, dest, dirs_exist_ok=True)
        else:
            shutil.copyfile(src, dest)
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(commit)
    return snapshot
