"""``longlive bench``: what this machine does with a model, before any download.

The model's architecture runs with random weights (a fixed seed) unless its weights are already in the cache
(nothing is downloaded; the report says which), on random prompt embeddings, for ``blocks`` blocks with one
prompt switch in the middle, through the same pipeline as ``generate`` (decode and MP4 included, into a
temporary folder). A first run warms up (compilation, caches) and gives the cold time to first frame; the
second run is measured. The report separates what is often mixed up (``docs/benchmarking.md``):

* ``fps_denoise``: video frames per second of the denoise loop alone (the sampler's transformer passes,
  re-cache and prompt switches included; no decode, no MP4), a third run with a decoder that does nothing;
  the figure papers report;
* ``fps_steady``: frames per second of the whole pipeline (denoise, VAE decode, MP4 encode) after the
  first block;
* ``fps_end_to_end``: from the prompts' text to the last frame written and the MP4 closed: the text
  encoder's load and pass (when the model has its encoder here: tiny-random, or cached weights; else it is
  excluded and said so), every block, decode and encode; the warm-up run and the video model's loading are
  excluded;
* ``time_to_first_frame_s``: the same start to the first block's frames written (warm); ``cold_start_s``:
  that of the warm-up run (compilation included; the text encoding counted as in the warm one);
* ``hardware``: ``{"cpu", "gpu", "driver", "torch", "cuda"}`` (:func:`~longlive_cli.system.hardware`);
  ``excluded``: what none of the numbers include.

With ``compare_plain`` the plain path (no speed option) runs on the same weights and inputs too: the speed
ratio and the largest relative difference of the latents.
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

from . import precision
from .api import LongLive
from .events import BlockDone, Finished, GenerationStarted
from .latents import read_latents
from .models.loaders import Model, tiny_random_parts
from .models.spec import ModelSpec, components, fetch_components, resolve_model
from .models.transformer import CausalWanTransformer
from .registry import architecture_info
from .runtime import DTYPE_NAMES, DTYPES, RuntimeOptions, StageTimes, resolve_device, resolve_dtype
from .system import hardware

__all__ = ["format_report", "run_bench"]

PROMPT_TOKENS = 64


def _random_model(spec: ModelSpec, device: str, dtype: torch.dtype, seed: int) -> Model:
    """The spec's architecture with random weights: the tiny preset as it is; otherwise the transformer config
    from the cache if it is there (else the one its :class:`~longlive_cli.architectures.Architecture`
    declares: Wan2.1-T2V-1.3B's, or Wan2.2-TI2V-5B's for LongLive 2.0), built directly on ``device`` in
    ``dtype``, and the VAE's architecture (Wan2.1's, or Wan2.2's)."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    arch = architecture_info(spec.architecture)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if spec.base is None:
            wan, vae = tiny_random_parts(spec, seed)
        else:
            config = arch.known_transformer_config()
            try:
                path = fetch_components(
                    spec, [p for p in components(spec) if p.role == "transformer_config"], offline=True
                )
                config = {**config, **json.loads(path["transformer_config"].read_text())}
                config = {k: v for k, v in config.items() if not k.startswith("_")}
            except Exception:  # not cached: the known architecture
                pass
            vae = AutoencoderKLWan(**arch.known_vae_config())
            # built on the device in the run's dtype: the 5B in float32 first would need 20 GB
            previous = torch.get_default_dtype()
            torch.set_default_dtype(dtype)
            try:
                with torch.device(device):
                    wan = WanTransformer3DModel(**config)
            finally:
                torch.set_default_dtype(previous)
    vae_dtype = DTYPES[precision.vae_dtype(device, DTYPE_NAMES[dtype])]  # the rule the loaders follow
    wan = wan.to(device) if dtype == torch.float32 else wan.to(device, dtype)
    vae = vae.to(device) if vae_dtype == torch.float32 else vae.to(device, vae_dtype)
    return Model(spec, CausalWanTransformer(wan.eval().requires_grad_(False)), vae.eval())


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


def _one_run(
    ll: LongLive,
    plan: Any,
    embeds: list[torch.Tensor],
    times: StageTimes | None,
    text_s: float = 0.0,
) -> dict[str, Any]:
    """One generation; per-block wall times from its events, and its latents. ``text_s``: seconds the
    prompts' encoding took, counted in the end-to-end figures."""
    if ll.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as tmp:
        latents = Path(tmp) / "latents.safetensors"
        marks: list[float] = []
        called = start = end = time.perf_counter()
        events = ll.stream(
            plan, Path(tmp) / "bench.mp4", seed=1, save_latents=latents, times=times, prompt_embeds=embeds
        )
        for event in events:
            if isinstance(event, GenerationStarted):
                start = time.perf_counter()
            elif isinstance(event, BlockDone):
                marks.append(time.perf_counter())
            elif isinstance(event, Finished):
                end = time.perf_counter()  # the MP4 is closed
        z = read_latents(latents)[0]
    blocks = [b - a for a, b in zip([start, *marks[:-1]], marks, strict=True)]
    steady = sorted(blocks[1:]) or blocks
    frames_after_first = plan.num_video_frames - ll.geometry.video_frames(ll.geometry.frames_per_block)
    span = marks[-1] - marks[0]
    return {
        "time_to_first_frame_s": text_s + marks[0] - called,
        "fps_steady": frames_after_first / span if span > 0 else None,
        "fps_end_to_end": plan.num_video_frames / (text_s + end - called),
        "block_median_s": statistics.median(steady),
        "block_p90_s": steady[min(len(steady) - 1, int(0.9 * len(steady)))],
        "peak_memory_mib": _peak_memory_mib(ll.device),
        "latents": z,
    }


class _NoDecode:
    """A decoder that decodes nothing: the pipeline then runs the denoise loop alone."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return torch.empty(1, 0, 0, 0, 3, dtype=torch.uint8)

    def reset(self) -> None:
        pass


def _denoise_fps(ll: LongLive, plan: Any, embeds: list[torch.Tensor]) -> float:
    """Video frames per second of the denoise loop alone: the same blocks, no decode, no MP4 (CUDA
    synchronized at both ends)."""
    from .pipeline import VideoRequest, generate_video

    model = ll.load()
    device = next(model.transformer.wan.parameters()).device
    request = VideoRequest(plan, model, embeds, None, seed=1, decoder=_NoDecode(device))
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in generate_video(request):
        pass
    if device.type == "cuda":
        torch.cuda.synchronize()
    return plan.num_video_frames / (time.perf_counter() - started)


def _text_seconds(ll: LongLive, plan: Any) -> float | None:
    """Seconds to load the model's text encoder and encode ``plan``'s prompts (the embedding cache off),
    as ``generate`` does for new prompts; None when the encoder is not here (random weights of a real
    model: nothing is downloaded)."""
    if ll.spec.base is not None and not _cached(ll.spec):
        return None
    fresh = LongLive(
        ll.spec, device=ll.device, dtype=ll.dtype, options=ll.options, embed_cache=False, paths=ll.paths
    )
    started = time.perf_counter()
    fresh.encode_prompts([plan])
    return time.perf_counter() - started


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
    text_s = _text_seconds(ll, plan)
    times = StageTimes(cuda_sync=False)
    warm = _one_run(ll, plan, embeds, times, text_s or 0.0)
    fast_model = ll.load()
    excluded = ["the warm-up run (compilation, first-call caches)", "loading the video model"]
    if text_s is None:
        excluded.append("text encoding (random weights: no text encoder here; embeddings are random)")
    report: dict[str, Any] = {
        "model": spec.name,
        "weights": "cached" if cached else "random (the architecture only; nothing downloaded)",
        "device": dev,
        "dtype": str(torch_dtype).removeprefix("torch."),
        "resolution": f"{plan.width}x{plan.height}",
        "blocks": plan.num_blocks,
        "video_frames": plan.num_video_frames,
        "options": opts.describe(),
        "fell_back": list(fast_model.transformer.fallbacks),
        "fps_denoise": _denoise_fps(ll, plan, embeds),
        "fps_steady": warm["fps_steady"],
        "fps_end_to_end": warm["fps_end_to_end"],
        "time_to_first_frame_s": warm["time_to_first_frame_s"],
        "cold_start_s": cold["time_to_first_frame_s"] + (text_s or 0.0),
        "text_encode_s": text_s,
        "block_latency_s": {"median": warm["block_median_s"], "p90": warm["block_p90_s"]},
        "stages_s": {k: round(v, 4) for k, v in sorted(times.seconds.items())},
        "peak_memory_mib": max(cold["peak_memory_mib"], warm["peak_memory_mib"]),
        "excluded": excluded,
        "hardware": hardware(dev),
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
    """The report as an aligned table (the same numbers as the JSON, and what they exclude)."""
    lat, hw = r["block_latency_s"], r["hardware"]

    def fps(value: float | None) -> str:
        return f"{value:.2f} video frames / s" if value else "--"

    text = f"{r['text_encode_s']:.3f} s" if r["text_encode_s"] is not None else "not measured"
    rows = [
        ("model", f"{r['model']} ({r['weights']})"),
        ("device, dtype", f"{r['device']}, {r['dtype']}, {r['resolution']}, {r['blocks']} blocks, 1 switch"),
        ("hardware", f"{hw['cpu']}; GPU {hw['gpu'] or 'none'}; driver {hw['driver'] or 'none'}"),
        ("software", f"torch {hw['torch']}, CUDA {hw['cuda'] or 'none (CPU build)'}"),
        ("options", r["options"] + (f"; fell back: {'; '.join(r['fell_back'])}" if r["fell_back"] else "")),
        ("FPS, denoise loop alone", fps(r["fps_denoise"]) + " (no decode, no MP4: the papers' figure)"),
        ("FPS, steady pipeline", fps(r["fps_steady"]) + " (denoise + decode + encode, after block 1)"),
        ("FPS, end to end", fps(r["fps_end_to_end"]) + f" (text encoding {text}, every block, MP4 closed)"),
        ("time to first frame", f"{r['time_to_first_frame_s']:.3f} s warm, {r['cold_start_s']:.3f} s cold"),
        ("block latency", f"median {lat['median'] * 1000:.1f} ms, p90 {lat['p90'] * 1000:.1f} ms"),
        ("where the time goes", ", ".join(f"{k} {v:.3f} s" for k, v in r["stages_s"].items())),
        ("peak memory", f"{r['peak_memory_mib']:.0f} MiB"),
        ("excluded", "; ".join(r["excluded"])),
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
