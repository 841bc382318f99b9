"""INT8 against float32 on CPU: block latency and the latents' relative error, side by side.

Builds a transformer with random weights (a fixed seed) -- the tiny-random preset's, or the real
Wan2.1-T2V-1.3B architecture -- quantizes copies with ``w8a8`` and ``w8`` (``longlive_cli.models.int8``),
and runs the causal sampler (``longlive_cli.samplers.longlive.sample_video``) on each with the same
random prompt embeddings and noise: ``--blocks`` blocks with a prompt switch halfway. Reports the
median seconds per block and the relative L2 error of the first block's latents
and of all blocks against float32.

    python benchmarks/int8.py                                    # tiny-random, 128x80, 4 blocks
    python benchmarks/int8.py --arch wan-1.3b --resolution 64x48 --blocks 2
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from diffusers import WanTransformer3DModel

from longlive_cli.logs import quiet_third_party
from longlive_cli.models.int8 import quantize_transformer
from longlive_cli.models.loaders import tiny_transformer_config, wan_1_3b_transformer_config
from longlive_cli.models.transformer import CausalWanTransformer
from longlive_cli.samplers.longlive import sample_video


def run(model: CausalWanTransformer, embeds, segments, h: int, w: int) -> tuple[list[float], torch.Tensor]:
    times, blocks = [], []
    start = time.perf_counter()
    with torch.inference_mode():
        for block in sample_video(model, embeds, segments, latent_height=h, latent_width=w, seed=0):
            now = time.perf_counter()
            times.append(now - start)
            start = now
            blocks.append(block.latents)
    return times, torch.cat(blocks, dim=1)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def main() -> None:
    quiet_third_party()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", choices=["tiny", "wan-1.3b"], default="tiny")
    ap.add_argument("--resolution", default="128x80")
    ap.add_argument("--blocks", type=int, default=4)
    args = ap.parse_args()
    width, height = map(int, args.resolution.lower().split("x"))
    cfg = tiny_transformer_config() if args.arch == "tiny" else wan_1_3b_transformer_config()
    torch.manual_seed(0)
    wan = WanTransformer3DModel(**cfg).eval().requires_grad_(False)
    embeds = [torch.randn(1, 512, cfg["text_dim"]) for _ in range(2)]
    segments = [0 if i < max(1, args.blocks // 2) else 1 for i in range(args.blocks)]
    h, w = height // 8, width // 8
    switch = segments.index(1) + 1 if 1 in segments else "-"
    threads = torch.get_num_threads()
    print(f"{args.arch} {width}x{height}, {args.blocks} blocks (switch at {switch}), CPU, {threads} threads")
    base_times, base = run(CausalWanTransformer(wan), embeds, segments, h, w)
    first = base.shape[1] // args.blocks
    print(
        f"{'scheme':<8} {'s/block (median)':>17} {'speed-up':>9} {'rel.err block 1':>16} {'rel.err all':>12}"
    )
    print(f"{'float32':<8} {statistics.median(base_times):>17.3f} {1.0:>9.2f} {'-':>16} {'-':>12}")
    for scheme in ("w8a8", "w8"):
        qwan = copy.deepcopy(wan)
        quantize_transformer(qwan, scheme)
        times, z = run(CausalWanTransformer(qwan), embeds, segments, h, w)
        med = statistics.median(times)
        print(
            f"{scheme:<8} {med:>17.3f} {statistics.median(base_times) / med:>9.2f} "
            f"{rel(z[:, :first], base[:, :first]):>16.4%} {rel(z, base):>12.4%}"
        )


if __name__ == "__main__":
    main()
