"""Prompt transitions: what each re-cache policy costs, and what a transition does to the video, against a
hard switch.

    python benchmarks/transitions.py                       # tiny-random, 128x80, CPU
    python benchmarks/transitions.py --resolution 64x48 --blocks 20

The tiny-random preset (its own UMT5 encodes two real prompts), LongLive's sampler, no decode. One switch at
``--switch`` (block 8): a hard switch, and transitions of 2 s (3 blocks) and 4 s (6 blocks) with each
``transition_recache`` policy (``every``: N + 1 re-caches, as Scope re-caches at every step; ``first``: one,
at the switch; ``none``). Reported per run:

* cost: transformer passes in re-caches, and the seconds spent on the switch's conditioning (text projection
  and cross-attention K/V, ``prompt``) and re-caches (``recache``) from the library's stage timer, and the
  median seconds per block over the switch's blocks against the blocks before it;
* effect, per block ``b`` from the block before the switch: ``away`` = relative L2 distance of ``b``'s latents
  from the same video without a switch (how far the video has left the old prompt), and ``step`` = the
  growth of ``away`` from the block before (a hard switch moves it all at once; a transition spreads it).
  ``max step`` is the largest, ``to hard`` the distance from the hard switch's latents 3 blocks after the
  transition ends (how much of the difference the transition leaves behind).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--resolution", default="128x80")
    parser.add_argument("--blocks", type=int, default=24)
    parser.add_argument("--switch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared CPU)")
    args = parser.parse_args()

    import torch

    from longlive_cli.geometry import WAN21
    from longlive_cli.models.loaders import build_tiny_random
    from longlive_cli.models.spec import SamplerConfig
    from longlive_cli.models.transformer import CausalWanTransformer
    from longlive_cli.runtime import StageTimes
    from longlive_cli.samplers.longlive import sample_longlive
    from longlive_cli.schedule import FixedSchedule
    from longlive_cli.storyboard.schema import transition_blocks
    from longlive_cli.text import encode_prompts

    torch.set_num_threads(args.threads)
    wan, _, text = build_tiny_random()
    model = CausalWanTransformer(wan.eval().requires_grad_(False))
    prompts = ["a red fox runs through deep snow", "a lighthouse on a cliff in a storm at night"]
    embeds = encode_prompts(text, prompts)
    width, height = (int(x) for x in args.resolution.split("x"))
    h, w = WAN21.latent_size(width, height)
    nb, s = args.blocks, args.switch
    segments = [0 if b < s else 1 for b in range(nb)]

    def run(seconds: float, policy: str, method: str = "linear", segs=segments):
        steps = transition_blocks(seconds)
        schedule = FixedSchedule(embeds, segs, transitions=[(0, method), (steps, method)])
        times, blocks, ends = StageTimes(), [], []
        start = time.perf_counter()
        sampler_config = SamplerConfig(transition_recache=policy)
        for block in sample_longlive(
            model,
            schedule,
            latent_height=h,
            latent_width=w,
            seed=5,
            sampler_config=sampler_config,
            times=times,
        ):
            blocks.append(block.latents.clone())
            ends.append(time.perf_counter())
        durations = [b - a for a, b in zip([start, *ends], ends, strict=False)]
        return steps, blocks, durations, times

    def dist(a, b) -> float:
        return ((a - b).norm() / b.norm()).item()

    _, plain, _, _ = run(0, "first", segs=[0] * nb)
    _, hard, _, _ = run(0, "first")
    rows = [("hard switch", 0, "first", "linear")]
    rows += [
        (f"{sec:g} s {m}", sec, p, m)
        for sec in (2, 4)
        for m in ("linear",)
        for p in ("every", "first", "none")
    ]
    rows += [("2 s slerp", 2, "first", "slerp")]
    hard_away = [dist(hard[b], plain[b]) for b in range(nb)]
    print(f"tiny-random, {args.resolution}, CPU, {args.threads} thread(s), {nb} blocks, switch at block {s}")
    print(
        f"{'run':<14} {'N':>2} {'policy':>6} {'re-cache':>8} {'prompt+re-cache':>15} {'ms/block':>8} "
        f"{'ms/block':>8} {'max step':>8} {'to hard':>8}  away / hard switch's away, blocks {s}.."
    )
    print(f"{'':<14} {'':>2} {'':>6} {'passes':>8} {'ms':>15} {'before':>8} {'switch':>8}")
    for name, seconds, policy, method in rows:
        steps, blocks, durations, times = run(seconds, policy, method)
        span = range(s - 1, min(nb, s + steps + 4))
        away = [dist(blocks[b], plain[b]) for b in span]
        step = max(itertools.starmap(lambda a, b: b - a, itertools.pairwise(away)))
        after = min(nb - 1, s + steps + 3)
        before_ms = 1000 * statistics.median(durations[2:s])
        switch_ms = 1000 * statistics.median(durations[s : s + max(steps, 1) + 1])
        spent = 1000 * (times.seconds["prompt"] + times.seconds["recache"])
        label = policy if seconds else "-"
        progress = " ".join(f"{a / hard_away[b]:.2f}" for a, b in zip(away[1:], span[1:], strict=True))
        print(
            f"{name:<14} {steps:>2} {label:>6} {times.calls['recache']:>8} {spent:>15.1f} {before_ms:>8.1f} "
            f"{switch_ms:>8.1f} {step:>8.1e} {dist(blocks[after], hard[after]):>8.1e}  {progress}"
        )
    print(
        f"hard switch: away from the unswitched video at blocks {s}..: "
        + " ".join(f"{a:.1e}" for a in hard_away[s : s + 8])
    )


if __name__ == "__main__":
    main()
