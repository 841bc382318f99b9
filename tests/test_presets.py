"""The presets for the other released checkpoints of the family: their files, entries and sampler
settings, each loaded through ``generate --model PRESET`` from a pre-populated Hub cache, and Self-Forcing's
cache rules.

Each test writes a tiny checkpoint in its release's official layout (``torch.save`` of a dict of entries,
each a ``WanDiffusionWrapper`` state dict: ``model.<Wan key>``, with FSDP's ``_fsdp_wrapped_module.`` where
the official loader removes it) under the real repo id and file name, and the tiny transformer
``config.json`` under ``Wan-AI/Wan2.1-T2V-1.3B-Diffusers``. The real presets read UMT5-XXL and the full-size
Wan VAE from the original ``Wan-AI/Wan2.1-T2V-1.3B`` ``.pth`` files, which no tiny file can stand in for
(their loaders build the full-size architectures; ``test_original_formats.py`` covers those formats), so
here the preset takes the tiny text encoder, tokenizer and VAE from the Diffusers repo's folders instead;
everything else is the preset as shipped. The latents must equal the preset's sampler run on weights
assembled by hand from the entry the official inference reads.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from helpers import CFG, LAYOUT, populate_hub_cache, random_wan, rel_err
from typer.testing import CliRunner

from longlive_cli.cli import app
from longlive_cli.latents import read_latents
from longlive_cli.models import checkpoints, spec
from longlive_cli.models.kv_cache import KVCache
from longlive_cli.models.spec import PRESETS, SamplerConfig, components
from longlive_cli.models.transformer import CausalWanTransformer
from longlive_cli.models.umt5 import TextEncoder, build_tiny_text_encoder
from longlive_cli.models.vae import tiny_vae_config
from longlive_cli.reference import naive_sample_video
from longlive_cli.samplers import get_sampler
from longlive_cli.samplers.longlive import sample_video
from longlive_cli.samplers.rolling_forcing import ROLLING_FORCING
from longlive_cli.schedule import FixedSchedule
from longlive_cli.storyboard import load_storyboard, make_plan
from longlive_cli.text import encode_prompts

WAN = {
    "text_encoder": "Wan-AI/Wan2.1-T2V-1.3B:models_t5_umt5-xxl-enc-bf16.pth",
    "tokenizer": "Wan-AI/Wan2.1-T2V-1.3B:google/umt5-xxl",
    "transformer_config": "Wan-AI/Wan2.1-T2V-1.3B-Diffusers:transformer/config.json",
    "vae": "Wan-AI/Wan2.1-T2V-1.3B:Wan2.1_VAE.pth",
}
# Verified against the official repositories (see longlive_cli/models/spec.py and docs/models.md).
GENERATORS = {
    "rolling-forcing": ("TencentARC/RollingForcing:checkpoints/rolling_forcing_dmd.pt", "generator_ema"),
    "causal-forcing-long": ("zhuhz22/Causal-Forcing:chunkwise/longvideo.pt", "generator_ema"),
    "self-forcing": ("gdhe17/Self-Forcing:checkpoints/self_forcing_dmd.pt", "generator_ema"),
    "causal-forcing": ("zhuhz22/Causal-Forcing:chunkwise/causal_forcing.pt", "generator"),
}


def test_presets_name_the_verified_files_entries_and_samplers():
    for name, (generator, key) in GENERATORS.items():
        preset = PRESETS[name]
        parts = {p.role: str(p.source) for p in components(preset)}
        assert parts == {**WAN, "generator": generator}, name  # no LoRA, no base transformer weights
        assert preset.generator_key == key and preset.lora is None and preset.loras == (), name
    assert PRESETS["rolling-forcing"].sampler == ROLLING_FORCING
    long = PRESETS["causal-forcing-long"].sampler
    assert (long.name, long.denoising_steps, long.timestep_shift) == (
        "rolling-forcing",
        (1000, 750, 500, 250),
        5,
    )
    self_forcing = SamplerConfig(local_attn_size=21, sink_size=0)  # LongLive's sampler, absolute RoPE
    assert PRESETS["self-forcing"].sampler == PRESETS["causal-forcing"].sampler == self_forcing
    assert self_forcing.denoising_steps == (1000, 750, 500, 250) and self_forcing.timestep_shift == 5
    assert all(PRESETS[n].geometry == PRESETS["longlive-1.3b"].geometry for n in GENERATORS)
    sizes = {str(p.source): p.size for p in components(PRESETS["rolling-forcing"])}
    assert sizes[GENERATORS["rolling-forcing"][0]] == "17 GB"


def test_info_lists_every_preset_with_its_generator():
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    for name, (generator, _) in GENERATORS.items():
        line = next(x for x in result.stdout.splitlines() if x.strip().startswith(name + " "))
        assert generator in line, line


# --- each preset from a pre-populated Hub cache -------------------------------------------------------------


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A tiny Wan2.1-T2V-1.3B-Diffusers stand-in: transformer config, text encoder, tokenizer, VAE."""
    root = tmp_path_factory.mktemp("wan-diffusers")
    (root / "transformer").mkdir()
    (root / "transformer" / "config.json").write_text(json.dumps(dict(WanTransformer3DModel(**CFG).config)))
    build_tiny_text_encoder(seed=3).save_pretrained(root)
    torch.manual_seed(4)
    AutoencoderKLWan(**tiny_vae_config()).save_pretrained(root / "vae")
    return root


def weights(seed: int) -> dict[str, torch.Tensor]:
    return {k: 0.2 * v for k, v in random_wan(seed).items()}  # small: a comfortable range for the tiny model


def official_file(path: Path, name: str) -> dict[str, torch.Tensor]:
    """Write ``name``'s checkpoint in its official layout; return the weights its inference reads."""
    gen, ema = weights(1), weights(2)
    plain = {f"model.{k}": v for k, v in gen.items()}
    fsdp = {f"model._fsdp_wrapped_module.{k}": v for k, v in ema.items()}
    if name in ("rolling-forcing", "causal-forcing-long"):  # inference.py --use_ema strips the FSDP part
        ckpt = {"generator": plain, "generator_ema": fsdp}
    elif name == "self-forcing":  # inference.py --use_ema loads generator_ema strictly: plain keys
        ckpt = {"generator": plain, "generator_ema": {f"model.{k}": v for k, v in ema.items()}}
        ckpt["critic"] = {"not.a.wan.key": torch.zeros(3)}  # entries other than the one read do not matter
    else:  # causal-forcing, chunk-wise: no --use_ema; inference.py strips model._fsdp_wrapped_module.
        ckpt = {"generator": {f"model._fsdp_wrapped_module.{k}": v for k, v in gen.items()}}
        ckpt["generator_ema"] = {f"model.{k}": v for k, v in ema.items()}
    torch.save(ckpt, path)
    return ema if PRESETS[name].generator_key == "generator_ema" else gen


STORIES = {  # rolling samplers need S blocks; Self-Forcing's cache rolls after 21 latent frames (block 7)
    "rolling-forcing": ("4s", [("0s", "a lighthouse at dusk")]),
    "causal-forcing-long": ("4s", [("0s", "a lighthouse at dusk"), ("3s", "a lighthouse in a storm")]),
    "self-forcing": ("8s", [("0s", "a lighthouse at dusk"), ("6s", "a lighthouse in a storm")]),
    "causal-forcing": ("2s", [("0s", "a lighthouse at dusk"), ("1s", "a lighthouse in a storm")]),
}


@pytest.mark.parametrize("name", list(GENERATORS))
def test_generate_with_the_preset_reads_its_official_file_and_entry(name, base, tmp_path, monkeypatch):
    generator, _ = GENERATORS[name]
    repo, path_in_repo = generator.split(":")
    truth = official_file(tmp_path / "ckpt.pt", name)
    populate_hub_cache(repo, {path_in_repo: tmp_path / "ckpt.pt"})
    folders = {sub: base / sub for sub in ("text_encoder", "tokenizer", "vae")}
    populate_hub_cache(
        "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
        {"transformer/config.json": base / "transformer/config.json", **folders},
    )
    preset = replace(PRESETS[name], text_encoder=None, tokenizer=None, vae=None)  # see the module docs
    monkeypatch.setitem(spec.PRESETS, name, preset)
    loads = []
    torch_load = torch.load

    def spy(path, *args, **kwargs):
        loads.append((Path(path).name, kwargs.get("weights_only"), kwargs.get("mmap")))
        return torch_load(path, *args, **kwargs)

    monkeypatch.setattr(checkpoints.torch, "load", spy)

    duration, prompts = STORIES[name]
    board = tmp_path / "story.yaml"
    lines = [f"duration: {duration}", "resolution: 64x48", "prompts:"]
    board.write_text("\n".join(lines + [f"  - {{at: {at}, text: {text}}}" for at, text in prompts]) + "\n")
    lat = tmp_path / "out.safetensors"
    args = ["generate", str(board), "-o", str(tmp_path / "out.mp4"), "--model", name, "--offline"]
    args += ["--device", "cpu", "--dtype", "float32", "--seed", "5", "--save-latents", str(lat), "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (Path(path_in_repo).name, True, True) in loads  # weights_only, memory-mapped

    wan = WanTransformer3DModel(**CFG)
    wan.load_state_dict({LAYOUT[k][1]: v for k, v in truth.items()}, strict=True)
    plan = make_plan(load_storyboard(board))
    embeds = encode_prompts(TextEncoder.from_pretrained(base), [s.text for s in plan.segments])
    schedule = FixedSchedule(embeds, [plan.segment_for_block(b) for b in range(plan.num_blocks)])
    sampler_config = PRESETS[name].sampler
    blocks = get_sampler(sampler_config.name)(
        CausalWanTransformer(wan.eval()),
        schedule,
        latent_height=6,
        latent_width=8,
        seed=5,
        sampler_config=sampler_config,
        geometry=PRESETS[name].geometry,
    )
    expected = torch.cat([b.latents for b in blocks], dim=1)
    got = read_latents(lat)[0]
    assert got.shape == expected.shape == (1, plan.num_latent_frames, 16, 6, 8)
    assert rel_err(got, expected) < 1e-5


# --- Self-Forcing's cache: 21 latent frames, no sink --------------------------------------------------------

H, W = 4, 6
SELF_FORCING = PRESETS["self-forcing"].sampler


@pytest.fixture(scope="module")
def embeds() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.randn(1, 512, 32, generator=g) for _ in range(2)]


def test_a_cache_without_sink_evicts_the_oldest_frames_past_21():
    cache = KVCache(
        num_layers=1, batch_size=1, tokens_per_frame=2, heads=1, head_dim=4, capacity_frames=21, sink_frames=0
    )
    for start in range(0, 21, 3):
        cache.assign(start, 3)
    assert cache.frames() == tuple(range(21)) and cache.sink() == ()
    write = cache.assign(21, 3)  # the official roll: frames 0-2 go, nothing is kept as a sink
    assert cache.frames() == tuple(range(3, 24)) and write.frame_slots == (0, 1, 2) and write.num_valid == 21
    cache.assign(24, 3)
    assert cache.frames() == tuple(range(6, 27)) and cache.sink() == ()


def test_self_forcing_rolls_past_21_frames_as_the_official_cache_does(model, embeds):
    blocks = 10  # 30 latent frames: from block 7 (frame 21) on, each block drops the oldest block
    cached = [
        b.latents
        for b in sample_video(
            model, embeds, [0] * blocks, latent_height=H, latent_width=W, seed=7, sampler_config=SELF_FORCING
        )
    ]
    naive = list(
        naive_sample_video(
            model, embeds[0], blocks, latent_height=H, latent_width=W, seed=7, sampler_config=SELF_FORCING
        )
    )
    for i, (c, n) in enumerate(zip(cached, naive, strict=True)):
        assert rel_err(c, n) < 1e-5, f"block {i}"
    # Sharp: attention over everything so far (no eviction) is the same up to 21 frames, and differs after.
    unbounded = SamplerConfig(local_attn_size=3 * blocks, sink_size=0)
    wide = list(
        naive_sample_video(
            model, embeds[0], blocks, latent_height=H, latent_width=W, seed=7, sampler_config=unbounded
        )
    )
    assert all(torch.equal(wide[i], naive[i]) for i in range(7))
    assert all(rel_err(wide[i], naive[i]) > 1e-3 for i in range(7, blocks))
    # and LongLive's 3-frame sink would keep frames 0-2: another video
    sink = list(
        naive_sample_video(
            model,
            embeds[0],
            blocks,
            latent_height=H,
            latent_width=W,
            seed=7,
            sampler_config=replace(SELF_FORCING, sink_size=3),
        )
    )
    assert rel_err(sink[-1], naive[-1]) > 1e-3


def test_self_forcing_recache_rewrites_every_cached_frame(model, embeds):
    from longlive_cli.samplers.longlive import recache

    cache = model.new_cache(H, W, capacity_frames=21, sink_frames=0)
    prompt = model.encode_prompt(embeds[0])
    g = torch.Generator().manual_seed(5)
    recent = torch.zeros(1, 0, 16, H, W)
    for b in range(9):  # 27 frames: the cache holds 6-26
        x0 = torch.randn(1, 3, 16, H, W, generator=g)
        model(x0, torch.zeros(1), prompt, start_frame=3 * b, cache=cache)
        recent = torch.cat([recent, x0], dim=1)[:, -21:]
    before = cache.k.clone()
    recache(model, cache, recent, 27, model.encode_prompt(embeds[1]), SELF_FORCING)
    tpf = model.tokens_per_frame(H, W)
    changed = [
        not torch.equal(before[:, :, s * tpf : (s + 1) * tpf], cache.k[:, :, s * tpf : (s + 1) * tpf])
        for s in range(21)
    ]
    assert all(changed) and cache.frames() == tuple(range(6, 27)) and cache.sink() == ()
    # With no sink, keeping it (global_sink) or not is the same re-cache: one pass over the 21 frames.
    fresh = model.new_cache(H, W, capacity_frames=21, sink_frames=0)
    model(recent, torch.zeros(1), model.encode_prompt(embeds[1]), start_frame=6, cache=fresh)
    order = [cache.slot_frames.index(f) for f in range(6, 27)]
    rows = torch.cat([torch.arange(s * tpf, (s + 1) * tpf) for s in order])
    torch.testing.assert_close(cache.k[:, :, rows], fresh.k, rtol=1e-6, atol=1e-6)


def test_self_forcing_switch_is_the_same_with_or_without_global_sink(model, embeds):
    segments = [0] * 9 + [1] * 2  # the switch at frame 27, after the cache has rolled
    runs = {}
    for global_sink in (True, False):
        sampler_config = replace(SELF_FORCING, global_sink=global_sink)
        runs[global_sink] = [
            b.latents
            for b in sample_video(
                model,
                embeds,
                segments,
                latent_height=H,
                latent_width=W,
                seed=7,
                sampler_config=sampler_config,
            )
        ]
    assert all(rel_err(a, b) < 1e-5 for a, b in zip(runs[True], runs[False], strict=True))
    plain = [
        b.latents
        for b in sample_video(
            model, embeds, [0] * 11, latent_height=H, latent_width=W, seed=7, sampler_config=SELF_FORCING
        )
    ]
    assert all(torch.equal(plain[i], runs[True][i]) for i in range(9))
    assert all(rel_err(plain[i], runs[True][i]) > 1e-3 for i in (9, 10))


def test_self_forcing_cache_under_the_speed_switches_matches_the_plain_path(model, embeds):
    from longlive_cli.runtime import RuntimeOptions

    segments = [0] * 8 + [1] * 2  # rolls at block 7, switches at block 8

    def run(options: RuntimeOptions) -> torch.Tensor:
        fast = CausalWanTransformer(copy.deepcopy(model.wan)).configure(options)
        sampler_config = SELF_FORCING
        blocks = sample_video(
            fast, embeds, segments, latent_height=H, latent_width=W, seed=7, sampler_config=sampler_config
        )
        return torch.cat([b.latents for b in blocks], dim=1)

    plain = run(RuntimeOptions())
    fast = run(RuntimeOptions(static_cache=True, rope_cache=True, fused_qkv=True, attention="sdpa-math"))
    assert rel_err(fast, plain) < 1e-5
