"""User LoRAs (``--lora SOURCE[:SCALE]``, spec key ``loras``): every file format, the merge arithmetic,
scales, errors naming the entry, the converted-weights cache keyed by the LoRAs, generation through the CLI.

LoRA files are written here in the three layouts community Wan2.1 LoRAs ship in, from the module names of
``helpers.LAYOUT`` (original Wan names and diffusers names written by hand, not by diffusers' converters):

* diffusers / peft: ``transformer.blocks.0.attn1.to_q.lora_A.weight`` (alpha in diffusers' safetensors
  metadata ``lora_adapter_metadata``, or as ``<module>.alpha`` entries, or absent: scale 1);
* original Wan (ComfyUI): ``diffusion_model.blocks.0.self_attn.q.lora_down.weight`` / ``lora_up`` + ``alpha``;
* kohya / musubi-tuner: ``lora_unet_blocks_0_self_attn_q.lora_down.weight`` / ``lora_up`` + ``alpha``.

The expected weights are computed by hand: ``W + scale * (alpha / rank) * B @ A`` on the original weights.
"""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from diffusers import WanTransformer3DModel
from helpers import (
    CFG,
    LAYOUT,
    LINEARS,
    populate_hub_cache,
    random_lora,
    random_wan,
    rel_err,
    save_official,
    write_tiny_base,
)
from safetensors.torch import save_file
from typer.testing import CliRunner

from longlive_cli.cli import app
from longlive_cli.errors import EXIT_BAD_INPUT, EXIT_MODEL, InputError, ModelError
from longlive_cli.latents import read_latents
from longlive_cli.models import user_loras
from longlive_cli.models.checkpoints import CheckpointError, cache_digest, load_transformer
from longlive_cli.models.loaders import build_tiny_random, load_model
from longlive_cli.models.spec import (
    LoraSpec,
    ModelSpec,
    SamplerConfig,
    load_spec,
    parse_lora,
    resolve_model,
    with_loras,
)
from longlive_cli.models.transformer import CausalWanTransformer
from longlive_cli.models.umt5 import TextEncoder
from longlive_cli.models.user_loras import read_user_lora
from longlive_cli.samplers.longlive import sample_video
from longlive_cli.storyboard import load_storyboard, make_plan
from longlive_cli.text import encode_prompts

RANK, ALPHA = 4, 2.0  # alpha / rank = 0.5
ALL = [f"blocks.{i}.{n}" for i in range(2) for n in LINEARS]  # every Linear of both blocks (kohya needs all)
SOME = ["blocks.0.self_attn.q", "blocks.1.cross_attn.o", "blocks.1.ffn.0", "blocks.0.ffn.2"]


def diffusers_module(wan_module: str) -> str:
    return LAYOUT[f"{wan_module}.weight"][1].removesuffix(".weight")


def lora_weights(modules=ALL, seed=5, rank=RANK) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return {m: (a * 0.3, b * 0.3) for m, (a, b) in random_lora(modules, rank, seed).items()}


def write_diffusers(path: Path, lora, *, alpha=ALPHA, how="metadata", prefix="transformer.", tag=""):
    """diffusers / peft names; ``how``: alpha in the ``lora_adapter_metadata`` metadata, as ``.alpha``
    entries, or nowhere."""
    sd, metadata = {}, {}
    for m, (a, b) in lora.items():
        name = f"{prefix}{diffusers_module(m)}"
        sd[f"{name}.lora_A{tag}.weight"], sd[f"{name}.lora_B{tag}.weight"] = a, b
        if how == "entries":
            sd[f"{name}.alpha"] = torch.tensor(alpha)
    if how == "metadata":  # as diffusers' save_lora_weights writes a peft LoraConfig
        config = {"transformer.r": RANK, "transformer.lora_alpha": alpha, "transformer.use_rslora": False}
        metadata = {"format": "pt", "lora_adapter_metadata": json.dumps(config)}
    if path.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path), metadata=metadata)
    else:
        torch.save(sd, path)
    return path


def write_original(path: Path, lora, *, alpha: float | None = ALPHA, down="lora_down", up="lora_up"):
    sd = {}
    for m, (a, b) in lora.items():
        sd[f"diffusion_model.{m}.{down}.weight"], sd[f"diffusion_model.{m}.{up}.weight"] = a, b
        if alpha is not None:
            sd[f"diffusion_model.{m}.alpha"] = torch.tensor(alpha)
    save_file(sd, str(path))
    return path


def write_kohya(path: Path, lora, *, alpha=ALPHA):
    sd = {}
    for m, (a, b) in lora.items():
        name = "lora_unet_" + m.replace(".", "_")
        sd[f"{name}.lora_down.weight"], sd[f"{name}.lora_up.weight"] = a, b
        sd[f"{name}.alpha"] = torch.tensor(alpha)
    save_file(sd, str(path))
    return path


def by_hand(base: dict[str, torch.Tensor], *loras) -> dict[str, torch.Tensor]:
    """``(lora weights, scale * alpha / rank)`` merged into original-named weights, in float64."""
    out = {k: v.double() for k, v in base.items()}
    for lora, factor in loras:
        for m, (a, b) in lora.items():
            out[f"{m}.weight"] += factor * (b.double() @ a.double())
    return out


def assert_weights(model: WanTransformer3DModel, expected: dict[str, torch.Tensor], changed=()) -> None:
    got = model.state_dict()
    for orig, (_, new) in LAYOUT.items():
        if orig.removesuffix(".weight") in changed:
            torch.testing.assert_close(got[new].double(), expected[orig], rtol=1e-5, atol=1e-6)
        else:
            assert torch.equal(got[new], expected[orig].float()), orig


@pytest.fixture(scope="module")
def gen_file(tmp_path_factory) -> Path:
    return save_official(tmp_path_factory.mktemp("gen") / "gen.pt", random_wan(0))


# --- formats and arithmetic -------------------------------------------------------------------------------


FORMATS = {
    "diffusers, alpha in metadata": lambda p, lora: write_diffusers(p / "l.safetensors", lora),
    "diffusers, alpha entries": lambda p, lora: write_diffusers(p / "l.safetensors", lora, how="entries"),
    "peft prefix and adapter name, .pt": lambda p, lora: write_diffusers(
        p / "l.pt", lora, how="entries", prefix="base_model.model.", tag=".default"
    ),
    "original Wan, lora_down/up + alpha": lambda p, lora: write_original(p / "l.safetensors", lora),
    "kohya / musubi": lambda p, lora: write_kohya(p / "l.safetensors", lora),
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_merges_to_the_hand_computed_weights(tmp_path, gen_file, fmt):
    lora = lora_weights()
    path = FORMATS[fmt](tmp_path, lora)
    model = load_transformer(CFG, generator=gen_file, user_loras=[(path, 1.0)])
    assert_weights(model, by_hand(random_wan(0), (lora, ALPHA / RANK)), changed=ALL)


def test_a_scale_multiplies_the_files_alpha_over_rank_and_untouched_weights_stay(tmp_path, gen_file):
    lora = lora_weights(SOME)
    path = write_diffusers(tmp_path / "l.safetensors", lora)
    model = load_transformer(CFG, generator=gen_file, user_loras=[(path, 0.7)])
    assert_weights(model, by_hand(random_wan(0), (lora, 0.7 * ALPHA / RANK)), changed=SOME)
    zero = load_transformer(CFG, generator=gen_file, user_loras=[(path, 0.0)])
    assert_weights(zero, by_hand(random_wan(0)), changed=SOME)  # scale 0: the weights as they were
    assert not torch.equal(
        model.state_dict()["blocks.0.attn1.to_q.weight"], zero.state_dict()["blocks.0.attn1.to_q.weight"]
    )


def test_no_alpha_means_scale_one_and_two_loras_add_up(tmp_path, gen_file):
    first, second = lora_weights(SOME, seed=1), lora_weights(SOME[:2], seed=2)
    a = write_original(tmp_path / "a.safetensors", first, alpha=None, down="lora_A", up="lora_B")
    b = write_diffusers(tmp_path / "b.safetensors", second, how="none")
    model = load_transformer(CFG, generator=gen_file, user_loras=[(a, 1.0), (b, -2.0)])
    assert_weights(model, by_hand(random_wan(0), (first, 1.0), (second, -2.0)), changed=SOME)


def test_rslora_metadata_scales_by_the_square_root_of_the_rank(tmp_path):
    lora = lora_weights(SOME[:1])
    ((m, (a, b)),) = lora.items()
    config = {"lora_alpha": 8, "r": RANK, "use_rslora": True}  # unprefixed: save_lora_adapter's metadata
    name = f"transformer.{diffusers_module(m)}"
    path = tmp_path / "r.safetensors"
    save_file(
        {f"{name}.lora_A.weight": a, f"{name}.lora_B.weight": b},
        str(path),
        metadata={"lora_adapter_metadata": json.dumps(config)},
    )
    (target,) = read_user_lora(path).values()
    assert target.scale == 8 / RANK**0.5 and target.key == f"{name}.lora_A.weight"


def test_lora_bias_differences_are_merged_into_the_bias(tmp_path, gen_file):
    lora = lora_weights(SOME[:1])
    ((m, (a, b)),) = lora.items()
    diff_b = torch.randn(b.shape[0], generator=torch.Generator().manual_seed(3))
    sd = {
        f"diffusion_model.{m}.lora_down.weight": a,
        f"diffusion_model.{m}.lora_up.weight": b,
        f"diffusion_model.{m}.diff_b": diff_b,
    }
    save_file(sd, str(tmp_path / "d.safetensors"))
    model = load_transformer(CFG, generator=gen_file, user_loras=[(tmp_path / "d.safetensors", 0.5)])
    bias_name = LAYOUT[f"{m}.bias"][1]
    torch.testing.assert_close(model.state_dict()[bias_name], random_wan(0)[f"{m}.bias"] + 0.5 * diff_b)


# --- errors -----------------------------------------------------------------------------------------------


def test_an_entry_for_a_module_the_model_lacks_is_an_error_naming_it(tmp_path, gen_file):
    a, b = lora_weights(SOME[:1])["blocks.0.self_attn.q"]
    path = tmp_path / "other.safetensors"
    save_file(
        {
            "transformer.blocks.7.attn1.to_q.lora_A.weight": a,
            "transformer.blocks.7.attn1.to_q.lora_B.weight": b,
        },
        str(path),
    )
    with pytest.raises(CheckpointError, match=r"'transformer\.blocks\.7\.attn1\.to_q\.lora_A\.weight'") as e:
        load_transformer(CFG, generator=gen_file, user_loras=[(path, 1.0)])
    assert isinstance(e.value, ModelError) and str(path) in str(e.value)


@pytest.mark.parametrize(
    ("entries", "needle"),
    [
        ({"transformer.blocks.0.attn1.to_q.weight": torch.zeros(24, 24)}, "blocks.0.attn1.to_q.weight"),
        (
            {
                "diffusion_model.blocks.0.self_attn.zz.lora_down.weight": torch.zeros(4, 24),
                "diffusion_model.blocks.0.self_attn.zz.lora_up.weight": torch.zeros(24, 4),
            },
            "self_attn.zz",
        ),
        ({"lora_unet_blocks_0_self_attn_q.lora_down.weight": torch.zeros(4, 24)}, "kohya/musubi"),
        ({"transformer.blocks.0.attn1.to_q.lora_A.weight": torch.zeros(4, 24)}, "no matching lora_A/lora_B"),
        (
            {
                "transformer.blocks.0.attn1.to_q.lora_A.weight": torch.zeros(4, 24),
                "transformer.blocks.0.attn1.to_q.lora_B.weight": torch.zeros(24, 4),
                "transformer.blocks.0.attn1.to_q.lora_magnitude_vector": torch.ones(24),
            },
            "DoRA",
        ),
        ({"diffusion_model.blocks.0.self_attn.q.diff": torch.ones(24, 24)}, "replace whole weights"),
    ],
)
def test_files_that_are_not_plain_wan_loras_are_refused_by_name(tmp_path, entries, needle):
    path = tmp_path / "bad.safetensors"
    save_file(entries, str(path))
    with pytest.raises(CheckpointError, match="LoRA") as e:
        read_user_lora(path)
    assert needle in str(e.value) and str(path) in str(e.value)


def test_lora_source_and_scale_parsing():
    assert parse_lora("style.safetensors") == LoraSpec("style.safetensors", 1.0)
    assert parse_lora("style.safetensors:0.8") == LoraSpec("style.safetensors", 0.8)
    assert parse_lora("owner/repo:loras/s.safetensors") == LoraSpec("owner/repo:loras/s.safetensors", 1.0)
    assert parse_lora("owner/repo:loras/s.safetensors:-1.5") == LoraSpec(
        "owner/repo:loras/s.safetensors", -1.5
    )
    for bad in (":0.5", "x:inf", "x:nan", ""):
        with pytest.raises(ValueError, match="LoRA"):
            parse_lora(bad)
    spec = with_loras(ModelSpec(name="m", base=None), ["owner/repo:a.safetensors:2", LoraSpec("b.pt")])
    assert spec.loras == (LoraSpec("owner/repo:a.safetensors", 2.0), LoraSpec(str(Path("b.pt").absolute())))
    with pytest.raises(InputError):
        with_loras(ModelSpec(name="m", base=None), ["x:inf"])
    quantized = ModelSpec(name="q", base=None, quantized="t.safetensors", scheme="w8a8")
    with pytest.raises(InputError, match="quantized"):
        with_loras(quantized, ["a.safetensors"])


def test_spec_file_loras_key(tmp_path):
    (tmp_path / "s.yaml").write_text(
        "base: base\nloras:\n  - style.safetensors:0.5\n  - {source: owner/repo:x.safetensors, scale: 2}\n"
        "  - {source: plain.pt}\n"
    )
    spec = load_spec(tmp_path / "s.yaml")
    want = (
        LoraSpec("style.safetensors", 0.5),
        LoraSpec("owner/repo:x.safetensors", 2.0),
        LoraSpec("plain.pt"),
    )
    assert spec.loras == want
    for bad in (
        "loras: x.pt",
        "loras: [{source: x.pt, scale: big}]",
        "loras: [{src: x.pt}]",
        "loras: [x.pt]\nquantized: q.safetensors\nscheme: w8a8",
    ):
        (tmp_path / "b.yaml").write_text(f"base: base\n{bad}\n")
        with pytest.raises(ModelError, match=r"loras|LoRA"):
            load_spec(tmp_path / "b.yaml")


# --- the converted-weights cache --------------------------------------------------------------------------


def test_cache_is_keyed_by_the_loras_their_scales_and_the_generator_entry(tmp_path, monkeypatch):
    gen = save_official(tmp_path / "gen.pt", random_wan(0), random_wan(1))
    one = write_diffusers(tmp_path / "one.safetensors", lora_weights(SOME, seed=1))
    two = write_diffusers(tmp_path / "two.safetensors", lora_weights(SOME, seed=2))
    cache = tmp_path / "cache"
    variants = [
        [],
        [(one, 1.0)],
        [(one, 0.5)],
        [(two, 1.0)],
        [(one, 1.0), (two, 1.0)],
        [(two, 1.0), (one, 1.0)],
    ]
    weights = {}
    for i, loras in enumerate(variants):
        weights[i] = load_transformer(CFG, generator=gen, user_loras=loras, cache_dir=cache).state_dict()
    ema = load_transformer(CFG, generator=gen, generator_key="generator_ema", cache_dir=cache).state_dict()
    assert len(list(cache.iterdir())) == len(variants) + 1  # one cache entry each, the EMA entry's too
    w = "blocks.0.attn1.to_q.weight"
    assert len({weights[i][w].sum().item() for i in range(4)} | {ema[w].sum().item()}) == 5

    def refuse(*args, **kwargs):
        raise AssertionError("a LoRA file was read although its merge is cached")

    monkeypatch.setattr(user_loras, "read_user_lora", refuse)
    again = load_transformer(CFG, generator=gen, user_loras=[(one, 0.5)], cache_dir=cache).state_dict()
    assert all(torch.equal(again[k], weights[2][k]) for k in again)
    digest = functools.partial(cache_digest, gen, lora=None, lora_rank=1, lora_alpha=1, dtype=torch.float32)
    assert digest(generator_key="generator") != digest(generator_key="generator_ema")
    assert digest(generator_key="generator", user_loras=[(one, 1.0)]) != digest(
        generator_key="generator", user_loras=[(one, 1.0 + 1e-9)]
    )


# --- through the model loaders and the command line --------------------------------------------------------


def test_tiny_random_gets_the_lora_merged_in_place(tmp_path):
    lora = lora_weights(SOME)
    path = write_original(tmp_path / "l.safetensors", lora)
    model = load_model(resolve_model("tiny-random", [f"{path}:2"]), device="cpu", dtype=torch.float32)
    plain = build_tiny_random()[0].state_dict()
    original = {orig: plain[new] for orig, (_, new) in LAYOUT.items()}
    assert_weights(model.transformer.wan, by_hand(original, (lora, 2 * ALPHA / RANK)), changed=SOME)


STORY = """\
seed: 3
duration: 2s
resolution: 64x48
prompts:
  - {at: 0s, text: a paper boat on a pond}
  - {at: 1s, text: the paper boat in the rain}
"""


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lora-release")
    write_tiny_base(root / "base")
    gen = {k: 0.2 * v for k, v in random_wan(1).items()}
    save_official(root / "gen.pt", gen)
    torch.save(gen, root / "truth.pt")
    (root / "story.yaml").write_text(STORY)
    return root


@functools.cache
def prompts(release: Path):
    """The plan's prompt embeddings and the segment of every block."""
    plan = make_plan(load_storyboard(release / "story.yaml"))
    embeds = encode_prompts(TextEncoder.from_pretrained(release / "base"), [s.text for s in plan.segments])
    return embeds, [plan.segment_for_block(b) for b in range(plan.num_blocks)]


def expected_latents(release: Path, weights: dict[str, torch.Tensor]) -> torch.Tensor:
    wan = WanTransformer3DModel(**CFG)
    wan.load_state_dict({LAYOUT[k][1]: v.float() for k, v in weights.items()}, strict=True)
    embeds, segments = prompts(release)
    model = CausalWanTransformer(wan.eval())
    sampler_config = SamplerConfig()
    blocks = sample_video(
        model, embeds, segments, latent_height=6, latent_width=8, seed=3, sampler_config=sampler_config
    )
    return torch.cat([b.latents for b in blocks], dim=1)


def cli_generate(release: Path, tmp_path: Path, model: str, *extra: str):
    lat = tmp_path / "out.safetensors"
    args = ["generate", str(release / "story.yaml"), "-o", str(tmp_path / "out.mp4"), "--model", model]
    args += ["--device", "cpu", "--dtype", "float32", "--save-latents", str(lat), "-q", *extra]
    return CliRunner().invoke(app, args), lat


def test_generate_with_lora_options_and_spec_loras_matches_hand_merged_weights(release, tmp_path):
    first, second = lora_weights(ALL, seed=7), lora_weights(SOME, seed=8)
    a = write_kohya(tmp_path / "a.safetensors", first)
    b = write_diffusers(tmp_path / "b.safetensors", second)
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"base: {release / 'base'}\ngenerator: {release / 'gen.pt'}\n")
    result, lat = cli_generate(release, tmp_path, str(spec), "--lora", f"{a}:0.7", "--lora", str(b))
    assert result.exit_code == 0, result.output
    truth = torch.load(release / "truth.pt")
    want = expected_latents(release, by_hand(truth, (first, 0.7 * ALPHA / RANK), (second, ALPHA / RANK)))
    assert rel_err(read_latents(lat)[0], want) < 1e-5
    assert rel_err(read_latents(lat)[0], expected_latents(release, truth)) > 1e-3  # the LoRAs matter

    # the same LoRAs as the spec's `loras:` (relative paths resolve against the spec's folder)
    spec.write_text(
        spec.read_text() + "loras:\n  - a.safetensors:0.7\n  - {source: b.safetensors, scale: 1}\n"
    )
    again = tmp_path / "again"
    again.mkdir()
    result, lat2 = cli_generate(release, again, str(spec))
    assert result.exit_code == 0, result.output
    # (the first run used the weights it merged, this one their cache: the same to float rounding)
    assert rel_err(read_latents(lat2)[0], read_latents(lat)[0]) < 1e-6


def test_cli_lora_errors_exit_with_their_codes(release, tmp_path):
    a, b = lora_weights(SOME[:1])["blocks.0.self_attn.q"]
    bad = tmp_path / "bad.safetensors"
    save_file(
        {
            "transformer.blocks.9.attn2.to_k.lora_A.weight": a,
            "transformer.blocks.9.attn2.to_k.lora_B.weight": b,
        },
        str(bad),
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"base: {release / 'base'}\ngenerator: {release / 'gen.pt'}\n")
    result, lat = cli_generate(release, tmp_path, str(spec), "--lora", str(bad))
    assert result.exit_code == EXIT_MODEL, result.output
    assert (
        "transformer.blocks.9.attn2.to_k.lora_A.weight" in result.stderr and "Traceback" not in result.output
    )
    assert not lat.exists()
    result, _ = cli_generate(release, tmp_path, str(spec), "--lora", str(tmp_path / "missing.safetensors"))
    assert result.exit_code == EXIT_MODEL and "missing.safetensors" in result.stderr
    result, _ = cli_generate(release, tmp_path, str(spec), "--lora", "x.safetensors:inf")
    assert result.exit_code == EXIT_BAD_INPUT and "finite" in result.stderr


def test_download_fetches_the_loras_of_a_spec_and_of_lora_options(release, tmp_path):
    style = write_diffusers(tmp_path / "style.safetensors", lora_weights(SOME))
    populate_hub_cache(
        "test-org/wan-styles", {"loras/style.safetensors": style, "loras/other.safetensors": style}
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"base: {release / 'base'}\nloras: ['test-org/wan-styles:loras/style.safetensors:0.8']\n")
    result = CliRunner().invoke(
        app, ["download", str(spec), "--lora", "test-org/wan-styles:loras/other.safetensors"]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(x.startswith("user_lora.1") and "loras/style.safetensors" in x for x in lines), result.stdout
    assert any(x.startswith("user_lora.2") and "loras/other.safetensors" in x for x in lines), result.stdout
    spec.write_text(f"base: {release / 'base'}\nloras: ['test-org/wan-styles:loras/absent.safetensors']\n")
    result = CliRunner().invoke(app, ["download", str(spec)])
    assert result.exit_code == EXIT_MODEL and "absent.safetensors" in result.stderr


def test_base_transformer_without_generator_gets_the_lora(release, tmp_path):
    base = tmp_path / "base"
    import shutil

    shutil.copytree(release / "base", base)
    truth = torch.load(release / "truth.pt")
    wan = WanTransformer3DModel(**CFG)
    wan.load_state_dict({LAYOUT[k][1]: v for k, v in truth.items()})
    wan.save_pretrained(base / "transformer")
    lora = lora_weights(SOME)
    path = write_original(tmp_path / "l.safetensors", lora)
    (tmp_path / "s.yaml").write_text(f"base: {base}\n")
    spec = replace(resolve_model(str(tmp_path / "s.yaml")), loras=(LoraSpec(str(path), 0.5),))
    model = load_model(spec, device="cpu", dtype=torch.float32)
    assert_weights(model.transformer.wan, by_hand(truth, (lora, 0.5 * ALPHA / RANK)), changed=SOME)


def test_live_takes_lora_options_and_its_session_reproduces_with_them(tmp_path):
    import os
    import subprocess
    import sys

    path = write_original(tmp_path / "l.safetensors", lora_weights(SOME))
    cmd = [sys.executable, "-c", "from longlive_cli.cli import main; main()"]
    tiny = ["--model", "tiny-random", "--device", "cpu", "--resolution", "64x48", "--seed", "7"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    live = [*cmd, "live", *tiny, "--lora", f"{path}:0.5", "--prompt", "a kite", "--duration", "1.5s"]
    live += ["-o", str(tmp_path / "rec.mp4"), "--save-latents", str(tmp_path / "live.safetensors"), "-q"]
    proc = subprocess.run(live, input=b"", capture_output=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()
    latents = {}
    for name, extra in (("with", ["--lora", f"{path}:0.5"]), ("without", [])):
        out = tmp_path / f"{name}.safetensors"
        gen = [*cmd, "generate", str(tmp_path / "rec.yaml"), "-o", str(tmp_path / f"{name}.mp4"), *tiny[:4]]
        gen += ["--save-latents", str(out), "-q", *extra]
        proc = subprocess.run(gen, capture_output=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr.decode()
        latents[name] = read_latents(out)[0]
    recorded = read_latents(tmp_path / "live.safetensors")[0]
    assert torch.equal(recorded, latents["with"]) and rel_err(recorded, latents["without"]) > 1e-3
