"""Speed, stage breakdown and memory of one generation, plus the cached sampler against the naive path.

Runs `longlive`'s library pipeline (`longlive_cli.pipeline.generate_video`: causal sampler with re-cache ->
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

Stages come from the library's own timing hook (``longlive_cli.runtime.StageTimes``, passed to
``generate``): the sampler reports its transformer passes, the pipeline its VAE decode and MP4 writes.
On CUDA the headline numbers come from a run without any synchronisation; the stage breakdown comes
from a second run of the same plan with ``cuda_sync=True`` (each stage waits for the GPU at both ends,
which removes overlap, so that run is slower). With ``--overlap`` (default on CUDA) decode and encode
run on a worker thread beside the transformer: they are shown but not subtracted from the loop wall.

Speed options are the library's (``RuntimeOptions.for_device``: all on for CUDA, all off on CPU);
``--compile/--no-compile``, ``--fused-qkv``, ``--static-cache``, ``--rope-cache``, ``--overlap``,
``--attention`` and ``--compile-mode`` override them. With ``--compile`` a warm-up generation (enough
blocks to fill the KV cache, with a prompt switch) runs first, so the timed run measures compiled code;
its time to first frame is reported as the cold start.

Models:

* ``--model tiny-random`` (default): the preset (2-layer transformer, tiny Wan VAE, tiny UMT5);
* ``--arch wan-1.3b``: the real Wan2.1-T2V-1.3B transformer architecture (30 layers, 12 heads x 128,
  ffn 8960, text_dim 4096) and the real-size Wan VAE (``AutoencoderKLWan()`` defaults), both with random
  weights, and random 64-token prompt embeddings ``[1, 64, 4096]`` instead of UMT5-XXL. Speed and memory
  are the real model's; the video is noise.

    python benchmarks/bench.py                 # tiny-random, 128x80, 10 s, a switch every 5 s, CPU
    python benchmarks/bench.py --arch wan-1.3b --resolution 832x480 --duration 30 --device cuda
    python benchmarks/bench.py --arch wan-1.3b --resolution 832x480 --duration 30 --device cuda --no-compile
    python benchmarks/bench.py --arch wan-1.3b --resolution 128x80 --duration 1.5 --switch-every 0.75 \\
        --naive-blocks 2 --json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from longlive_cli import LongLive
from longlive_cli.events import BlockDone, Finished, GenerationStarted
from longlive_cli.geometry import WAN21
from longlive_cli.models.loaders import Model, wan_1_3b_transformer_config
from longlive_cli.models.spec import PRESETS
from longlive_cli.models.transformer import CausalWanTransformer
from longlive_cli.reference import naive_sample_video
from longlive_cli.runtime import ATTENTION_BACKENDS, RuntimeOptions, StageTimes
from longlive_cli.samplers.longlive import sample_video
from longlive_cli.storyboard import Plan, PromptSpec, Storyboard, make_plan, parse_resolution

DTYPES = {"float32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

WAN_13B_CONFIG = wan_1_3b_transformer_config()
PROMPT_TOKENS = 64  # a typical storyboard prompt: a sentence or two
STAGES = (
    ("text", "text encoding (before the loop)"),
    ("prompt", "prompt projection"),
    ("denoise", "transformer: denoising passes"),
    ("recache", "transformer: re-cache passes"),
    ("clean", "transformer: clean-context passes"),
    ("decode", "VAE decode"),
    ("encode", "MP4 encode (write + close)"),
    ("wait", "waiting for the decode worker"),
    ("other", "other (sampler/pipeline overhead)"),
)
WORKER_STAGES = ("decode", "encode")  # on the worker thread with --overlap


# ------------------------------------------------------------------------------------------ timing


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
    """Stand-ins for UMT5 embeddings of 64-token prompts: ``[1, 64, text_dim]`` of N(0, 0.1), kept
    trimmed to the tokens as ``encode_prompts`` keeps them (the transformer pads to 512 with zeros)."""
    gen = torch.Generator().manual_seed(seed)
    return [0.1 * torch.randn(1, PROMPT_TOKENS, text_dim, generator=gen) for _ in range(num)]


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
    return make_plan(sb, replace(WAN21, frames_per_block=frames_per_block))


# ------------------------------------------------------------------------------------------ runs


def timed_generation(
    plan: Plan, ll: LongLive, embeds: list[torch.Tensor] | None, seed: int, times: StageTimes | None
) -> dict:
    """One generation through ``LongLive.stream`` into a temporary MP4; block times from its events."""
    model = ll.load()
    device = model.transformer.device
    block_s: list[float] = []
    mem_first = mem_last = None
    t_start = t_first_block = t_last_block = t_end = None
    frames_first_block = frames_done = 0
    children_before = children_cpu_s()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.mp4"
        last = None
        for event in ll.stream(plan, out, seed=seed, times=times, prompt_embeds=embeds):
            now = time.perf_counter()
            if isinstance(event, GenerationStarted):
                t_start = last = now
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
    result = {
        "blocks": plan.num_blocks,
        "video_frames": frames_done,
        "switches": len(plan.switch_blocks()),
        "loop_wall_s": wall,
        "time_to_first_frame_s": block_s[0],  # GenerationStarted -> first block's frames written
        "fps_steady": (frames_done - frames_first_block) / steady_span if steady_span > 0 else None,
        "fps_overall": frames_done / wall,
        "block_median_s": statistics.median(steady) if steady else None,
        "block_p90_s": percentile(steady, 0.9) if steady else None,
        "block_max_s": steady[-1] if steady else None,
        "ffmpeg_cpu_s": children_cpu_s() - children_before,
        "memory_first_block_mib": mem_first,
        "memory_last_block_mib": mem_last,
        "peak_memory_mib": peak_memory(device),
        "mp4_bytes": mp4_bytes,
    }
    if times is not None:
        result["stages"] = stage_table(times, wall, overlapped=model.transformer.options.overlap_decode)
    return result


def stage_table(times: StageTimes, wall: float, *, overlapped: bool) -> dict:
    """Seconds and calls per stage; "other" = wall minus the stages that ran on the generating thread."""
    seconds, calls = dict(times.seconds), dict(times.calls)
    beside = WORKER_STAGES if overlapped else ()
    # With overlap the final MP4 flush (on the generating thread) is left inside "other".
    seconds["other"] = wall - sum(v for k, v in seconds.items() if k not in beside and k != "text")
    return {"seconds": seconds, "calls": calls, "overlapped": list(beside)}


def naive_vs_cached(model: Model, embed: torch.Tensor, plan: Plan, num_blocks: int, seed: int) -> dict:
    """Both samplers on the same single-prompt blocks, interleaved; only the current block is compared."""
    transformer = model.transformer
    sampler_config = model.spec.sampler
    h, w = model.spec.geometry.latent_size(plan.width, plan.height)
    naive = naive_sample_video(
        transformer,
        embed,
        num_blocks,
        latent_height=h,
        latent_width=w,
        seed=seed,
        sampler_config=sampler_config,
    )
    cached = sample_video(
        transformer,
        [embed],
        [0] * num_blocks,
        latent_height=h,
        latent_width=w,
        seed=seed,
        sampler_config=sampler_config,
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
    print(f"speed options: {c['options']}")
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
            f"(first block excluded)"
        )
    if "cold_start" in r:
        cold = r["cold_start"]
        print(
            f"cold start (warm-up run, compiles): time to first frame {cold['time_to_first_frame_s']:.3f} s, "
            f"{cold['blocks']} blocks in {cold['loop_wall_s']:.2f} s"
        )
    st = r.get("stage_breakdown")
    if st is not None:
        where = (
            "from this run"
            if st["run"] == "main"
            else "from a second run with a CUDA sync at every stage edge (overlap off)"
        )
        print(f"stages ({where}; loop wall {st['loop_wall_s']:.2f} s):")
        print(f"{'stage':<36} {'s':>9} {'% loop':>7} {'calls':>6}")
        for key, label in STAGES:
            if key not in st["seconds"]:
                continue
            sec = st["seconds"][key]
            calls = st["calls"].get(key, "")
            mark = " (worker thread, overlaps the rows above)" if key in st["overlapped"] else ""
            print(f"{label:<36} {sec:>9.3f} {100 * sec / st['loop_wall_s']:>7.1f} {calls:>6}{mark}")
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
    speed = parser.add_argument_group("speed options (default: all on for CUDA, all off on CPU)")
    for flag in ("compile", "fused-qkv", "static-cache", "rope-cache", "overlap"):
        speed.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction, default=None)
    speed.add_argument("--compile-mode", help="torch.compile mode (e.g. reduce-overhead, max-autotune)")
    speed.add_argument("--attention", choices=list(ATTENTION_BACKENDS))
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
    try:
        options = RuntimeOptions.for_device(
            device,
            compile=args.compile,
            compile_mode=args.compile_mode,
            fused_qkv=args.fused_qkv,
            static_cache=args.static_cache,
            rope_cache=args.rope_cache,
            overlap_decode=args.overlap,
            attention=args.attention,
        )
    except ValueError as err:
        parser.error(str(err))
    name = args.arch or args.model
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    load_s: dict[str, float] = {}
    start = time.perf_counter()
    text_s = None
    if args.arch == "wan-1.3b":
        built = build_wan13b(device, dtype, args.seed)
        ll = LongLive(built.spec, device=device.type, dtype=dtype, options=options, model=built)
        load_s["model build"] = time.perf_counter() - start
    else:
        ll = LongLive.from_pretrained(args.model, device=device.type, dtype=dtype, options=options)
    geometry = ll.geometry
    width, height = parse_resolution(args.resolution) if args.resolution else geometry.native_resolution
    plan = make_bench_plan(args.duration, width, height, args.switch_every, geometry.frames_per_block)
    embeds = None
    if args.arch == "wan-1.3b":
        embeds = random_prompt_embeds(len(plan.segments), WAN_13B_CONFIG["text_dim"], args.seed)
    else:
        t0 = time.perf_counter()
        ll.encode_prompts([plan])  # loads the text encoder, encodes, frees it
        text_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = ll.load()
    load_s["model"] = time.perf_counter() - t0
    fpb = geometry.frames_per_block
    cold = None
    if options.compile:  # compile outside the timed run: both graphs (filling, full) and a re-cache
        # 4 s = 5 blocks with a switch at 2 s: the 12-frame cache fills at block 4.
        warm_plan = make_bench_plan(4.0, width, height, 2.0, fpb)
        warm_embeds = [embeds[0], embeds[-1]] if embeds is not None else None
        cold = timed_generation(warm_plan, ll, warm_embeds, args.seed, None)
    cuda = device.type == "cuda"
    generation = timed_generation(plan, ll, embeds, args.seed, None if cuda else StageTimes())
    breakdown = generation.pop("stages", None)
    if breakdown is not None:
        breakdown.update(run="main", loop_wall_s=generation["loop_wall_s"])
    else:  # CUDA: a second run, synchronised at every stage edge and without overlap
        model.transformer.configure(replace(options, overlap_decode=False), frames_per_block=fpb)
        synced = timed_generation(plan, ll, embeds, args.seed, StageTimes(cuda_sync=True))
        breakdown = synced["stages"] | {"run": "synced", "loop_wall_s": synced["loop_wall_s"]}
        model.transformer.configure(options, frames_per_block=fpb)
    if text_s is not None:
        breakdown["seconds"]["text"] = text_s
        breakdown["calls"]["text"] = len(set(s.text for s in plan.segments))
    first_embed = embeds[0] if embeds is not None else ll.prompt_embedding(plan.segments[0].text)
    comparison = naive_vs_cached(model, first_embed, plan, args.naive_blocks, args.seed)
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
            "options": options.describe(),
            "parameters": sum(p.numel() for p in model.transformer.parameters()),
            "vae_parameters": sum(p.numel() for p in model.vae.parameters()),
        },
        "load_s": load_s,
        "generation": generation,
        "stage_breakdown": breakdown,
        "naive_vs_cached": comparison,
        "peak_memory_mib_incl_naive": peak_memory(device),
    }
    if cold is not None:
        report["cold_start"] = cold
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)


if __name__ == "__main__":
    sys.exit(main())
