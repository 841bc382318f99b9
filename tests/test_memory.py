"""The memory check (sizes from the architecture, phases, refusal with the ways out) and the precision of
each part (the rule, the loaded dtypes, no diffusers warnings, stored-dtype detection)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from diffusers import WanTransformer3DModel
from helpers import LIGHTHOUSE_STORY
from safetensors.torch import save_file
from typer.testing import CliRunner

from longlive_cli import LongLive, memory
from longlive_cli.cli import EXIT_BAD_INPUT, app
from longlive_cli.errors import InputError
from longlive_cli.memory import (
    KEEP_IN_FP32,
    MemoryInputs,
    TextEncoderArch,
    TransformerArch,
    check_fits,
    estimate_memory,
)
from longlive_cli.models import loaders
from longlive_cli.models.spec import tiny_transformer_config, wan_1_3b_transformer_config
from longlive_cli.precision import PartDtypes, choose_dtypes, stored_dtype

ROOT = Path(__file__).resolve().parents[1]
GB = 1e9
runner = CliRunner()


def meta_model(config: dict) -> WanTransformer3DModel:
    with torch.device("meta"):
        return WanTransformer3DModel(**config)


@pytest.mark.parametrize(
    "config", [tiny_transformer_config(), wan_1_3b_transformer_config()], ids=["tiny", "1.3b"]
)
def test_parameter_counts_match_the_diffusers_model(config):
    model, arch = meta_model(config), TransformerArch.from_config(config)
    params = dict(model.named_parameters())
    assert arch.params == sum(p.numel() for p in params.values())
    kept = {n for n in params if set(KEEP_IN_FP32) & set(n.split("."))}
    assert arch.float32_params == sum(params[n].numel() for n in kept)
    targets = [n for n in params if ".attn" in n and ".to_" in n and n.endswith("weight")]
    targets += [n for n in params if ".ffn." in n and n.endswith("weight")]
    assert arch.block_linear_params == sum(params[n].numel() for n in targets)
    assert tuple(WanTransformer3DModel._keep_in_fp32_modules) == KEEP_IN_FP32


def default_inputs(**changes) -> MemoryInputs:
    """longlive-1.3b on a CPU with the default options at 832x480, first run, prompts to encode."""
    arch = TransformerArch.from_config(wan_1_3b_transformer_config())
    base = MemoryInputs(
        model="longlive-1.3b",
        device="cpu",
        dtypes=choose_dtypes("cpu", text_stored="bf16"),
        transformer=arch,
        width=832,
        height=480,
        text_encoder=TextEncoderArch(params=11_361_000_000 // 2),
        vae_params=126_892_531,
        convert_lora=True,
    )
    return replace(base, **changes)


def items(phase) -> dict[str, int]:
    return {what.split(" (")[0]: b for what, b in (*phase.host, *phase.gpu)}


def test_the_readme_table_for_bf16_at_832x480():
    cuda = choose_dtypes("cuda", text_stored="bf16")
    est = estimate_memory(default_inputs(device="cuda", dtypes=cuda, text_device="cuda"))
    gen = items(est.phases[-1])
    assert est.phases[-1].name == "generation" and not est.phases[-1].host
    assert gen["transformer weights"] == (1_418_996_800 - 3_127_296) * 2 + 3_127_296 * 4  # 2.84 GB
    assert gen["KV cache"] == 30 * 2 * 12 * 1560 * 1536 * 2  # 3.45 GB
    assert gen["VAE weights"] == 126_892_531 * 2
    assert gen["transformer pass"] > 12 * 1560 * 8960 * 2  # a re-cache pass covers 12 latent frames
    assert est.phases[0].name == "text encoding" and round(est.phases[0].total("gpu") / GB, 1) == 11.7
    assert (
        est.phases[1].name == "first-run conversion" and est.host_peak < 9 * GB
    )  # float32 merge + bf16 copy


def test_default_model_on_a_24_gib_cpu_fits_with_the_defaults_and_not_with_a_float32_encoder():
    available = 22 * 2**30
    est = estimate_memory(default_inputs(width=256, height=160))
    assert 11 * GB < est.host_peak < 20 * GB
    check_fits(est, host_available=available)  # the defaults fit
    old = estimate_memory(
        default_inputs(width=256, height=160, dtypes=choose_dtypes("cpu", text_dtype="float32"))
    )
    with pytest.raises(InputError) as err:
        check_fits(old, host_available=available)
    message = str(err.value)
    assert "text encoding" in message and "text encoder weights (float32) 22.7 GB" in message
    assert "23.6 GB" in message  # what is available, as it was measured
    assert "--text-dtype bf16 (RAM 11.7 GB, fits)" in message and "--no-memory-check" in message
    assert "--resolution" not in message  # 256x160 is already small


def test_cached_prompts_drop_the_text_phase_and_a_cached_conversion_the_merge():
    est = estimate_memory(default_inputs(text_encoder=None, convert_lora=None))
    assert [p.name for p in est.phases] == ["generation"]
    int8 = estimate_memory(default_inputs(text_encoder=None, convert_lora=None, int8=True))
    assert [p.name for p in int8.phases] == ["INT8 quantization", "generation"]
    assert int8.phases[-1].total("host") < est.phases[-1].total("host") - 4 * GB


def test_tiny_random_is_never_refused_and_the_check_can_be_skipped(monkeypatch):
    ll = LongLive.from_pretrained("tiny-random", device="cpu")
    est = ll.check_memory([ll.plan(LIGHTHOUSE_STORY)])
    assert 0 < est.host_peak < 600e6
    monkeypatch.setattr(memory, "host_available_bytes", lambda: 100)  # as the api sees it
    monkeypatch.setattr("longlive_cli.api.host_available_bytes", lambda: 100)
    with pytest.raises(InputError, match="not enough memory for tiny-random"):
        ll.check_memory([ll.plan(LIGHTHOUSE_STORY)])
    LongLive.from_pretrained("tiny-random", device="cpu", memory_check=False).check_memory([])
    monkeypatch.setenv("LONGLIVE_NO_MEMORY_CHECK", "1")
    LongLive.from_pretrained("tiny-random", device="cpu").check_memory([])


def test_cli_refuses_up_front_with_the_ways_out_and_loads_nothing(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model part was loaded")

    monkeypatch.setattr(loaders, "load_model", refuse)
    monkeypatch.setattr(loaders, "load_text_encoder", refuse)
    monkeypatch.setattr("longlive_cli.api.host_available_bytes", lambda: 1_000_000)
    story = tmp_path / "s.yaml"
    story.write_text(LIGHTHOUSE_STORY)
    args = ["generate", str(story), "-o", str(tmp_path / "o.mp4"), "-m", "tiny-random", "--device", "cpu"]
    result = runner.invoke(app, args)
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "not enough memory for tiny-random at 64x48 on the CPU" in result.stderr
    assert "1.0 MB is available" in result.stderr and "Ways out:" in result.stderr
    assert not (tmp_path / "o.mp4").exists()
    monkeypatch.undo()
    monkeypatch.setattr("longlive_cli.api.host_available_bytes", lambda: 1_000_000)
    assert runner.invoke(app, [*args, "--no-memory-check", "-q"]).exit_code == 0


# ---------------------------------------------------------------------- precision per part
def test_the_rule_per_device():
    assert choose_dtypes("cpu", text_stored="bf16") == PartDtypes("bf16", "float32", "float32")
    assert choose_dtypes("cuda", text_stored="bf16") == PartDtypes("bf16", "bf16", "bf16")
    assert choose_dtypes("cpu", dtype="bf16", text_dtype="float32", text_stored="bf16") == PartDtypes(
        "float32", "bf16", "float32"
    )
    assert choose_dtypes("cpu").text_encoder == "float32"  # stored dtype unknown
    with pytest.raises(ValueError, match="unknown dtype"):
        choose_dtypes("cpu", dtype="int4")


def test_per_part_dtypes_on_the_cpu_without_diffusers_warnings(monkeypatch, tmp_path):
    from diffusers.models import modeling_utils

    warnings: list[str] = []
    monkeypatch.setattr(modeling_utils.logger, "warning", lambda msg, *a, **k: warnings.append(str(msg)))
    ll = LongLive.from_pretrained("tiny-random", device="cpu", dtype="bf16")
    assert ll.dtypes == {"text_encoder": torch.float32, "transformer": torch.bfloat16, "vae": torch.float32}
    assert ll.describe_dtypes() == "text encoder float32, transformer bf16, VAE float32"
    model = ll.load()
    wan = model.transformer.wan
    for name, p in wan.named_parameters():
        kept = set(KEEP_IN_FP32) & set(name.split("."))
        assert p.dtype == (torch.float32 if kept else torch.bfloat16), name
    assert wan.rope.freqs_cos.dtype == wan.rope.freqs_sin.dtype == torch.float32  # never cast to bf16
    assert {p.dtype for p in model.vae.parameters()} == {torch.float32}
    assert not [w for w in warnings if "float32" in w], warnings
    result = ll.generate(LIGHTHOUSE_STORY, tmp_path / "bf16.mp4", seed=1)  # the mixed precisions run
    assert result.num_video_frames == 33


def test_text_dtype_option_overrides_the_stored_dtype():
    ll = LongLive.from_pretrained("tiny-random", device="cpu", text_dtype="bf16")
    assert ll.dtypes["text_encoder"] == torch.bfloat16
    encoder = ll.text_encoder(keep=False)
    assert encoder.dtype == torch.bfloat16


def test_stored_dtype_from_headers_only(tmp_path):
    save_file(
        {"a": torch.zeros(10, dtype=torch.bfloat16), "b": torch.zeros(2)}, str(tmp_path / "m.safetensors")
    )
    assert stored_dtype(tmp_path / "m.safetensors") == "bf16"  # the most elements
    assert stored_dtype(tmp_path) == "bf16"  # a folder of safetensors files
    torch.save({"w": torch.zeros(3, dtype=torch.bfloat16)}, tmp_path / "enc-bf16.pth")
    torch.save({"w": torch.zeros(3)}, tmp_path / "fp32.pt")
    torch.save({"w": torch.zeros(3), "h": torch.zeros(3, dtype=torch.float16)}, tmp_path / "mixed.pt")
    assert stored_dtype(tmp_path / "enc-bf16.pth") == "bf16"
    assert stored_dtype(tmp_path / "fp32.pt") == "float32"
    assert stored_dtype(tmp_path / "mixed.pt") is None
    assert zipfile.is_zipfile(tmp_path / "fp32.pt")
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 4)
    assert stored_dtype(tmp_path / "junk.safetensors") is None
    cfg = tmp_path / "folder"
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps({"torch_dtype": "bfloat16"}))
    assert stored_dtype(cfg) == "bf16"
    assert stored_dtype(tmp_path / "missing.pth") is None


def test_dry_run_and_info_show_the_precision_of_each_part_without_torch():
    code = (
        "import sys\nfrom longlive_cli.cli import app\n"
        "try:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    args = ["generate", "examples/boy_on_lawn.yaml", "--dry-run", "--device", "cpu"]
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "precision on the CPU: text encoder bf16, transformer float32, VAE float32" in proc.stdout
    assert "CUDA" not in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-c", code, *args[:3], "--dtype", "bf16"], cwd=ROOT, capture_output=True, text=True
    )
    assert "precision on the CPU: text encoder bf16, transformer bf16, VAE float32" in proc.stdout
    assert "precision on CUDA: text encoder bf16, transformer bf16, VAE bf16" in proc.stdout
    info = runner.invoke(app, ["info"])
    assert "precision per part:" in info.stdout and "float32 on the CPU" in info.stdout


def test_memory_estimate_is_logged_before_loading(tmp_path, caplog):
    ll = LongLive.from_pretrained("tiny-random", device="cpu")
    with caplog.at_level(logging.INFO, logger="longlive_cli"):
        ll.check_memory([ll.plan(LIGHTHOUSE_STORY)])
    assert "memory estimate: peak RAM" in caplog.text and "available" in caplog.text


@pytest.mark.parametrize("name", ["longlive-1.0", "longlive-2.0"])
def test_the_declared_tiny_vae_size_is_the_tiny_vaes(name):
    """The architecture record's ``tiny_vae_size`` (the memory check's tiny-random VAE, written by hand so the
    check stays torch-free) is the parameter count and first-stage width of the VAE the tiny preset builds."""
    from diffusers import AutoencoderKLWan

    from longlive_cli.architectures import ARCHITECTURES
    from longlive_cli.models.vae import tiny_vae_config
    from longlive_cli.models.wan22 import tiny_vae_config_2

    config = {"longlive-1.0": tiny_vae_config, "longlive-2.0": tiny_vae_config_2}[name]()
    params = sum(p.numel() for p in AutoencoderKLWan(**config).parameters())
    assert ARCHITECTURES[name].tiny_vae_size == (params, config["base_dim"])
