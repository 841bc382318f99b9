"""What each speed switch buys: the causal sampler alone (no VAE, no MP4), one configuration after another.

Builds one transformer (the tiny-random preset's, or the Wan2.1-T2V-1.3B architecture with random
weights) and runs the same blocks, prompts and seed under a growing set of switches
(``longlive_cli.runtime.RuntimeOptions``), in the order below (QKV fusion cannot be undone, so the
configurations only add switches). For each it prints the median and p90 block latency (first
``--warmup`` blocks excluded: compilation happens there), video frames per second of the sampler
alone, the ratio to the plain path, and the largest relative latent difference from the plain path.

    python benchmarks/options.py                                   # tiny-random, 128x80, CPU
    python benchmarks/options.py --arch wan-1.3b --resolution 64x48 --blocks 6
    python benchmarks/options.py --arch wan-1.3b --resolution 832x480 --device cuda --blocks 40 --compile

On CUDA every block is synchronised before its time is taken (the sampler itself never waits).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench import WAN_13B_CONFIG, build_wan13b, random_prompt_embeds

from longlive_cli.geometry import WAN21
from longlive_cli.models.loaders import build_tiny_random
from longlive_cli.models.transformer import CausalWanTransformer
from longlive_cli.runtime import RuntimeOptions
from longlive_cli.samplers.longlive import sample_video
from longlive_cli.storyboard import parse_resolution

VIDEO_FRAMES_PER_BLOCK = 12  # 3 latent frames x 4 (the first block gives 9)


def configurations(attention: str | None, compile_: bool) -> list[tuple[str, RuntimeOptions]]:
    plain = RuntimeOptions()
    steps = [
        ("plain", plain),
        ("+ rope-cache", replace(plain, rope_cache=True)),
        ("+ static-cache", replace(plain, rope_cache=True, static_cache=True)),
    ]
    if attention:
        steps.append((f"+ attention {attention}", replace(steps[-1][1], attention=attention)))
    steps.append(("+ fused-qkv", replace(steps[-1][1], fused_qkv=True)))
    if compile_:
        steps.append(("+ compile", replace(steps[-1][1], compile=True)))
    return steps


def run(model, embeds, segments, h, w, seed, sync) -> tuple[torch.Tensor, list[float]]:
    times, latents = [], []
    last = time.perf_counter()
    for block in sample_video(model, embeds, segments, latent_height=h, latent_width=w, seed=seed):
        sync()
        now = time.perf_counter()
        times.append(now - last)
        last = now
        latents.append(block.latents.float().cpu())
    return torch.cat(latents, dim=1), times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", choices=["tiny-random", "wan-1.3b"], default="tiny-random")
    parser.add_argument("--resolution", default="128x80")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", choices=["float32", "bf16"], help="default: bf16 on CUDA, float32 on CPU")
    parser.add_argument("--blocks", type=int, default=12, help="blocks per configuration (default 12)")
    parser.add_argument("--switch-at", type=int, default=6, help="block of the prompt switch (default 6)")
    parser.add_argument("--warmup", type=int, default=1, help="blocks left out of the medians (default 1)")
    parser.add_argument("--attention", help="also try this --attention backend (e.g. sdpa-flash)")
    parser.add_argument("--compile", action="store_true", help="also try torch.compile (inductor)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    dtype = {"float32": torch.float32, "bf16": torch.bfloat16}.get(
        args.dtype, torch.bfloat16 if device.type == "cuda" else torch.float32
    )
    width, height = parse_resolution(args.resolution)
    if args.arch == "wan-1.3b":
        model = build_wan13b(device, dtype, args.seed).transformer
        text_dim = WAN_13B_CONFIG["text_dim"]
    else:
        torch.manual_seed(args.seed)
        wan = build_tiny_random()[0].to(device)
        model = CausalWanTransformer(wan if dtype == torch.float32 else wan.to(dtype))
        text_dim = model.wan.config.text_dim
    embeds = random_prompt_embeds(2, text_dim, args.seed)
    segments = [0 if b < args.switch_at else 1 for b in range(args.blocks)]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    fpb = WAN21.frames_per_block
    warm = max(args.warmup, 5 if args.compile else 0)  # compiled graphs: cache filling, then full

    print(
        f"{args.arch}, {width}x{height}, {device.type}, {str(dtype).removeprefix('torch.')}, "
        f"{torch.get_num_threads()} threads; {args.blocks} blocks, switch at block {args.switch_at}, "
        f"first {warm} blocks excluded from the medians"
    )
    print(f"{'configuration':<28} {'median ms':>10} {'p90 ms':>9} {'fps':>8} {'vs plain':>9} {'max rel':>9}")
    base = base_median = None
    for name, options in configurations(args.attention, args.compile):
        model.configure(options, frames_per_block=fpb)
        latents, times = run(model, embeds, segments, height // 8, width // 8, args.seed, sync)
        steady = sorted(times[warm:])
        median, p90 = statistics.median(steady), steady[int(0.9 * (len(steady) - 1))]
        if base is None:
            base, base_median = latents, median
        diff = ((latents - base).abs().max() / base.abs().max()).item()
        print(
            f"{name:<28} {1000 * median:>10.1f} {1000 * p90:>9.1f} {VIDEO_FRAMES_PER_BLOCK / median:>8.2f} "
            f"{base_median / median:>8.2f}x {diff:>9.1e}"
        )


if __name__ == "__main__":
    main()
