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
    assert report["time_to_first_frame_s"]["cold"] > 0 and report["time_to_first_frame_s"]["warm"] > 0
    assert (
        report["fps_steady"] > 0
        and 0 < report["block_latency_s"]["median"] <= report["block_latency_s"]["p90"]
    )
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
