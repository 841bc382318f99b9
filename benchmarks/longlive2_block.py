"""Cost of one LongLive 2.0 block (Wan2.2-TI2V-5B made causal) with random weights, and the FLOP count.

Runs the project's LongLive 2.0 sampler (``longlive_cli.samplers.longlive2.sample_longlive2``: 4 flow-UniPC
passes + the clean pass over 8 latent frames, KV cache of 32 frames with a sink of 8) on the real 5B
transformer architecture (``longlive_cli.models.wan22.wan22_5b_transformer_config``: dim 3072, 24 heads x
128, FFN 14336, 48 channels) with random bf16 weights and a random 64-token prompt embedding, and times each
block. ``--layers N`` builds only N of the 30 identical blocks (the 5B in bf16 is 10 GB; on a small machine
time a few layers): the time of the 30-layer model is then estimated as ``embed/head + 30 / N x layers``, by
timing the same run twice (N and 2N layers) and extrapolating linearly; the report says which.

It also prints the FLOP count of one block at any resolution (``--flops-at``, default the native 1280x704):
per layer and pass, the self-attention projections ``8 q d^2`` (q query tokens, d = 3072), the cross-attention
query/output projections ``4 q d^2``, the FFN ``4 q d f`` (f = 14336), the self-attention ``4 q k d`` (k key
tokens: the cached frames plus the block, at most 32 x 880) and the cross-attention ``4 q 512 d``; 30 layers;
5 passes per block (the prompt's text keys/values are computed once per prompt and left out). The GPU estimate
divides it by an assumed sustained bf16 throughput (``--gpu-tflops``, default 400 TFLOP/s: about 40% of an
H100's dense bf16 peak).

    python benchmarks/longlive2_block.py --resolution 256x128 --layers 2 --blocks 5
    python benchmarks/longlive2_block.py --flops-only
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def flops_per_block(width: int, height: int, *, cached_frames: int = 24, fpb: int = 8) -> float:
    """FLOPs of one block (5 passes, 30 layers) at ``width`` x ``height`` with ``cached_frames`` frames cached
    (24 in steady state: sink 8 + 16 recent; the block's own 8 make the 32 keys)."""
    d, f, layers, text = 3072, 14336, 30, 512
    tokens = (height // 32) * (width // 32)
    q, k = fpb * tokens, (cached_frames + fpb) * tokens
    per_layer = 8 * q * d * d + 4 * q * d * d + 4 * q * d * f + 4 * q * k * d + 4 * q * text * d
    return 5 * layers * per_layer


def time_blocks(layers: int, width: int, height: int, blocks: int, dtype: torch.dtype) -> list[float]:
    """Seconds per block of ``blocks`` blocks of a ``layers``-layer 5B with random weights."""
    from diffusers import WanTransformer3DModel

    from longlive_cli.models.transformer import CausalWanTransformer
    from longlive_cli.models.wan22 import wan22_5b_transformer_config
    from longlive_cli.samplers.longlive2 import LONGLIVE2, sample_longlive2
    from longlive_cli.schedule import FixedSchedule

    torch.manual_seed(0)
    with torch.device("meta"):
        wan = WanTransformer3DModel(**{**wan22_5b_transformer_config(), "num_layers": layers})
    wan = wan.to(dtype).to_empty(device="cpu")  # allocated in ``dtype``: the 5B in float32 would be 20 GB
    with torch.no_grad():
        for p in wan.parameters():
            p.normal_(0, 0.02)
        for name, b in wan.named_buffers():
            if "freqs" in name:
                fresh = WanTransformer3DModel(**{**wan22_5b_transformer_config(), "num_layers": 1})
                b.copy_(dict(fresh.named_buffers())[name])
    model = CausalWanTransformer(wan.eval()).requires_grad_(False)
    embeds = [torch.randn(1, 64, 4096)]
    schedule = FixedSchedule(embeds, [0] * blocks)
    h, w = height // 16, width // 16
    times, last = [], time.perf_counter()
    for _ in sample_longlive2(
        model, schedule, latent_height=h, latent_width=w, seed=0, sampler_config=LONGLIVE2
    ):
        now = time.perf_counter()
        times.append(now - last)
        last = now
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolution", default="256x128", help="WxH in pixels (multiples of 32)")
    parser.add_argument("--layers", type=int, default=30, help="transformer blocks built (30: the whole 5B)")
    parser.add_argument("--blocks", type=int, default=5, help="blocks generated (the first is dropped)")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--flops-at", default="1280x704", help="resolution of the FLOP count")
    parser.add_argument("--gpu-tflops", type=float, default=400.0, help="assumed sustained bf16 TFLOP/s")
    parser.add_argument("--flops-only", action="store_true")
    args = parser.parse_args()

    fw, fh = map(int, args.flops_at.split("x"))
    flops = flops_per_block(fw, fh)
    gpu_s = flops / (args.gpu_tflops * 1e12)
    print(f"FLOPs per block at {fw}x{fh}: {flops / 1e12:.1f} TFLOP (5 passes x 30 layers, window full)")
    print(
        f"GPU estimate at {args.gpu_tflops:g} TFLOP/s: {gpu_s:.2f} s per block of 32 video frames "
        f"-> {32 / gpu_s:.1f} video FPS (transformer only)"
    )
    if args.flops_only:
        return
    torch.set_num_threads(torch.get_num_threads())
    width, height = map(int, args.resolution.split("x"))
    dtype = getattr(torch, args.dtype)
    n = args.layers
    t1 = statistics.median(time_blocks(n, width, height, args.blocks, dtype)[1:])
    if n >= 30:
        print(
            f"CPU, {width}x{height}, {args.dtype}, 30 layers: {t1:.2f} s per block (median of later blocks)"
        )
        return
    t2 = statistics.median(time_blocks(2 * n, width, height, args.blocks, dtype)[1:])
    per_layer = (t2 - t1) / n
    full = t1 + (30 - n) * per_layer
    print(
        f"CPU, {width}x{height}, {args.dtype}: {n} layers {t1:.2f} s, {2 * n} layers {t2:.2f} s per block "
        f"(median of later blocks) -> {per_layer:.2f} s per layer -> 30 layers about {full:.1f} s per block"
    )
    print(f"FLOPs per block at {width}x{height}: {flops_per_block(width, height) / 1e12:.3f} TFLOP")


if __name__ == "__main__":
    main()
