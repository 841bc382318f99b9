"""``longlive bench``: what this machine does with a model, before any download.

The model's architecture runs with random weights (a fixed seed) unless its weights are already in the cache
(nothing is downloaded; the report says which), on random prompt embeddings (the text encoder is not part of
the block loop), for ``blocks`` blocks with one prompt switch in the middle, through the same pipeline as
``generate`` (decode and MP4 included, into a temporary folder). A first run warms up (compilation, caches)
and gives the cold time to first frame; the second run is measured. With ``compare_plain`` the plain path (no
speed option) runs on the same weights and inputs too: the speed ratio and the largest relative difference of
the latents.
"""

from __future__ import annotations

import copy
import json
import resource
import statistics
import tempfile
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from .api import LongLive
from .events import BlockDone, GenerationStarted
from .latents import read_latents
from .models.loaders import Model, build_tiny_random, wan_1_3b_transformer_config
from .models.spec import ModelSpec, components, fetch_components, resolve_model
from .models.transformer import CausalWanTransformer
from .runtime import RuntimeOptions, StageTimes, resolve_device, resolve_dtype

__all__ = ["format_report", "run_bench"]

PROMPT_TOKENS = 64


def _random_model(spec: ModelSpec, device: str, dtype: torch.dtype, seed: int) -> Model:
    """The spec's architecture with random weights: the tiny preset as it is; otherwise the transformer config
    from the cache if it is there (else the known one: Wan2.1-T2V-1.3B's, or Wan2.2-TI2V-5B's for
    LongLive 2.0) and the VAE's architecture (Wan2.1's, or Wan2.2's)."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    from .models import wan22

    v2 = spec.architecture == "longlive-2.0"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if spec.base is None:
            wan, vae = wan22.build_tiny_random_2(seed) if v2 else build_tiny_random(seed)[:2]
        else:
            config = wan22.wan22_5b_transformer_config() if v2 else wan_1_3b_transformer_config()
            try:
                path = fetch_components(
                    spec, [p for p in components(spec) if p.role == "transformer_config"], offline=True
                )
                config = {**config, **json.loads(path["transformer_config"].read_text())}
                config = {k: v for k, v in config.items() if not k.startswith("_")}
            except Exception:  # not cached: the known architecture
                pass
            vae = AutoencoderKLWan(**wan22.wan22_vae_config()) if v2 else AutoencoderKLWan()
            wan = WanTransformer3DModel(**config)
    place = (lambda m: m.to(device)) if dtype == torch.float32 else (lambda m: m.to(device, dtype))
    return Model(spec, CausalWanTransformer(place(wan).eval().requires_grad_(False)), place(vae).eval())


def _cached(spec: ModelSpec) -> bool:
    try:
        fetch_components(spec, components(spec), offline=True)
    except Exception:
        return False
    return spec.base is not None


def _peak_memory_mib(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _one_run(ll: LongLive, plan: Any, embeds: list[torch.Tensor], times: StageTimes | None) -> dict[str, Any]:
    """One generation; per-block wall times from its events, and its latents."""
    if ll.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as tmp:
        latents = Path(tmp) / "latents.safetensors"
        marks: list[float] = []
        start = time.perf_counter()
        events = ll.stream(
            plan, Path(tmp) / "bench.mp4", seed=1, save_latents=latents, times=times, prompt_embeds=embeds
        )
        for event in events:
            if isinstance(event, GenerationStarted):
                start = time.perf_counter()
            elif isinstance(event, BlockDone):
                marks.append(time.perf_counter())
        z = read_latents(latents)[0]
    blocks = [b - a for a, b in zip([start, *marks[:-1]], marks, strict=True)]
    steady = sorted(blocks[1:]) or blocks
    frames_after_first = plan.num_video_frames - ll.geometry.video_frames(ll.geometry.frames_per_block)
    span = marks[-1] - marks[0]
    return {
        "time_to_first_frame_s": blocks[0],
        "fps_steady": frames_after_first / span if span > 0 else None,
        "block_median_s": statistics.median(steady),
        "block_p90_s": steady[min(len(steady) - 1, int(0.9 * len(steady)))],
        "peak_memory_mib": _peak_memory_mib(ll.device),
        "latents": z,
    }


def run_bench(
    model: str = "tiny-random",
    *,
    device: str = "auto",
    dtype: str = "auto",
    resolution: str | None = None,
    blocks: int = 8,
    options: Mapping[str, Any] | None = None,
    int8: str | None = None,
    compare_plain: bool = False,
) -> dict[str, Any]:
    """Measure ``model`` (a preset, spec file or folder) on this machine; the report as a dict (see the module
    docs; :func:`format_report` prints it).

    Raises:
        InputError: bad options or fewer than 2 blocks. ModelError: an unknown model.
    """
    from .errors import InputError

    if blocks < 2:
        raise InputError("--blocks must be at least 2 (a prompt switch goes in the middle)")
    spec = resolve_model(model)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    opts = RuntimeOptions.for_device(dev, **(options or {}))
    cached = _cached(spec)
    if cached:
        ll = LongLive.from_pretrained(
            model, device=dev, dtype=torch_dtype, options=opts, offline=True, int8=int8
        )
        base = ll.load()
    else:
        base = _random_model(spec, dev, torch_dtype, seed=0)
        ll = LongLive(spec, device=dev, dtype=torch_dtype, options=opts, int8=int8, model=base)
    plain_wan = copy.deepcopy(base.transformer.wan) if compare_plain else None  # before fused QKV changes it
    g = spec.geometry
    duration = blocks * g.block_s
    switch = (blocks // 2) * g.block_s
    story = {"duration": duration, "prompts": [{"at": 0, "text": "first"}, {"at": switch, "text": "second"}]}
    plan = ll.plan(story, resolution=resolution, seed=1)
    gen = torch.Generator().manual_seed(1)
    text_dim = base.transformer.wan.config.text_dim
    embeds = [0.1 * torch.randn(1, PROMPT_TOKENS, text_dim, generator=gen) for _ in range(2)]
    ll.load()
    cold = _one_run(ll, plan, embeds, None)
    times = StageTimes(cuda_sync=False)
    warm = _one_run(ll, plan, embeds, times)
    fast_model = ll.load()
    report: dict[str, Any] = {
        "model": spec.name,
        "weights": "cached" if cached else "random (the architecture only; nothing downloaded)",
        "device": dev,
        "dtype": str(torch_dtype).removeprefix("torch."),
        "resolution": f"{plan.width}x{plan.height}",
        "blocks": plan.num_blocks,
        "options": opts.describe(),
        "fell_back": list(fast_model.transformer.fallbacks),
        "time_to_first_frame_s": {
            "cold": cold["time_to_first_frame_s"],
            "warm": warm["time_to_first_frame_s"],
        },
        "fps_steady": warm["fps_steady"],
        "block_latency_s": {"median": warm["block_median_s"], "p90": warm["block_p90_s"]},
        "stages_s": {k: round(v, 4) for k, v in sorted(times.seconds.items())},
        "peak_memory_mib": max(cold["peak_memory_mib"], warm["peak_memory_mib"]),
    }
    if plain_wan is not None:
        plain_model = replace(base, transformer=CausalWanTransformer(plain_wan))
        plain_ll = LongLive(spec, device=dev, dtype=torch_dtype, options=RuntimeOptions(), model=plain_model)
        plain = _one_run(plain_ll, plan, embeds, None)
        diff = (warm["latents"] - plain["latents"]).abs().max() / plain["latents"].abs().max()
        report["compare_plain"] = {
            "speed_ratio": plain["block_median_s"] / warm["block_median_s"],
            "max_rel_latent_diff": diff.item(),
        }
    return report


def format_report(r: dict[str, Any]) -> str:
    """The report as an aligned table."""
    ttff, lat = r["time_to_first_frame_s"], r["block_latency_s"]
    rows = [
        ("model", f"{r['model']} ({r['weights']})"),
        ("device, dtype", f"{r['device']}, {r['dtype']}, {r['resolution']}, {r['blocks']} blocks, 1 switch"),
        ("options", r["options"] + (f"; fell back: {'; '.join(r['fell_back'])}" if r["fell_back"] else "")),
        ("time to first frame", f"{ttff['cold']:.3f} s cold, {ttff['warm']:.3f} s warm"),
        ("steady FPS", f"{r['fps_steady']:.2f} video frames / s" if r["fps_steady"] else "--"),
        ("block latency", f"median {lat['median'] * 1000:.1f} ms, p90 {lat['p90'] * 1000:.1f} ms"),
        ("where the time goes", ", ".join(f"{k} {v:.3f} s" for k, v in r["stages_s"].items())),
        ("peak memory", f"{r['peak_memory_mib']:.0f} MiB"),
    ]
    if "compare_plain" in r:
        c = r["compare_plain"]
        rows.append(
            (
                "vs plain path",
                f"{c['speed_ratio']:.2f}x faster, max relative latent diff {c['max_rel_latent_diff']:.2e}",
            )
        )
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
