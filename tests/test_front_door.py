"""The front door keeps its order (arguments, storyboard, outputs, memory, then fetch / encode / load), takes
every option in one call, checks the API's arguments at the door, and names the cache folder by platform."""

from __future__ import annotations

import inspect
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import LIGHTHOUSE_STORY, mp4_frames
from safetensors.torch import save_file
from typer.testing import CliRunner

import longlive_cli
from longlive_cli import LongLive, api
from longlive_cli.cli import app
from longlive_cli.errors import EXIT_BAD_INPUT, EXIT_MODEL, InputError, ModelError, OutputError

runner = CliRunner()
HEAVY = ("loaded the text encoder", "encoded", "loaded the video model")


@pytest.fixture
def tiny() -> LongLive:
    return LongLive.from_pretrained("tiny-random", device="cpu")


@pytest.fixture
def story(tmp_path: Path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(LIGHTHOUSE_STORY)
    return path


# ---------------------------------------------------------------------- 1. the order of checks
@pytest.mark.parametrize("which", ["output", "save_latents"])
def test_stream_refuses_an_existing_output_before_encoding_or_loading(tiny, tmp_path, caplog, which):
    existing = tmp_path / ("old.mp4" if which == "output" else "old.safetensors")
    existing.write_bytes(b"keep me")
    kwargs = {"save_latents": existing} if which == "save_latents" else {}
    output = existing if which == "output" else tmp_path / "new.mp4"
    with caplog.at_level(logging.DEBUG, logger="longlive_cli"), pytest.raises(OutputError) as err:
        next(tiny.stream(tiny.plan(LIGHTHOUSE_STORY), output, **kwargs))
    assert str(existing) in str(err.value) and "overwrite=True" in str(err.value)
    assert "--force" not in str(err.value)  # the API's argument is overwrite=, not the CLI's flag
    assert not [line for line in HEAVY if line in caplog.text], caplog.text
    assert "memory estimate" not in caplog.text  # outputs are checked before the memory
    assert existing.read_bytes() == b"keep me" and not tiny.loaded


def test_a_run_that_cannot_fit_is_refused_before_any_fetch_with_an_empty_offline_cache(
    story, tmp_path, monkeypatch
):
    fetched = []
    real_fetch = api.fetch_components
    monkeypatch.setattr(api, "fetch_components", lambda *a, **k: fetched.append(a) or real_fetch(*a, **k))
    monkeypatch.setattr(api, "host_available_bytes", lambda: 1_000_000)  # a 1 MB machine
    out = tmp_path / "o.mp4"
    args = ["generate", str(story), "-o", str(out), "--device", "cpu", "--offline"]  # default model
    result = runner.invoke(app, args)
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "not enough memory for longlive-1.3b" in result.stderr and "1.0 MB is available" in result.stderr
    assert "Hugging Face cache" not in result.stderr and fetched == [] and not out.exists()
    with pytest.raises(InputError, match="not enough memory"):  # the API, in one call, alike
        longlive_cli.generate(story, out, device="cpu", offline=True)
    assert fetched == []
    # With the memory there, the same run gets as far as the empty cache: exit 3, naming the first file.
    monkeypatch.setattr(api, "host_available_bytes", lambda: 10**15)
    result = runner.invoke(app, args)
    assert result.exit_code == EXIT_MODEL and "not in the local Hugging Face cache" in result.stderr
    assert "Also not in the local cache:" in result.stderr  # every missing file is named, not only the first
    for source in ("longlive_base.pt (about 5.68 GB)", "lora.pt (about 2.80 GB)", "Wan2.1_VAE.pth"):
        assert source in result.stderr, source
    assert fetched  # past the checks, the run went to the cache


def test_a_missing_video_file_is_reported_before_the_text_encoder_loads(tmp_path, caplog):
    from helpers import write_tiny_base

    from longlive_cli.hub import WeightsUnavailableError

    spec = tmp_path / "m.yaml"  # the base here; the generator on the Hub, not in the (empty, offline) cache
    spec.write_text(f"base: {write_tiny_base(tmp_path / 'base')}\ngenerator: someone/model:gen.pt\n")
    ll = LongLive.from_pretrained(str(spec), device="cpu")  # nothing fetched yet: no error
    assert "generator" not in ll.paths and "text_encoder" in ll.paths
    with caplog.at_level(logging.INFO, logger="longlive_cli"), pytest.raises(WeightsUnavailableError) as err:
        next(ll.stream(ll.plan(LIGHTHOUSE_STORY), tmp_path / "o.mp4"))
    assert "someone/model:gen.pt" in str(err.value)
    assert "memory estimate" in caplog.text and not [line for line in HEAVY if line in caplog.text]


def test_a_preset_is_estimated_from_its_known_numbers_without_any_file():
    ll = LongLive.from_pretrained("longlive-1.3b", device="cpu", offline=True)  # nothing local, no error
    assert ll.paths == {}
    plan = ll.plan("{duration: 5s, resolution: 256x160, prompts: [{at: 0s, text: a fox}]}")
    estimate = ll.estimate_memory([plan])
    names = [phase.name for phase in estimate.phases]
    assert names == ["text encoding", "first-run conversion", "generation"]  # nothing cached or converted
    assert 11e9 < estimate.host_peak < 20e9  # the UMT5-XXL in bf16 (11.4 GB) at the peak


def test_a_live_session_checks_its_memory_with_the_kept_encoder_before_loading(monkeypatch):
    ll = LongLive.from_pretrained("longlive-1.3b", device="cpu", offline=True)
    monkeypatch.setattr(api, "host_available_bytes", lambda: 10**15)
    estimate = ll.check_memory(resolution=(256, 160), keep_text_encoder=True)
    assert estimate is not None and [p.name for p in estimate.phases] == [
        "first-run conversion",
        "generation",
    ]
    assert any(what.startswith("text encoder weights") for what, _ in estimate.phases[-1].host)
    monkeypatch.setattr(api, "host_available_bytes", lambda: 1_000_000)
    with pytest.raises(InputError, match=r"not enough memory for longlive-1\.3b at 256x160"):
        ll.check_memory(resolution=(256, 160), keep_text_encoder=True)
    assert ll.paths == {} and not ll.loaded


def test_stream_checks_its_arguments_before_anything_heavy(tiny, tmp_path, caplog):
    plan = tiny.plan(LIGHTHOUSE_STORY)
    cases = [
        ({"seed": "abc"}, "seed=str 'abc' is not a seed"),
        ({"seed": -5}, "seed=-5 is out of range"),
        ({"seed": 2.5}, "seed=float"),
        ({"overwrite": "yes"}, "overwrite=str"),
        ({"save_latents": 3}, "save_latents=int"),
    ]
    with caplog.at_level(logging.DEBUG, logger="longlive_cli"):
        for kwargs, message in cases:
            with pytest.raises(InputError) as err:
                next(tiny.stream(plan, tmp_path / "o.mp4", **kwargs))
            assert message in str(err.value), (kwargs, str(err.value))
        with pytest.raises(InputError, match="pass a Plan"):
            next(tiny.stream(LIGHTHOUSE_STORY, tmp_path / "o.mp4"))  # type: ignore[arg-type]
    assert not [line for line in HEAVY if line in caplog.text] and not tiny.loaded


# ---------------------------------------------------------------------- 2. one call takes every option
def test_one_call_takes_every_option_of_from_pretrained_and_stream_by_keyword():
    one = inspect.signature(longlive_cli.generate).parameters
    for method, skip in (
        (LongLive.from_pretrained, set()),
        (LongLive.stream, {"self", "plan", "output", "prompt_embeds", "schedule", "sinks"}),
        (LongLive.plan, {"self", "storyboard"}),
    ):
        for name, param in inspect.signature(method).parameters.items():
            if name in skip or (name == "model" and method is not LongLive.from_pretrained):
                continue
            assert name in one, f"generate() lacks {method.__name__}'s {name}"
            assert one[name].kind is inspect.Parameter.KEYWORD_ONLY or name == "model"
            assert one[name].annotation == param.annotation, name
            assert one[name].default == param.default, name


def test_one_call_with_a_fast_decoder(story, tmp_path):
    out = tmp_path / "taehv.mp4"
    last = longlive_cli.generate(story, out, model="tiny-random", device="cpu", decoder="taehv", seed=2)
    assert type(last).__name__ == "Finished" and last.path == out and out.stat().st_size > 0


# ---------------------------------------------------------------------- issue 20 item 14: API inputs
def test_loras_as_one_string_is_one_lora(tmp_path):
    lora = tmp_path / "x.safetensors"
    save_file(
        {"unused": torch.zeros(1)}, str(lora)
    )  # a whole safetensors file; its keys matter only when merged
    ll = LongLive.from_pretrained("tiny-random", device="cpu", loras=str(lora))
    assert [(x.source, x.scale) for x in ll.spec.loras] == [(str(lora), 1.0)]
    with pytest.raises(ModelError, match=r"missing\.safetensors"):
        LongLive.from_pretrained("tiny-random", device="cpu", loras=str(tmp_path / "missing.safetensors"))
    with pytest.raises(InputError, match="loras=int"):
        LongLive.from_pretrained("tiny-random", device="cpu", loras=3)  # type: ignore[arg-type]


def test_plan_reads_one_line_yaml_as_text_and_refuses_what_is_not_a_storyboard(tiny, tmp_path, monkeypatch):
    plan = tiny.plan("{duration: 2s, resolution: 64x48, prompts: [{at: 0s, text: a fox}]}")
    assert plan.num_blocks == 3 and plan.segments[0].text == "a fox"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "story.yaml").write_text(LIGHTHOUSE_STORY)
    assert tiny.plan("story.yaml").segments[1].text == "a lighthouse in a storm"  # a path stays a path
    opened = []
    monkeypatch.setattr("builtins.open", lambda *a, **k: opened.append(a) or pytest.fail("opened"))
    for bad in (123, None, b"duration: 2s", 2.5):
        with pytest.raises(InputError, match="pass a file path, YAML text, a mapping or a Storyboard"):
            tiny.plan(bad)  # type: ignore[arg-type]
    assert opened == []  # plan(123) no longer opens file descriptor 123


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"resolution": 6448}, "resolution=int 6448: pass 'WIDTHxHEIGHT'"),
        ({"resolution": (64,)}, "resolution=tuple"),
        ({"resolution": (64.0, 48)}, "resolution=tuple"),
        ({"duration": True}, "duration=bool"),
        ({"seed": "abc"}, "seed=str 'abc' is not a seed"),
        ({"seed": -5}, "seed=-5 is out of range"),
    ],
)
def test_plan_overrides_of_the_wrong_type_are_input_errors(tiny, kwargs, message):
    with pytest.raises(InputError) as err:
        tiny.plan(LIGHTHOUSE_STORY, **kwargs)
    assert message in str(err.value)


def test_from_pretrained_checks_the_types_of_its_arguments():
    for kwargs, message in (
        ({"model": 3}, "model=int"),
        ({"offline": "no"}, "offline=str"),
        ({"decoder": 1}, "decoder=int"),
        ({"options": [1]}, "options=list"),
    ):
        with pytest.raises(InputError, match=message):
            LongLive.from_pretrained(**{"device": "cpu", "model": "tiny-random", **kwargs})


# ---------------------------------------------------------------------- renames
def test_old_names_of_the_outputs_warn(tiny, tmp_path):
    from longlive_cli import pipeline

    with pytest.warns(DeprecationWarning, match="VideoOutput"):
        assert pipeline.FrameSink is pipeline.VideoOutput
    frames = []

    class Collect:
        def write(self, block):
            frames.append(block.shape[0])

    plan = tiny.plan(LIGHTHOUSE_STORY)
    with pytest.warns(DeprecationWarning, match="outputs="):
        events = list(tiny.stream(plan, None, sinks=[Collect()]))
    assert sum(frames) == events[-1].num_video_frames > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(tiny.stream(plan, None, outputs=[Collect()]))


# ---------------------------------------------------------------------- 8. the cache folder
def test_cache_folder_follows_longlive_cache_then_xdg_cache_home(tmp_path, monkeypatch):
    from longlive_cli.models.spec import cache_root, embeddings_cache_dir

    monkeypatch.setenv("LONGLIVE_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "mine" and embeddings_cache_dir() == tmp_path / "mine" / "embeddings"
    monkeypatch.delenv("LONGLIVE_CACHE")
    if not sys.platform.startswith("linux"):
        pytest.skip("XDG_CACHE_HOME is the Linux convention")
    assert cache_root() == tmp_path / "xdg" / "longlive"
    result = runner.invoke(app, ["info"])
    assert f"caches: {tmp_path / 'xdg' / 'longlive'}" in result.output


# ---------------------------------------------------------------------- download and decode, as functions
def test_download_and_decode_are_library_functions(story, tmp_path):
    assert api.download("tiny-random") == []  # built in-process: nothing to fetch
    missing = api.download("longlive-1.3b", check_only=True)
    assert missing and all(p.path is None and p.size == 0 for p in missing)
    assert {p.role for p in missing} >= {"text_encoder", "generator", "vae"}
    latents, out = tmp_path / "l.safetensors", tmp_path / "o.mp4"
    longlive_cli.generate(story, out, model="tiny-random", device="cpu", seed=1, save_latents=latents)
    again = api.decode(latents, tmp_path / "again.mp4", device="cpu")  # the model the file names
    assert np.array_equal(mp4_frames(again), mp4_frames(out))
    with pytest.raises(OutputError, match="overwrite=True"):
        api.decode(latents, out, device="cpu")
