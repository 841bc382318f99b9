"""Rolling Forcing's window sampler beside LongLive's block sampler, on the same random weights.

    python benchmarks/samplers.py                                   # tiny-random arch, 128x80, 10 s and 60 s
    python benchmarks/samplers.py --arch wan-1.3b --resolution 64x48 --durations 10
    python benchmarks/samplers.py --device cuda --arch wan-1.3b --resolution 832x480

Each (sampler, duration) runs in a fresh process (peak memory is per process): the sampler alone (no
decode), one prompt switch at half time, and reports transformer passes per block (window, clean and
re-cache passes counted by the library's stage timer), the median seconds per block after the first
``S`` blocks, and the peak memory (RSS on the CPU, ``max_memory_allocated`` on CUDA).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path


def child(sampler: str, duration: float, arch: str, resolution: str, device: str) -> dict:
    import resource

    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from bench import WAN_13B_CONFIG, random_prompt_embeds

    from longlive_cli.geometry import WAN21
    from longlive_cli.models.loaders import build_tiny_random
    from longlive_cli.models.spec import SamplerConfig
    from longlive_cli.models.transformer import CausalWanTransformer
    from longlive_cli.runtime import StageTimes
    from longlive_cli.samplers import get_sampler
    from longlive_cli.samplers.rolling_forcing import ROLLING_FORCING
    from longlive_cli.schedule import FixedSchedule

    dev = torch.device(device)
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    if arch == "wan-1.3b":
        from diffusers import WanTransformer3DModel

        torch.manual_seed(1)
        wan = WanTransformer3DModel(**WAN_13B_CONFIG)
        text_dim = WAN_13B_CONFIG["text_dim"]
    else:
        wan = build_tiny_random()[0]
        text_dim = wan.config.text_dim
    model = CausalWanTransformer(wan.to(dev) if dtype == torch.float32 else wan.to(dev, dtype)).eval()
    width, height = (int(x) for x in resolution.split("x"))
    blocks = WAN21.latent_frames(duration) // WAN21.frames_per_block
    segments = [0 if b < blocks // 2 else 1 for b in range(blocks)]
    schedule = FixedSchedule(random_prompt_embeds(2, text_dim, seed=1), segments)
    sampler_config = ROLLING_FORCING if sampler == "rolling-forcing" else SamplerConfig()
    times = StageTimes()
    h, w = WAN21.latent_size(width, height)
    done = []
    start = time.perf_counter()
    run = get_sampler(sampler)(
        model,
        schedule,
        latent_height=h,
        latent_width=w,
        seed=1,
        sampler_config=sampler_config,
        geometry=WAN21,
        times=times,
    )
    for block in run:
        block.latents.float().sum().item()  # wait for the device
        done.append(time.perf_counter())
    per_block = [b - a for a, b in zip([start, *done[:-1]], done, strict=True)]
    warm = len(sampler_config.denoising_steps)
    passes = sum(times.calls[k] for k in ("denoise", "clean", "recache"))
    if sampler == "longlive":  # its "denoise" stage is one call per block around 4 passes
        passes += 3 * times.calls["denoise"]
    peak = (
        torch.cuda.max_memory_allocated(dev) / 2**20
        if dev.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {
        "blocks": blocks,
        "passes_per_block": passes / blocks,
        "block_median_s": statistics.median(per_block[warm:]),
        "peak_mib": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", choices=["tiny-random", "wan-1.3b"], default="tiny-random")
    parser.add_argument("--resolution", default="128x80")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--durations", type=float, nargs="+", default=[10.0, 60.0])
    parser.add_argument("--child", nargs=2, metavar=("SAMPLER", "DURATION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child(args.child[0], float(args.child[1]), args.arch, args.resolution, args.device)
        print(json.dumps(result))
        return
    print(f"{args.arch}, {args.resolution}, {args.device}; sampler only (no decode), one switch at half time")
    print(
        f"{'sampler':<16} {'video s':>7} {'blocks':>6} {'passes/block':>12} {'ms/block':>9} {'peak MiB':>9}"
    )
    for sampler in ("longlive", "rolling-forcing"):
        for duration in args.durations:
            cmd = [sys.executable, __file__, "--child", sampler, str(duration), "--arch", args.arch]
            cmd += ["--resolution", args.resolution, "--device", args.device]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(
                f"{sampler:<16} {duration:>7.0f} {r['blocks']:>6} {r['passes_per_block']:>12.2f} "
                f"{1000 * r['block_median_s']:>9.1f} {r['peak_mib']:>9.1f}"
            )


if __name__ == "__main__":
    main()
