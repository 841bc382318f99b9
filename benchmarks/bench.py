"""Speed, stage breakdown and memory of one generation, plus the cached sampler against the naive path.

Runs `longlive`'s library pipeline (`longlive_cli.pipeline.generate`: causal sampler with re-cache ->
streaming VAE decode -> MP4 written to a temporary folder) once, timed from the outside, and reports:

* time to first frame (block loop start -> first decoded frames handed to the MP4 writer), steady-state
  generation FPS (video frames per wall second, first block excluded), per-block latency median / p90;
* where the block loop's wall time goes: transformer denoising passes, re-cache passes, clean-context
  passes, prompt projection, VAE decode, MP4 encode (pipe writes + the final flush), and "other"
  (= loop wall - all of those = the sampler's and pipeline's own overhead); text encoding (tiny-random
  only) happens before the loop and is shown beside it;
* peak memory (RSS on CPU, ``torch.cuda.max_memory_allocated`` on CUDA) and the memory at the first and
  last block (flat when nothing grows with video length);
* the naive reference (``longlive_cli.reference.naive_sample_video``: full recomputation, explicit mask)
  and the cached sampler on the same blocks, single prompt, interleaved block by block in this process:
  the speed ratio and the largest relative latent difference.

Stages are timed by wrapping library methods in this process (``CausalWanTransformer.forward``,
``CausalWanTransformer.encode_prompt``, ``longlive_cli.sampler.recache``, ``StreamingDecoder.decode``,
``VideoWriter.write`` / ``close``); on CUDA each wrapper synchronizes before and after, so queued GPU work
is charged to the stage that queued it (this removes CPU/GPU overlap across stage boundaries).

Models:

* ``--model tiny-random`` (default): the preset (2-layer transformer, tiny Wan VAE, tiny UMT5);
* ``--arch wan-1.3b``: the real Wan2.1-T2V-1.3B transformer architecture (30 layers, 12 heads x 128,
  ffn 8960, text_dim 4096) and the real-size Wan VAE (``AutoencoderKLWan()`` defaults), both with random
  weights, and random prompt embeddings ``[1, 512, 4096]`` instead of UMT5-XXL. Speed and memory are the
  real model's; the video is noise.

    python benchmarks/bench.py                 # tiny-random, 128x80, 10 s, a switch every 5 s, CPU
    python benchmarks/bench.py --arch wan-1.3b --resolution 832x480 --duration 30 --device cuda
    python benchmarks/bench.py --arch wan-1.3b --resolution 128x80 --duration 1.5 --switch-every 0.75 \\
        --naive-blocks 2 --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import torch

import longlive_cli.sampler as sampler_mod
from longlive_cli.decode import StreamingDecoder
from longlive_cli.events import BlockDone, Finished, GenerationStarted
from longlive_cli.models.registry import (
    PRESETS,
    Model,
    load_model,
    load_text_encoder,
    resolve_model,
    wan_1_3b_transformer_config,
)
from longlive_cli.models.transformer import CausalWanTransformer
from longlive_cli.pipeline import VAE_SPATIAL_STRIDE, encode_plan_prompts, generate
from longlive_cli.reference import naive_sample_video
from longlive_cli.sampler import sample_video
from longlive_cli.storyboard import Plan, PromptSpec, Storyboard, make_plan, parse_resolution
from longlive_cli.video import VideoWriter

DTYPES = {"float32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

WAN_13B_CONFIG = wan_1_3b_transformer_config()
TEXT_LEN = 512
STAGES = (
    ("text", "text encoding (before the loop)"),
    ("prompt", "prompt projection"),
    ("denoise", "transformer: denoising passes"),
    ("recache", "transformer: re-cache passes"),
    ("clean", "transformer: clean-context passes"),
    ("decode", "VAE decode"),
    ("encode", "MP4 encode (write + close)"),
    ("other", "other (sampler/pipeline overhead)"),
)


# ------------------------------------------------------------------------------------------ timing


class StageTimer:
    """Wall time per stage, from wrappers installed on library methods (outermost stage wins)."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.active: str | None = None  # a timed stage is running: nested calls belong to it
        self.loop_start: float | None = None
        self.first_frame_s: float | None = None

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def timed(self, fn: Callable, stage: str | Callable[..., str]) -> Callable:
        def wrapper(*args, **kwargs):
            if self.active is not None:
                return fn(*args, **kwargs)
            name = stage(*args, **kwargs) if callable(stage) else stage
            self.sync()
            self.active = name
            start = time.perf_counter()
            try:
                out = fn(*args, **kwargs)
                self.sync()
            finally:
                self.seconds[name] += time.perf_counter() - start
                self.calls[name] += 1
                self.active = None
            return out

        return wrapper

    @contextlib.contextmanager
    def installed(self) -> Iterator[StageTimer]:
        """Wrap the library's stage methods for the duration of the ``with`` block."""

        def forward_stage(module, latents, timesteps, *args, **kwargs) -> str:
            # The clean-context pass is the sampler's only pass at t = 0 outside a re-cache.
            return "clean" if not bool(timesteps.any()) else "denoise"

        def on_write(frames) -> None:
            if self.first_frame_s is None and self.loop_start is not None:
                self.first_frame_s = time.perf_counter() - self.loop_start

        write = VideoWriter.write

        def write_and_mark(writer, frames):
            on_write(frames)
            return write(writer, frames)

        patches = [
            (CausalWanTransformer, "forward", self.timed(CausalWanTransformer.forward, forward_stage)),
            (CausalWanTransformer, "encode_prompt", self.timed(CausalWanTransformer.encode_prompt, "prompt")),
            (sampler_mod, "recache", self.timed(sampler_mod.recache, "recache")),
            (StreamingDecoder, "decode", self.timed(StreamingDecoder.decode, "decode")),
            (VideoWriter, "write", self.timed(write_and_mark, "encode")),
            (VideoWriter, "close", self.timed(VideoWriter.close, "encode")),
        ]
        saved = [(owner, name, owner.__dict__[name]) for owner, name, _ in patches]
        try:
            for owner, name, new in patches:
                setattr(owner, name, new)
            yield self
        finally:
            for owner, name, old in saved:
                setattr(owner, name, old)


def current_rss_mib() -> float | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return None


def memory_now(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / 2**20
    return current_rss_mib()


def peak_memory(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[int(q * (len(sorted_values) - 1))]


# ------------------------------------------------------------------------------------------ models


def build_wan13b(device: torch.device, dtype: torch.dtype, seed: int) -> Model:
    """Wan2.1-T2V-1.3B transformer + Wan2.1 VAE architectures with random weights."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        wan = WanTransformer3DModel(**WAN_13B_CONFIG)
        vae = AutoencoderKLWan()
    for module in (wan, vae):  # built in float32: cast only when asked (as the registry's loader does)
        module.to(device=device) if dtype == torch.float32 else module.to(device=device, dtype=dtype)
        module.eval().requires_grad_(False)
    spec = replace(PRESETS["longlive-1.3b"], name="wan-1.3b (random weights)")
    return Model(spec=spec, transformer=CausalWanTransformer(wan), vae=vae)


def random_prompt_embeds(num: int, text_dim: int, seed: int) -> list[torch.Tensor]:
    """Stand-ins for UMT5 embeddings: N(0, 0.1) rows for 64 tokens, zero padding after (as UMT5 gives)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(num):
        e = torch.zeros(1, TEXT_LEN, text_dim)
        e[:, :64] = 0.1 * torch.randn(1, 64, text_dim, generator=gen)
        out.append(e)
    return out


def make_bench_plan(
    duration: float, width: int, height: int, switch_every: float, frames_per_block: int
) -> Plan:
    times = [0.0]
    if switch_every > 0:
        while times[-1] + switch_every < duration - 1e-9:
            times.append(round(times[-1] + switch_every, 6))
    prompts = tuple(
        PromptSpec(at_s=t, text=f"scene {i}: a panda walks through a bamboo forest", line=None)
        for i, t in enumerate(times)
    )
    sb = Storyboard(path=None, duration_s=duration, prompts=prompts, seed=1, width=width, height=height)
    return make_plan(sb, frames_per_block=frames_per_block)


# ------------------------------------------------------------------------------------------ runs


def timed_generation(plan: Plan, model: Model, embeds: list[torch.Tensor], seed: int, timer: StageTimer):
    device = model.transformer.device
    block_s: list[float] = []
    mem_first = mem_last = None
    t_start = t_first_block = t_last_block = t_end = None
    frames_first_block = frames_done = 0
    children_before = children_cpu_s()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory() as tmp, timer.installed():
        out = Path(tmp) / "bench.mp4"
        last = None
        for event in generate(plan, model, embeds, out, seed=seed):
            now = time.perf_counter()
            if isinstance(event, GenerationStarted):
                t_start = timer.loop_start = last = now
            elif isinstance(event, BlockDone):
                block_s.append(now - last)
                last = now
                frames_done = event.video_frames_done
                if event.block == 0:
                    t_first_block, frames_first_block = now, frames_done
                    mem_first = memory_now(device)
                t_last_block = now
                mem_last = memory_now(device)
            elif isinstance(event, Finished):
                t_end = now
                mp4_bytes = event.path.stat().st_size
    wall = t_end - t_start
    steady = sorted(block_s[1:])
    steady_span = t_last_block - t_first_block
    stages = dict(timer.seconds)
    accounted = sum(v for k, v in stages.items() if k != "text")
    stages["other"] = wall - accounted
    return {
        "blocks": plan.num_blocks,
        "video_frames": frames_done,
        "switches": len(plan.switch_blocks()),
        "loop_wall_s": wall,
        "time_to_first_frame_s": timer.first_frame_s,
        "first_block_s": block_s[0],
        "fps_steady": (frames_done - frames_first_block) / steady_span if steady_span > 0 else None,
        "fps_overall": frames_done / wall,
        "block_median_s": statistics.median(steady) if steady else None,
        "block_p90_s": percentile(steady, 0.9) if steady else None,
        "block_max_s": steady[-1] if steady else None,
        "stages_s": stages,
        "stage_calls": dict(timer.calls),
        "ffmpeg_cpu_s": children_cpu_s() - children_before,
        "memory_first_block_mib": mem_first,
        "memory_last_block_mib": mem_last,
        "peak_memory_mib": peak_memory(device),
        "mp4_bytes": mp4_bytes,
    }


def naive_vs_cached(model: Model, embed: torch.Tensor, plan: Plan, num_blocks: int, seed: int) -> dict:
    """Both samplers on the same single-prompt blocks, interleaved; only the current block is compared."""
    transformer = model.transformer
    cfg = model.spec.sampler
    h, w = plan.height // VAE_SPATIAL_STRIDE, plan.width // VAE_SPATIAL_STRIDE
    naive = naive_sample_video(
        transformer, embed, num_blocks, latent_height=h, latent_width=w, seed=seed, cfg=cfg
    )
    cached = sample_video(
        transformer, [embed], [0] * num_blocks, latent_height=h, latent_width=w, seed=seed, cfg=cfg
    )
    sync = torch.cuda.synchronize if transformer.device.type == "cuda" else (lambda: None)

    def step(it):
        sync()
        start = time.perf_counter()
        value = next(it)
        sync()
        return value, time.perf_counter() - start

    naive_s, cached_s, rel = [], [], []
    for _ in range(num_blocks):
        ref, dt_naive = step(naive)
        block, dt_cached = step(cached)
        naive_s.append(dt_naive)
        cached_s.append(dt_cached)
        a, b = block.latents.double(), ref.double()
        rel.append(float((a - b).abs().max() / b.abs().max().clamp_min(1e-30)))
    return {
        "blocks": num_blocks,
        "naive_s": sum(naive_s),
        "cached_s": sum(cached_s),
        "speed_ratio": sum(naive_s) / sum(cached_s),
        "naive_block_s": naive_s,
        "cached_block_s": cached_s,
        "max_rel_diff": max(rel),
        "rel_diff_per_block": rel,
    }


# ------------------------------------------------------------------------------------------ output


def print_report(r: dict) -> None:
    c, g, n = r["config"], r["generation"], r["naive_vs_cached"]
    mem_kind = "CUDA allocated" if c["device"] == "cuda" else "RSS"
    print(
        f"{c['model']}, {c['resolution']}, {c['device']}, {c['dtype']}, {c['threads']} threads; "
        f"{c['duration_s']:g} s requested -> {g['blocks']} blocks, {g['video_frames']} frames "
        f"({g['video_frames'] / 16:.2f} s); prompt switch every {c['switch_every_s']:g} s "
        f"({g['switches']} switches)"
        + (f"; load average {c['load_average_at_start']:.2f} at start" if c["load_average_at_start"] else "")
    )
    load = ", ".join(f"{k} {v:.1f} s" for k, v in r["load_s"].items())
    print(f"load (not timed below): {load}")
    print(f"time to first frame      {g['time_to_first_frame_s']:8.3f} s")
    fps = g["fps_steady"]
    print(
        f"generation FPS steady    {fps:8.2f}  (overall {g['fps_overall']:.2f} incl. first block; "
        f"loop wall {g['loop_wall_s']:.2f} s)"
        if fps is not None
        else f"generation FPS overall   {g['fps_overall']:8.2f}  (one block: no steady state)"
    )
    if g["block_median_s"] is not None:
        print(
            f"block latency            median {1000 * g['block_median_s']:.1f} ms, "
            f"p90 {1000 * g['block_p90_s']:.1f} ms, max {1000 * g['block_max_s']:.1f} ms "
            f"(first block {1000 * g['first_block_s']:.1f} ms, excluded)"
        )
    print(f"{'stage':<36} {'s':>9} {'% loop':>7} {'calls':>6}")
    for key, label in STAGES:
        if key == "text" and key not in g["stages_s"]:
            continue
        s = g["stages_s"].get(key, 0.0)
        calls = g["stage_calls"].get(key, "")
        print(f"{label:<36} {s:>9.3f} {100 * s / g['loop_wall_s']:>7.1f} {calls:>6}")
    print(f"{'block loop wall':<36} {g['loop_wall_s']:>9.3f} {100.0:>7.1f}")
    print(
        f"ffmpeg CPU time (child process, runs alongside): {g['ffmpeg_cpu_s']:.2f} s; "
        f"MP4 {g['mp4_bytes'] / 1024:.0f} KiB"
    )
    print(
        f"memory: peak {mem_kind} {g['peak_memory_mib']:.0f} MiB; {mem_kind} at first block "
        f"{g['memory_first_block_mib']:.0f} MiB, at last block {g['memory_last_block_mib']:.0f} MiB; "
        f"peak incl. the naive run {r['peak_memory_mib_incl_naive']:.0f} MiB"
    )
    print(
        f"naive reference vs cached sampler, {n['blocks']} blocks, one prompt: naive {n['naive_s']:.3f} s, "
        f"cached {n['cached_s']:.3f} s -> {n['speed_ratio']:.2f}x; max relative latent difference "
        f"{n['max_rel_diff']:.2e}"
    )
    print("  per block ms, naive:  " + " ".join(f"{1000 * s:.1f}" for s in n["naive_block_s"]))
    print("  per block ms, cached: " + " ".join(f"{1000 * s:.1f}" for s in n["cached_block_s"]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--model", default="tiny-random", choices=["tiny-random"], help="model preset")
    which.add_argument(
        "--arch",
        choices=["wan-1.3b"],
        help="real Wan2.1-T2V-1.3B transformer + VAE architecture, random weights, random prompt embeds",
    )
    parser.add_argument("--resolution", help="WxH in pixels, multiples of 16 (default: the model's native)")
    parser.add_argument("--duration", type=float, default=10.0, help="video seconds (default 10)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--dtype", default="auto", choices=["auto", *DTYPES], help="auto: bf16 on CUDA, float32 on CPU"
    )
    parser.add_argument(
        "--switch-every", type=float, default=5.0, help="seconds between prompt switches (default 5); 0: none"
    )
    parser.add_argument(
        "--naive-blocks", type=int, default=6, help="blocks for the naive-vs-cached comparison"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device available to torch")
    dtype = (
        DTYPES[args.dtype]
        if args.dtype != "auto"
        else (torch.bfloat16 if device.type == "cuda" else torch.float32)
    )
    if args.naive_blocks < 1:
        parser.error("--naive-blocks must be at least 1")
    name = args.arch or args.model
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    load_s: dict[str, float] = {}
    start = time.perf_counter()
    if args.arch == "wan-1.3b":
        model = build_wan13b(device, dtype, args.seed)
        spec = model.spec
        load_s["model build"] = time.perf_counter() - start
    else:
        spec = resolve_model(args.model)
    width, height = parse_resolution(args.resolution) if args.resolution else spec.native_resolution
    plan = make_bench_plan(args.duration, width, height, args.switch_every, spec.sampler.frames_per_block)

    text_s = None
    if args.arch == "wan-1.3b":
        embeds = random_prompt_embeds(len(plan.segments), WAN_13B_CONFIG["text_dim"], args.seed)
    else:
        encoder = load_text_encoder(spec, device=device)
        load_s["text encoder"] = time.perf_counter() - start
        t0 = time.perf_counter()
        embeds = encode_plan_prompts(encoder, plan)
        text_s = time.perf_counter() - t0
        del encoder
        t0 = time.perf_counter()
        model = load_model(spec, device=device, dtype=dtype)
        load_s["model"] = time.perf_counter() - t0

    timer = StageTimer(device)
    generation = timed_generation(plan, model, embeds, args.seed, timer)
    if text_s is not None:
        generation["stages_s"]["text"] = text_s
        generation["stage_calls"]["text"] = len(set(s.text for s in plan.segments))
    comparison = naive_vs_cached(model, embeds[0], plan, args.naive_blocks, args.seed)
    report = {
        "config": {
            "model": name,
            "resolution": f"{width}x{height}",
            "duration_s": args.duration,
            "device": device.type,
            "dtype": str(dtype).removeprefix("torch."),
            "switch_every_s": args.switch_every,
            "seed": args.seed,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "load_average_at_start": load_avg,
            "parameters": sum(p.numel() for p in model.transformer.parameters()),
            "vae_parameters": sum(p.numel() for p in model.vae.parameters()),
        },
        "load_s": load_s,
        "generation": generation,
        "naive_vs_cached": comparison,
        "peak_memory_mib_incl_naive": peak_memory(device),
    }
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)


if __name__ == "__main__":
    sys.exit(main())
