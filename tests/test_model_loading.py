"""Loading a model through every path: spec file, model folder, Hub cache, LoRA on/off, EMA; errors.

A tiny release is written in the real formats: a diffusers-layout base (``transformer/config.json``,
``text_encoder/``, ``tokenizer/``, ``vae/``), an official generator checkpoint with ``generator`` and
``generator_ema`` entries and an official peft LoRA. Generation through the CLI
(``--save-latents``) is compared with the same sampler run on weights assembled independently here.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import torch
from diffusers import WanTransformer3DModel
from helpers import (
    CFG,
    LAYOUT,
    LINEARS,
    peft_format,
    populate_hub_cache,
    random_lora,
    random_wan,
    rel_err,
    save_official,
    write_tiny_base,
)
from typer.testing import CliRunner

from longlive_cli.cli import EXIT_MODEL, app
from longlive_cli.latents import read_latents
from longlive_cli.models import checkpoints
from longlive_cli.models.spec import PRESETS, SamplerConfig, components, resolve_model
from longlive_cli.models.transformer import CausalWanTransformer
from longlive_cli.models.umt5 import TextEncoder
from longlive_cli.samplers.longlive import sample_video
from longlive_cli.storyboard import load_storyboard, make_plan
from longlive_cli.text import encode_prompts

RANK, ALPHA = 4, 8.0
STORY = """\
seed: 11
duration: 2s
resolution: 64x48
prompts:
  - {at: 0s, text: a sailboat on a calm sea}
  - {at: 1s, text: the sailboat in a storm}
"""


def scaled(sd: dict[str, torch.Tensor], scale: float = 0.2) -> dict[str, torch.Tensor]:
    # Smaller random weights keep the tiny model's activations in a comfortable range.
    return {k: v * scale for k, v in sd.items()}


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("release")
    write_tiny_base(root / "base")
    gen, ema = scaled(random_wan(1)), scaled(random_wan(2))
    save_official(root / "longlive_base.pt", gen, ema)
    lora = {
        m: (a * 0.2, b * 0.2)
        for m, (a, b) in random_lora([f"blocks.{i}.{n}" for i in range(2) for n in LINEARS], RANK, 5).items()
    }
    torch.save({"generator_lora": peft_format(lora)}, root / "lora.pt")
    torch.save({"gen": gen, "ema": ema, "lora": lora}, root / "truth.pt")
    (root / "story.yaml").write_text(STORY)
    return root


def write_spec(path: Path, **fields) -> Path:
    lines = [f"{k}: {json.dumps(v)}" for k, v in fields.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@functools.cache
def expected_latents(release: Path, *, key: str = "gen", with_lora: bool = True) -> torch.Tensor:
    """The sampler on weights assembled here: Wan keys renamed by hand, LoRA merged by hand."""
    truth = torch.load(release / "truth.pt")
    weights = dict(truth[key])
    if with_lora:
        for module, (a, b) in truth["lora"].items():
            weights[f"{module}.weight"] = weights[f"{module}.weight"] + (ALPHA / RANK) * (b @ a)
    wan = WanTransformer3DModel(**CFG)
    wan.load_state_dict({LAYOUT[k][1]: v for k, v in weights.items()}, strict=True)
    model = CausalWanTransformer(wan.eval())
    plan = make_plan(load_storyboard(release / "story.yaml"))
    text = TextEncoder.from_pretrained(release / "base")
    embeds = encode_prompts(text, [s.text for s in plan.segments])
    segments = [plan.segment_for_block(b) for b in range(plan.num_blocks)]
    blocks = sample_video(
        model, embeds, segments, latent_height=6, latent_width=8, seed=11, sampler_config=SamplerConfig()
    )
    return torch.cat([b.latents for b in blocks], dim=1)


def generate(release: Path, model: str, tmp_path: Path, *extra: str):
    out, lat = tmp_path / "out.mp4", tmp_path / "out.safetensors"
    # The parity command of the issue: --model SPEC --device cpu --dtype float32 --seed S --save-latents F
    args = [
        "generate",
        str(release / "story.yaml"),
        "-o",
        str(out),
        "--model",
        model,
        "--device",
        "cpu",
        "--seed",
        "11",
    ]
    result = CliRunner().invoke(app, [*args, "--dtype", "float32", "--save-latents", str(lat), "-q", *extra])
    return result, lat


def test_spec_file_with_generator_and_lora_matches_independent_weights(release, tmp_path):
    spec = write_spec(
        release / "spec.yaml",
        base="base",
        generator="longlive_base.pt",
        lora="lora.pt",
        lora_rank=RANK,
        lora_alpha=ALPHA,
    )
    result, lat = generate(release, str(spec), tmp_path)
    assert result.exit_code == 0, result.output
    latents, plan = read_latents(lat)
    assert latents.shape == (1, 9, 16, 6, 8) and plan["num_latent_frames"] == 9
    assert rel_err(latents, expected_latents(release)) < 1e-5
    assert rel_err(latents, expected_latents(release, with_lora=False)) > 1e-3  # the LoRA matters


def test_lora_off_and_generator_ema(release, tmp_path):
    spec = write_spec(
        tmp_path / "s.yaml",
        base=str(release / "base"),
        generator=str(release / "longlive_base.pt"),
        generator_key="generator_ema",
    )
    result, lat = generate(release, str(spec), tmp_path)
    assert result.exit_code == 0, result.output
    assert rel_err(read_latents(lat)[0], expected_latents(release, key="ema", with_lora=False)) < 1e-5


def test_model_folder_with_spec_inside(release, tmp_path):
    folder = tmp_path / "mymodel"
    folder.mkdir()
    write_spec(
        folder / "longlive-model.yaml",
        base=str(release / "base"),
        generator=str(release / "longlive_base.pt"),
        lora=str(release / "lora.pt"),
        lora_rank=RANK,
        lora_alpha=ALPHA,
    )
    result, lat = generate(release, str(folder), tmp_path)
    assert result.exit_code == 0, result.output
    assert rel_err(read_latents(lat)[0], expected_latents(release)) < 1e-5


def test_hub_references_resolve_from_a_prepopulated_cache_offline(release, tmp_path, monkeypatch):
    base = release / "base"
    populate_hub_cache(
        "test-org/tiny-wan-diffusers",
        {
            "transformer/config.json": base / "transformer" / "config.json",
            "text_encoder": base / "text_encoder",
            "tokenizer": base / "tokenizer",
            "vae": base / "vae",
        },
    )
    populate_hub_cache(
        "test-org/tiny-longlive",
        {"models/longlive_base.pt": release / "longlive_base.pt", "models/lora.pt": release / "lora.pt"},
    )
    spec = write_spec(
        tmp_path / "hub.yaml",
        base="test-org/tiny-wan-diffusers",
        generator="test-org/tiny-longlive:models/longlive_base.pt",
        lora="test-org/tiny-longlive:models/lora.pt",
        lora_rank=RANK,
        lora_alpha=ALPHA,
    )
    result, lat = generate(release, str(spec), tmp_path, "--offline")
    assert result.exit_code == 0, result.output
    assert rel_err(read_latents(lat)[0], expected_latents(release)) < 1e-5

    # The converted weights were cached: a second run never reads the generator checkpoint.
    def refuse(*args, **kwargs):
        raise AssertionError("the generator checkpoint was read again")

    monkeypatch.setattr(checkpoints, "load_official_state_dict", refuse)
    again = tmp_path / "again"
    again.mkdir()
    result, lat = generate(release, str(spec), again, "--offline")
    assert result.exit_code == 0, result.output
    assert rel_err(read_latents(lat)[0], expected_latents(release)) < 1e-5


def test_default_preset_fetches_only_what_it_uses():
    parts = {p.role: str(p.source) for p in components(PRESETS["longlive-1.3b"])}
    assert parts == {
        "text_encoder": "Wan-AI/Wan2.1-T2V-1.3B:models_t5_umt5-xxl-enc-bf16.pth",
        "tokenizer": "Wan-AI/Wan2.1-T2V-1.3B:google/umt5-xxl",
        "transformer_config": "Wan-AI/Wan2.1-T2V-1.3B-Diffusers:transformer/config.json",
        "generator": "Efficient-Large-Model/LongLive-1.3B:models/longlive_base.pt",
        "lora": "Efficient-Large-Model/LongLive-1.3B:models/lora.pt",
        "vae": "Wan-AI/Wan2.1-T2V-1.3B:Wan2.1_VAE.pth",
    }


def test_spec_errors_name_the_problem(release, tmp_path):
    cases = {
        "missing file": (dict(base=str(release / "base"), generator=str(tmp_path / "nope.pt")), "nope.pt"),
        "unknown key": (dict(base=str(release / "base"), lorra="x"), "lorra"),
        "no base": (dict(generator=str(release / "longlive_base.pt")), "'base' is required"),
    }
    for name, (fields, needle) in cases.items():
        spec = write_spec(tmp_path / f"{name.replace(' ', '_')}.yaml", **fields)
        result, lat = generate(release, str(spec), tmp_path)
        assert result.exit_code == EXIT_MODEL, (name, result.output)
        assert needle in result.stderr and "Traceback" not in result.output, (name, result.stderr)
        assert not lat.exists() and not (tmp_path / "out.mp4").exists()


def test_generator_missing_a_key_is_an_error_naming_it(release, tmp_path):
    gen = scaled(random_wan(1))
    del gen["blocks.1.ffn.2.bias"]
    save_official(tmp_path / "broken.pt", gen)
    spec = write_spec(tmp_path / "b.yaml", base=str(release / "base"), generator=str(tmp_path / "broken.pt"))
    result, _ = generate(release, str(spec), tmp_path)
    assert result.exit_code == EXIT_MODEL and "blocks.1.ffn" in result.stderr, result.stderr


def test_unknown_model_name_lists_presets():
    with pytest.raises(Exception, match="tiny-random"):
        resolve_model("no-such-model")


def test_download_prints_each_file_and_its_size(release, tmp_path):
    populate_hub_cache("test-org/tiny-longlive", {"models/longlive_base.pt": release / "longlive_base.pt"})
    spec = write_spec(
        tmp_path / "d.yaml",
        base=str(release / "base"),
        generator="test-org/tiny-longlive:models/longlive_base.pt",
    )
    result = CliRunner().invoke(app, ["download", str(spec)])
    assert result.exit_code == 0, result.output
    size = (release / "longlive_base.pt").stat().st_size
    line = next(x for x in result.stdout.splitlines() if x.startswith("generator"))
    assert "test-org/tiny-longlive:models/longlive_base.pt" in line and f"{size / 1000:.1f} KB" in line
    assert "vae" in result.stdout and "total" in result.stdout


@pytest.mark.parametrize("which", ["generator", "lora", "vae_safetensors"])
def test_truncated_or_corrupted_weight_files_are_clear_errors(release, tmp_path, which):
    import shutil

    fields = dict(base=str(release / "base"), generator=str(release / "longlive_base.pt"))
    if which == "generator":
        data = (release / "longlive_base.pt").read_bytes()
        bad = tmp_path / "truncated.pt"
        bad.write_bytes(data[: len(data) // 2])
        fields["generator"] = str(bad)
    elif which == "lora":
        bad = tmp_path / "garbage_lora.pt"
        bad.write_bytes(b"\x00\x01 this is not a checkpoint" * 50)
        fields.update(lora=str(bad), lora_rank=RANK, lora_alpha=ALPHA)
    else:
        base = tmp_path / "base"
        shutil.copytree(release / "base", base)
        weights = next((base / "vae").glob("*.safetensors"))
        weights.write_bytes(weights.read_bytes()[:100])
        bad = weights
        fields["base"] = str(base)
    spec = write_spec(tmp_path / "c.yaml", **fields)
    result, lat = generate(release, str(spec), tmp_path)
    assert result.exit_code == EXIT_MODEL, result.output
    assert bad.name in result.stderr and "Traceback" not in result.output, result.stderr
    assert not lat.exists()


def test_download_offline_lists_what_is_present_and_missing_with_sizes(release, tmp_path, monkeypatch):
    from longlive_cli import hub

    monkeypatch.delenv("HF_HUB_OFFLINE")  # --offline alone must keep it off the network

    def no_network(*args, **kwargs):
        raise AssertionError("the Hub was contacted")

    monkeypatch.setattr(hub, "_hub_reachable", no_network)
    populate_hub_cache("test-org/tiny-longlive", {"models/longlive_base.pt": release / "longlive_base.pt"})
    spec = write_spec(
        tmp_path / "d.yaml",
        base=str(release / "base"),
        generator="test-org/tiny-longlive:models/longlive_base.pt",
        lora="test-org/tiny-longlive:models/lora.pt",
        lora_rank=RANK,
        lora_alpha=ALPHA,
    )
    result = CliRunner().invoke(app, ["download", str(spec), "--offline"])
    assert result.exit_code == EXIT_MODEL, result.output
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    size = (release / "longlive_base.pt").stat().st_size
    assert f"{size / 1000:.1f} KB" in lines["generator"] and "->" in lines["generator"]
    assert "missing" in lines["lora"] and "test-org/tiny-longlive:models/lora.pt" in lines["lora"]
    assert "missing 1 of 6" in result.stdout and "present" in lines["total"]
    assert "models/lora.pt" in result.stderr and "longlive download" in result.stderr

    populate_hub_cache("test-org/tiny-longlive", {"models/lora.pt": release / "lora.pt"})
    result = CliRunner().invoke(app, ["download", str(spec), "--offline"])
    assert result.exit_code == 0 and "missing" not in result.stdout

    result = CliRunner().invoke(app, ["download", "--offline"])  # the default preset, nothing cached
    assert result.exit_code == EXIT_MODEL
    assert "missing 6 of 6 (about 20.4 GB and more)" in result.stdout  # the tokenizer's size is not known
    assert "(about 11.4 GB)" in result.stdout and "(about 5.68 GB)" in result.stdout


def test_cache_command_lists_and_clears_with_sizes(release, tmp_path):
    from longlive_cli import LongLive
    from longlive_cli.memory import human_bytes
    from longlive_cli.models.spec import converted_cache_dir, embeddings_cache_dir

    checkpoints.load_transformer(CFG, generator=release / "longlive_base.pt", cache_dir=converted_cache_dir())
    ll = LongLive.from_pretrained("tiny-random", device="cpu")
    ll.encode_prompts([ll.plan(STORY)])
    (converted,) = converted_cache_dir().iterdir()
    embeds = sorted(embeddings_cache_dir().iterdir())
    assert len(embeds) == 2
    (embeddings_cache_dir() / "notes.txt").write_text("not ours")  # never counted nor removed

    result = CliRunner().invoke(app, ["cache"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    total = converted.stat().st_size + sum(p.stat().st_size for p in embeds)
    assert any(x.startswith("converted") and "1 files" in x for x in lines)
    assert any(converted.name in x and human_bytes(converted.stat().st_size) in x for x in lines)
    embed_size = human_bytes(sum(p.stat().st_size for p in embeds))
    assert any(x.startswith("embeddings") and "2 files" in x and embed_size in x for x in lines)
    assert lines[-1] == f"total {human_bytes(total)}"

    result = CliRunner().invoke(app, ["cache", "clear", "--what", "embeddings"])
    assert result.exit_code == 0 and "removed 2 files" in result.stdout
    assert converted.exists() and not any(p.exists() for p in embeds)
    assert (embeddings_cache_dir() / "notes.txt").exists()
    assert CliRunner().invoke(app, ["cache", "clear"]).exit_code == 0 and not converted.exists()
