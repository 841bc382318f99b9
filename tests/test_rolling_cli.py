"""Rolling Forcing through the command line: a tiny model in the official checkpoint format, the parity
command of the issue, the plan-time minimum length, prompt switches and streaming equal to one shot."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import WanTransformer3DModel
from helpers import CFG, LAYOUT, random_wan, rel_err, write_tiny_base
from typer.testing import CliRunner

from longlive_cli.cli import app
from longlive_cli.errors import EXIT_BAD_INPUT
from longlive_cli.latents import read_latents
from longlive_cli.models.transformer import CausalWanTransformer
from longlive_cli.models.umt5 import TextEncoder
from longlive_cli.reference import naive_rolling_forcing
from longlive_cli.samplers.rolling_forcing import ROLLING_FORCING, sample_rolling
from longlive_cli.schedule import FixedSchedule
from longlive_cli.storyboard import load_storyboard, make_plan
from longlive_cli.text import encode_prompts

SPEC = """\
base: ../base                    # diffusers layout: tokenizer, text encoder, VAE, transformer config
generator: rolling_forcing_dmd.pt
generator_key: generator_ema
sampler: rolling-forcing
denoising_steps: [1000, 800, 600, 400, 200]
timestep_shift: 5.0
frames_per_block: 3
"""


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rf")
    write_tiny_base(root / "base")
    gen = {k: 0.2 * v for k, v in random_wan(1).items()}
    ema = {k: 0.2 * v for k, v in random_wan(2).items()}
    # The official file: {'generator_ema': ..., 'generator': ...}, keys model.<param>, FSDP wrappers in EMA.
    wrapped = {f"model._fsdp_wrapped_module.{k}": v for k, v in ema.items()}
    torch.save(
        {"generator_ema": wrapped, "generator": {f"model.{k}": v for k, v in gen.items()}}, root / "ckpt"
    )
    spec_dir = root / "spec"
    spec_dir.mkdir()
    (spec_dir / "rolling_forcing_dmd.pt").write_bytes((root / "ckpt").read_bytes())
    (spec_dir / "spec.yaml").write_text(SPEC)
    torch.save(ema, root / "truth.pt")
    return root


def story(tmp_path: Path, duration: str, *prompts: tuple[str, str]) -> Path:
    path = tmp_path / "story.yaml"
    lines = [f"duration: {duration}", "resolution: 64x48", "prompts:"]
    lines += [f"  - {{at: {at}, text: {text}}}" for at, text in prompts]
    path.write_text("\n".join(lines) + "\n")
    return path


def cli(release: Path, board: Path, tmp_path: Path, seed: str = "5"):
    lat = tmp_path / "out.safetensors"
    args = [
        "generate",
        str(board),
        "-o",
        str(tmp_path / "out.mp4"),
        "--model",
        str(release / "spec" / "spec.yaml"),
    ]
    args += ["--device", "cpu", "--dtype", "float32", "--seed", seed, "--save-latents", str(lat), "-q"]
    return CliRunner().invoke(app, args), lat


def by_hand(release: Path, board: Path):
    """The EMA weights renamed by hand, the prompts encoded, the plan's segments."""
    wan = WanTransformer3DModel(**CFG)
    wan.load_state_dict({LAYOUT[k][1]: v for k, v in torch.load(release / "truth.pt").items()}, strict=True)
    plan = make_plan(load_storyboard(board))
    embeds = encode_prompts(TextEncoder.from_pretrained(release / "base"), [s.text for s in plan.segments])
    return CausalWanTransformer(wan.eval()), plan, embeds


def test_the_parity_command_reproduces_rolling_forcing(release, tmp_path):
    board = story(tmp_path, "6s", ("0s", "a lighthouse at dusk"))
    result, lat = cli(release, board, tmp_path)
    assert result.exit_code == 0, result.output
    model, plan, embeds = by_hand(release, board)
    reference = naive_rolling_forcing(
        model,
        embeds[0],
        plan.num_blocks,
        latent_height=6,
        latent_width=8,
        seed=5,
        sampler_config=ROLLING_FORCING,
    )
    expected = torch.cat(list(reference), dim=1)
    got = read_latents(lat)[0]
    assert got.shape == expected.shape == (1, 24, 16, 6, 8)
    assert rel_err(got, expected) < 1e-4


def test_a_switch_under_rolling_forcing_through_the_cli(release, tmp_path):
    board = story(tmp_path, "9s", ("0s", "a lighthouse at dusk"), ("6s", "a lighthouse in a storm"))
    result, lat = cli(release, board, tmp_path)
    assert result.exit_code == 0, result.output
    model, plan, embeds = by_hand(release, board)
    segments = [plan.segment_for_block(b) for b in range(plan.num_blocks)]
    schedule = FixedSchedule(embeds, segments)
    blocks = list(
        sample_rolling(
            model, schedule, latent_height=6, latent_width=8, seed=5, sampler_config=ROLLING_FORCING
        )
    )
    assert rel_err(read_latents(lat)[0], torch.cat([b.latents for b in blocks], dim=1)) < 1e-5
    single = FixedSchedule(embeds[:1], [0] * plan.num_blocks)
    alone = list(
        sample_rolling(model, single, latent_height=6, latent_width=8, seed=5, sampler_config=ROLLING_FORCING)
    )
    switch = plan.segments[1].start_block
    for b, (x, y) in enumerate(zip(blocks, alone, strict=True)):  # the new prompt reaches S-1 blocks back
        assert torch.equal(x.latents, y.latents) == (b <= switch - 5), b


def test_a_storyboard_shorter_than_the_window_is_refused_before_loading(release, tmp_path):
    board = story(tmp_path, "3s", ("0s", "a lighthouse"))
    result, lat = cli(release, board, tmp_path)
    assert result.exit_code == EXIT_BAD_INPUT
    assert "needs at least 5 blocks" in result.stderr and "at least 3.375 s" in result.stderr
    assert not lat.exists() and not (tmp_path / "out.mp4").exists()
