#!/usr/bin/env bash
# The prepared GPU check: run on a CUDA machine with no network, in the repo root, after
# `bash benchmarks/gpu_wheels.sh` here (diffusers, torchao, imageio-ffmpeg travel as wheels in .whl/).
#
#   device run: bash benchmarks/gpu_check.sh            (carry: [".whl"], timeout 560 s)
#
# Under 9 minutes on one H100/H200: required steps first, optional ones only while the deadline allows
# (DEADLINE_S, default 500 s). Each step's output goes to $OUT/<step>.log (or /tmp); the summary table at
# the end says what passed, failed or was skipped, with the numbers the steps printed.
set -u
# `gpu_check.sh bench ARGS...`: one `longlive bench` of the 1.3B architecture at 832x480 on CUDA (BENCH_MODEL,
# BENCH_DEVICE, BENCH_RESOLUTION change that: the 5B step sets longlive-2.0-5b at 1280x704; a test runs it on the
# CPU); its JSON, then one summary line (the line the table shows).
if [ "${1:-}" = bench ]; then
  shift
  python3 -m longlive_cli bench -m "${BENCH_MODEL:-longlive-1.3b}" --device "${BENCH_DEVICE:-cuda}" \
    --resolution "${BENCH_RESOLUTION:-832x480}" --json "$@" | python3 -c '
import json, sys
text = sys.stdin.read()
print(text, end="")
if not text.strip():  # bench failed: its own message (on stderr, in the log) stays the last line
    sys.exit(0)
r = json.loads(text.strip().splitlines()[-1])
lat, fps, peak = r["block_latency_s"], r["fps_steady"], r["peak_memory_mib"]
line = "%.1f FPS (denoise %.1f, end to end %.1f), block %.0f/%.0f ms, first frame %.1f/%.2f s, peak %.2f GiB" % (
    fps, r["fps_denoise"], r["fps_end_to_end"], lat["median"] * 1e3, lat["p90"] * 1e3, r["cold_start_s"],
    r["time_to_first_frame_s"], peak / 1024)
if "compare_plain" in r:
    line += ", %.2fx plain, diff %.1e" % (r["compare_plain"]["speed_ratio"], r["compare_plain"]["max_rel_latent_diff"])
print(line + ("; FELL BACK: %s" % r["fell_back"] if r["fell_back"] else ""))'
  exit "${PIPESTATUS[0]}"
fi
START=$(date +%s)
DEADLINE_S=${DEADLINE_S:-500}
LOGS=${OUT:-/tmp/gpu_check}
mkdir -p "$LOGS"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
SUMMARY=()

left() { echo $(( DEADLINE_S - ($(date +%s) - START) )); }

# step NAME NEED_S REQUIRED(yes/no) COMMAND...: run when required or when NEED_S seconds are left.
step() {
  local name=$1 need=$2 required=$3; shift 3
  if [ "$required" != yes ] && [ "$(left)" -lt "$need" ]; then
    SUMMARY+=("$(printf '%-28s %-8s %s' "$name" skipped "deadline ($(left) s left, needs ~$need s)")"); return
  fi
  local t0=$(date +%s)
  timeout "$(( $(left) > need ? $(left) : need ))" "$@" >"$LOGS/$name.log" 2>&1
  local rc=$? dt=$(( $(date +%s) - t0 ))
  local result=$([ $rc -eq 0 ] && echo ok || echo "FAIL($rc)")
  SUMMARY+=("$(printf '%-28s %-8s %4d s  %s' "$name" "$result" "$dt" "$(tail -n 1 "$LOGS/$name.log" | cut -c1-220)")")
}

step environment 20 yes python3 - <<'PY'
import torch, platform, importlib
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "cudnn", torch.backends.cudnn.version(), "gpu", torch.cuda.get_device_name(0),
      "cc", torch.cuda.get_device_capability(0))
for m in ("diffusers", "torchao", "imageio_ffmpeg", "transformers"):
    print(m, getattr(importlib.import_module(m), "__version__", "?"))
PY

step attention_kernels 60 yes python3 - <<'PY'
# The real pass shape: 4680 queries x 18720 keys, 12 heads x 128, bf16; with and without the filling mask.
import torch
from diffusers.models.attention_dispatch import dispatch_attention_fn
from longlive_cli.runtime import ATTENTION_BACKENDS
q = torch.randn(1, 4680, 12, 128, device="cuda", dtype=torch.bfloat16)
k = torch.randn(1, 18720, 12, 128, device="cuda", dtype=torch.bfloat16)
mask = torch.ones(1, 1, 1, 18720, dtype=torch.bool, device="cuda"); mask[..., 9360:] = False
ref = dispatch_attention_fn(q, k, k, backend="_native_math").float()
rows = []
for name, backend in ATTENTION_BACKENDS.items():
    for masked in (False, True):
        try:
            out = dispatch_attention_fn(q, k, k, attn_mask=mask if masked else None, backend=backend)
            torch.cuda.synchronize(); ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
            ev[0].record()
            for _ in range(10): dispatch_attention_fn(q, k, k, attn_mask=mask if masked else None, backend=backend)
            ev[1].record(); torch.cuda.synchronize()
            ms = ev[0].elapsed_time(ev[1]) / 10
            err = "" if masked else f" maxdiff {(out.float() - ref).abs().max().item():.3e}"
            rows.append(f"{name}{' +mask' if masked else ''}: {ms:.2f} ms{err}")
        except Exception as e:
            why = " ".join(str(e).split())[:60]
            rows.append(f"{name}{' +mask' if masked else ''}: unavailable ({type(e).__name__}: {why})")
print("\n".join(rows)); print(" | ".join(rows))
PY

step conv3d_bf16 30 yes python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py -k conv3d
step gpu_tests 180 yes python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py
step tiny_cli_defaults 90 yes sh -c 'printf "duration: 4s\nprompts:\n  - {at: 0s, text: a}\n  - {at: 2s, text: b}\n" > /tmp/s.yaml && python3 -m longlive_cli generate /tmp/s.yaml -o /tmp/s.mp4 -m tiny-random -f'
step bench_13b_bf16_fast 150 yes bash "$0" bench --blocks 16 --compare-plain
# Optional: LongLive 2.0 (issue 22), the 5B architecture with random bf16 weights at its native 1280x704
# (10 GB of weights, a 9.7 GiB KV cache; 6 blocks: the 32-frame window is full from block 4 on).
step bench_5b_bf16_1280x704 150 no env BENCH_MODEL=longlive-2.0-5b BENCH_RESOLUTION=1280x704 \
  bash "$0" bench --blocks 6
# Optional, most telling first (issue 15 point 9): does overlapped decode pay, do the VAE's speed options.
step bench_13b_no_overlap 80 no bash "$0" bench --blocks 12 --no-overlap
step vae_speed_832x480 120 no python3 benchmarks/vae_speed.py --device cuda --dtype bf16 --blocks 4 --rounds 3
step bench_13b_int8_w8a8 90 no bash "$0" bench --blocks 12 --quantize int8
step bench_13b_fp8 90 no bash "$0" bench --blocks 12 --quantize fp8
step bench_13b_sdpa_cudnn 80 no bash "$0" bench --blocks 12 --attention sdpa-cudnn
step bench_13b_compile_decoder 120 no bash "$0" bench --blocks 12 --compile-decoder
step bench_13b_int8_w8 90 no bash "$0" bench --blocks 12 --quantize int8-weights
step flat_memory_10_vs_60 120 no python3 benchmarks/flat_cost.py --arch wan-1.3b --device cuda --resolution 832x480 --durations 10 60

echo
echo "GPU check summary ($(( $(date +%s) - START )) s; logs in $LOGS)"
printf '%s\n' "${SUMMARY[@]}"
