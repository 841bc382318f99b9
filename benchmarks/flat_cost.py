"""Per-block time and peak memory do not grow with video length.

Runs `longlive`'s library pipeline (storyboard -> sampler -> streaming decode -> MP4) on the
tiny-random preset, or the Wan2.1-T2V-1.3B architecture with random weights (``--arch wan-1.3b``,
random prompt embeddings), for several durations, each in a fresh process so that peak RSS is that
run's own, and prints per-block latency (median, p90) and peak memory, plus the ratios against the
shortest run. Speed options are the library's defaults for the device (all off on CPU).

    python benchmarks/flat_cost.py        # 10 s, 60 s, 240 s at 128x80 (tiny-random native), CPU
    python benchmarks/flat_cost.py --durations 10 240 --resolution 832x480
    python benchmarks/flat_cost.py --arch wan-1.3b --resolution 64x48 --durations 10 240
    python benchmarks/flat_cost.py --rope relative --durations 60 240 3600 --resolution 64x48 --threads 1

``--rope relative`` runs relative RoPE (``longlive-1.3b-infinite``'s), which has no length limit, so durations
past 240 s work. ``--threads N`` sets torch's intra-op threads in each run (default: torch's own).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STORY = """\
duration: {duration}s
resolution: {resolution}
seed: 1
prompts:
{prompts}
"""


def storyboard(duration: float, resolution: str, switch_every: int, distinct: int | None = None) -> str:
    # A prompt switch every few seconds, like a real storyboard: re-cache cost and the memory of a
    # switch (new cross-attention K/V, the re-cache pass over 9 latent frames) are part of every run.
    # With `distinct`, the texts cycle through that many (each unique text is encoded once), so the
    # number of prompts held does not grow with the length.
    times = range(0, int(duration), switch_every)
    scenes = (i % distinct if distinct else i for i in range(len(times)))
    prompts = "\n".join(
        f'  - at: {t}s\n    text: "scene {k}: a panda walks through a bamboo forest"'
        for k, t in zip(scenes, times, strict=True)
    )
    return STORY.format(duration=duration, resolution=resolution, prompts=prompts)


def child(
    duration: float,
    resolution: str,
    device: str,
    arch: str | None,
    switch_every: int,
    rope: str | None = None,
    threads: int | None = None,
    distinct: int | None = None,
) -> dict:
    """Run one generation in this process; return timings and peak memory."""
    import resource
    from dataclasses import replace

    import torch

    from longlive_cli.models.spec import with_rope

    if threads:
        torch.set_num_threads(threads)
    from longlive_cli import LongLive
    from longlive_cli.events import BlockDone
    from longlive_cli.runtime import RuntimeOptions

    dev = torch.device(device)
    options = RuntimeOptions.for_device(dev)
    embeds = None
    if arch == "wan-1.3b":
        sys.path.insert(0, str(Path(__file__).parent))
        from bench import WAN_13B_CONFIG, build_wan13b, random_prompt_embeds

        dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
        model = build_wan13b(dev, dtype, seed=1)
        if rope:
            model = replace(model, spec=with_rope(model.spec, rope))
        ll = LongLive(model.spec, device=dev.type, dtype=dtype, options=options, model=model)
    else:
        ll = LongLive.from_pretrained("tiny-random", device=device, options=options, rope=rope)
    plan = ll.plan(storyboard(duration, resolution, switch_every, distinct))
    if arch == "wan-1.3b":
        embeds = random_prompt_embeds(len(plan.segments), WAN_13B_CONFIG["text_dim"], seed=1)
    else:
        ll.encode_prompts([plan])
    ll.load()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    block_s, cpu_s, rss_mib, last = [], [], [], None
    with tempfile.TemporaryDirectory() as tmp:
        start, cpu_last = time.perf_counter(), time.thread_time()
        for event in ll.stream(plan, Path(tmp) / "out.mp4", seed=1, prompt_embeds=embeds):
            if isinstance(event, BlockDone):
                now, cpu = time.perf_counter(), time.thread_time()
                block_s.append(now - (last if last is not None else start))
                cpu_s.append(cpu - cpu_last)  # this thread's CPU: what other processes do not change
                last, cpu_last = now, cpu
                rss_mib.append(current_rss_mib())
        wall = time.perf_counter() - start
    steady = sorted(block_s[1:])  # the first block includes warm-up
    return {
        "duration_s": duration,
        "blocks": plan.num_blocks,
        "video_frames": plan.num_video_frames,
        "wall_s": wall,
        "block_median_s": statistics.median(steady),
        "block_p90_s": steady[int(0.9 * (len(steady) - 1))],
        # The generating thread's CPU seconds per block (with --threads 1 and no overlap, the transformer
        # and the VAE run on it): steadier than wall time on a shared machine.
        "block_cpu_median_s": statistics.median(cpu_s[1:]),
        "peak_rss_mib": (
            torch.cuda.max_memory_allocated(dev) / 2**20
            if dev.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ),
        "fps": plan.num_video_frames / wall,
        # Within the run: the first and the last ten steady blocks (drift shows here, machine-wide noise
        # between runs does not).
        "first10_median_s": statistics.median(block_s[1:11]),
        "last10_median_s": statistics.median(block_s[-10:]),
        # Least-squares line through all steady blocks: its rise from the first to the last block, as a
        # fraction of the median. Uses every block, so it is steadier than ten-block medians.
        "trend": trend(block_s[1:]),
        "rss_median_mib": statistics.median(rss_mib),  # RSS after each block: a trend shows retained memory
        "rss_last_mib": rss_mib[-1],
    }


def trend(seconds: list[float]) -> float:
    """Rise of the least-squares line through ``seconds`` (one per block) over the whole run, relative
    to their median: 0.05 means the last block is predicted 5 % slower than the first."""
    if len(seconds) < 2:
        return 0.0
    slope = statistics.linear_regression(range(len(seconds)), seconds).slope
    return slope * (len(seconds) - 1) / statistics.median(seconds)


def current_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--durations", type=float, nargs="+", default=[10, 60, 240])
    parser.add_argument("--resolution", default="128x80")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--arch", choices=["wan-1.3b"], help="1.3B architecture, random weights")
    parser.add_argument("--switch-every", type=int, default=5, help="seconds between prompt switches (5)")
    parser.add_argument(
        "--rope", choices=["absolute", "relative"], help="temporal RoPE (default: the model's)"
    )
    parser.add_argument("--threads", type=int, help="torch intra-op threads per run (default: torch's)")
    parser.add_argument(
        "--distinct-prompts", type=int, help="cycle through this many prompt texts (default: all distinct)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child(
            args.durations[0],
            args.resolution,
            args.device,
            args.arch,
            args.switch_every,
            args.rope,
            args.threads,
            args.distinct_prompts,
        )
        print(json.dumps(result))
        return
    rows = []
    for d in args.durations:
        cmd = [sys.executable, __file__, "--child", "--durations", str(d), "--resolution", args.resolution]
        cmd += ["--device", args.device, "--switch-every", str(args.switch_every)]
        cmd += ["--arch", args.arch] if args.arch else []
        cmd += ["--rope", args.rope] if args.rope else []
        cmd += ["--threads", str(args.threads)] if args.threads else []
        cmd += ["--distinct-prompts", str(args.distinct_prompts)] if args.distinct_prompts else []
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = rows[0]
    mem = "peak CUDA MiB" if args.device == "cuda" else "peak RSS MiB"
    print(
        f"{args.arch or 'tiny-random'}, {args.resolution}, {args.device}, "
        f"a prompt switch every {args.switch_every} s, rope {args.rope or 'the model default'}, "
        f"threads {args.threads or 'default'}, distinct prompts {args.distinct_prompts or 'all'}"
    )
    print(
        f"{'video':>7} {'blocks':>6} {'frames':>6} {'wall s':>7} {'fps':>6} {'block med ms':>12} "
        f"{'block p90 ms':>12} {'cpu/block ms':>12} {mem:>13} {'med ratio':>9} {'cpu ratio':>9} "
        f"{'mem ratio':>9} {'RSS/block med':>13} {'last':>6} {'last10/first10':>14} {'trend':>7}"
    )
    for r in rows:
        med, rss, cpu = r["block_median_s"], r["peak_rss_mib"], r["block_cpu_median_s"]
        print(
            f"{r['duration_s']:>6.0f}s {r['blocks']:>6} {r['video_frames']:>6} {r['wall_s']:>7.1f} "
            f"{r['fps']:>6.1f} {1000 * med:>12.1f} {1000 * r['block_p90_s']:>12.1f} {1000 * cpu:>12.1f} "
            f"{rss:>13.1f} {med / base['block_median_s']:>9.3f} {cpu / base['block_cpu_median_s']:>9.3f} "
            f"{rss / base['peak_rss_mib']:>9.3f} {r['rss_median_mib']:>13.1f} {r['rss_last_mib']:>6.1f} "
            f"{r['last10_median_s'] / r['first10_median_s']:>14.3f} {100 * r['trend']:>+6.1f}%"
        )


if __name__ == "__main__":
    main()
