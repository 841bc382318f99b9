"""`longlive bench`: the report a user gets before downloading anything."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from longlive_cli.cli import app


def test_bench_prints_one_json_object_with_every_measure():
    result = CliRunner().invoke(
        app,
        ["bench", "--model", "tiny-random", "--device", "cpu", "--blocks", "8", "--compare-plain", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (
        report["weights"].startswith("random") and report["blocks"] == 8 and report["resolution"] == "128x80"
    )
    assert report["options"] == "plain" and report["fell_back"] == []
    assert report["time_to_first_frame_s"] > 0 and report["cold_start_s"] > 0
    assert (
        report["fps_steady"] > 0
        and 0 < report["block_latency_s"]["median"] <= report["block_latency_s"]["p90"]
    )
    # The denoise loop alone is faster than the whole pipeline, which is faster than text to closed MP4.
    assert report["fps_denoise"] > report["fps_end_to_end"] > 0 and report["text_encode_s"] > 0
    assert report["video_frames"] / report["fps_end_to_end"] > report["text_encode_s"]
    assert set(report["hardware"]) == {"cpu", "gpu", "driver", "torch", "cuda"}
    assert report["hardware"]["gpu"] is None and report["hardware"]["torch"]  # a CPU run
    assert any("warm-up" in item for item in report["excluded"])
    assert not any("text encoding" in item for item in report["excluded"])  # tiny-random has its encoder
    assert {"denoise", "clean", "recache", "decode", "encode", "prompt"} <= set(report["stages_s"])
    assert report["peak_memory_mib"] > 0
    # On the CPU the defaults are the plain path: the same latents, bit for bit.
    assert report["compare_plain"]["max_rel_latent_diff"] == 0 and report["compare_plain"]["speed_ratio"] > 0


def test_bench_reports_a_speed_option_that_fell_back(monkeypatch):
    from longlive_cli.models import transformer

    original = transformer.dispatch_attention_fn

    def no_cudnn(q, k, v, attn_mask=None, backend=None):
        if backend == "_native_cudnn":
            raise RuntimeError("no cuDNN attention (simulated)")
        return original(q, k, v, attn_mask=attn_mask, backend=backend)

    monkeypatch.setattr(transformer, "dispatch_attention_fn", no_cudnn)
    args = [
        "bench",
        "-m",
        "tiny-random",
        "--device",
        "cpu",
        "--blocks",
        "2",
        "--resolution",
        "32x32",
        "--json",
    ]
    result = CliRunner().invoke(app, [*args, "--attention", "sdpa-cudnn"])
    assert result.exit_code == 0, result.output
    assert (
        "attention sdpa-cudnn: RuntimeError: no cuDNN attention (simulated)"
        in json.loads(result.stdout)["fell_back"]
    )
    strict = CliRunner().invoke(app, [*args, "--attention", "sdpa-cudnn", "--strict-speed"])
    assert strict.exit_code == 1 and "--strict-speed" in strict.stderr


def test_bench_reports_a_decoder_compile_that_fell_back(monkeypatch):
    import torch

    def broken_compile(fn, **kwargs):
        def run(*args, **kw):
            raise RuntimeError("no C compiler (simulated)")

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    args = ["bench", "-m", "tiny-random", "--device", "cpu", "--blocks", "2", "--resolution", "32x32"]
    result = CliRunner().invoke(app, [*args, "--json", "--compile-decoder"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["options"] == "compile-decoder"
    assert report["fell_back"] == ["compile-decoder: RuntimeError: no C compiler (simulated)"]


def test_gpu_check_bench_step_prints_its_summary_line_last():
    """The prepared GPU check's table shows each bench step's last line: it must be the summary, and a failing
    bench must fail the step (the GPU run is too scarce to learn this there)."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    script = root / "benchmarks" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    env = {**os.environ, "BENCH_MODEL": "tiny-random", "BENCH_DEVICE": "cpu", "BENCH_RESOLUTION": "32x32"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # python3 is this interpreter
    run = subprocess.run(
        ["bash", str(script), "bench", "--blocks", "2", "--compare-plain"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    last = run.stdout.strip().splitlines()[-1]
    assert re.fullmatch(
        r"[\d.]+ FPS \(denoise [\d.]+, end to end [\d.]+\), block \d+/\d+ ms, first frame [\d.]+/[\d.]+ s, "
        r"peak [\d.]+ GiB, "
        r"[\d.]+x plain, diff \S+",
        last,
    ), last
    json.loads(run.stdout.strip().splitlines()[-2])  # the report itself is in the log too
    bad = subprocess.run(
        ["bash", str(script), "bench", "--blocks", "1"], cwd=root, env=env, capture_output=True, text=True
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stdout + bad.stderr  # bench's message stays last
    assert "--blocks" in bad.stderr


def test_gpu_check_has_an_optional_5b_step_after_the_required_ones():
    """The 5B (LongLive 2.0) bench step comes after every required step, is optional (skipped when the
    deadline is near) and runs the 5B at its native size."""
    import shlex
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.sh"
    text = script.read_text().replace("\\\n", " ")
    steps = [shlex.split(line) for line in text.splitlines() if line.startswith("step ")]
    names = [s[1] for s in steps]
    five = next(i for i, s in enumerate(steps) if "BENCH_MODEL=longlive-2.0-5b" in s)
    assert steps[five][3] == "no" and "BENCH_RESOLUTION=1280x704" in steps[five]
    assert all(s[3] == "no" for s in steps[five:]) and names.index("bench_13b_bf16_fast") < five


def test_random_weights_follow_the_architecture_record_and_the_run_dtype(monkeypatch):
    """``bench`` of a real 2.0 preset builds the architecture's declared transformer and VAE (Wan2.2's: 48
    channels) directly in the run's dtype (the 5B in float32 first would be 20 GB). Here the record's configs
    are swapped for the tiny ones; the real ones are checked to be the 5B's and the 1.3B's."""
    import torch

    from longlive_cli import bench
    from longlive_cli.architectures import LONGLIVE_1, LONGLIVE_2, Architecture
    from longlive_cli.models.spec import resolve_model
    from longlive_cli.models.wan22 import tiny_transformer_config_2, tiny_vae_config_2

    five, one = LONGLIVE_2.known_transformer_config(), LONGLIVE_1.known_transformer_config()
    assert (five["num_layers"], five["in_channels"], five["ffn_dim"]) == (30, 48, 14336)
    assert (one["num_layers"], one["in_channels"], one["ffn_dim"]) == (30, 16, 8960)
    assert LONGLIVE_2.known_vae_config()["z_dim"] == 48 and LONGLIVE_1.known_vae_config() == {}

    def not_cached(*args, **kwargs):
        raise FileNotFoundError("not cached")

    monkeypatch.setattr(bench, "fetch_components", not_cached)
    monkeypatch.setattr(
        Architecture, "known_transformer_config", lambda self, tiny=False: tiny_transformer_config_2()
    )
    monkeypatch.setattr(Architecture, "known_vae_config", lambda self: tiny_vae_config_2())
    model = bench._random_model(resolve_model("longlive-2.0-5b"), "cpu", torch.bfloat16, seed=0)
    wan = model.transformer.wan
    assert wan.config.in_channels == 48 and {p.dtype for p in wan.parameters()} == {torch.bfloat16}
    assert model.vae.config.z_dim == 48
    assert torch.get_default_dtype() == torch.float32  # restored


def test_bench_table_shows_every_figure_and_what_is_excluded():
    from longlive_cli.bench import format_report

    report = {
        "model": "longlive-1.3b",
        "weights": "random (the architecture only; nothing downloaded)",
        "device": "cuda",
        "dtype": "bfloat16",
        "resolution": "832x480",
        "blocks": 8,
        "options": "compile",
        "fell_back": [],
        "fps_denoise": 20.5,
        "fps_steady": 16.25,
        "fps_end_to_end": 9.75,
        "time_to_first_frame_s": 0.8,
        "cold_start_s": 41.0,
        "text_encode_s": None,
        "block_latency_s": {"median": 0.5, "p90": 0.6},
        "stages_s": {"denoise": 1.0},
        "peak_memory_mib": 100,
        "excluded": ["the warm-up run", "text encoding (random weights)"],
        "hardware": {"cpu": "x (2 logical cores)", "gpu": "H100, 80 GB", "driver": "580.1", "torch": "2.13.0",
                     "cuda": "13.0"},
    }  # fmt: skip
    table = format_report(report)
    for text in (
        "20.50 video frames / s",
        "16.25",
        "9.75",
        "0.800 s warm, 41.000 s cold",
        "H100, 80 GB",
        "CUDA 13.0",
        "excluded",
        "the warm-up run; text encoding (random weights)",
        "not measured",
    ):
        assert text in table, text  # fmt: skip
