"""The front door (LongLive, generate), the error family, the layers, the interfaces the stages plug into."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import LIGHTHOUSE_STORY
from typer.testing import CliRunner

import longlive_cli
from longlive_cli import LongLive, pipeline
from longlive_cli.cli import app
from longlive_cli.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    EXIT_MODEL,
    EXIT_OUTPUT,
    GenerationError,
    InputError,
    LongLiveError,
    ModelError,
    OutputError,
    exit_code_for,
)
from longlive_cli.events import BlockDone, Finished
from longlive_cli.fileio import atomic_output
from longlive_cli.geometry import WAN21
from longlive_cli.schedule import FixedSchedule

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "longlive_cli"
runner = CliRunner()


@pytest.fixture(scope="module")
def tiny():
    return LongLive.from_pretrained("tiny-random", device="cpu")


def test_one_call_generate_writes_the_same_video_as_the_cli(tmp_path):
    story = ROOT / "examples" / "panda_short.yaml"
    result = longlive_cli.generate(
        story, tmp_path / "api.mp4", model="tiny-random", device="cpu", seed=5, resolution="64x48"
    )
    assert isinstance(result, Finished) and result.path == (tmp_path / "api.mp4").absolute()
    args = ["generate", str(story), "-o", str(tmp_path / "cli.mp4"), "-m", "tiny-random", "--seed", "5"]
    cli = runner.invoke(app, [*args, "-q", "--resolution", "64x48"])
    assert cli.exit_code == 0, cli.output
    assert (tmp_path / "api.mp4").read_bytes() == (tmp_path / "cli.mp4").read_bytes()


def test_plan_takes_a_path_yaml_text_or_a_mapping(tiny, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(LIGHTHOUSE_STORY)
    mapping = {
        "duration": "2s",
        "resolution": "64x48",
        "prompts": [
            {"at": "0s", "text": "a lighthouse at dusk"},
            {"at": "1s", "text": "a lighthouse in a storm"},
        ],
    }
    plans = [tiny.plan(path), tiny.plan(str(path)), tiny.plan(LIGHTHOUSE_STORY), tiny.plan(mapping)]
    assert all(p == plans[0] for p in plans)
    assert plans[0].num_blocks == 3 and plans[0].width == 64
    over = tiny.plan(path, seed=4, resolution="32x32", duration="3s")
    assert (over.seed, over.width, over.height, over.num_blocks) == (4, 32, 32, 4)


def test_stream_yields_events_and_generate_returns_the_last(tiny, tmp_path):
    plan = tiny.plan(LIGHTHOUSE_STORY)
    events = list(tiny.stream(plan, tmp_path / "a.mp4", seed=2))
    assert [e.block for e in events if isinstance(e, BlockDone)] == [0, 1, 2]
    again = tiny.generate(plan, tmp_path / "b.mp4", seed=2)
    assert isinstance(again, Finished) and again.num_video_frames == plan.num_video_frames
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def test_the_error_family_and_its_exit_codes(tmp_path):
    from longlive_cli.hub import WeightsUnavailableError
    from longlive_cli.models.checkpoints import CheckpointError
    from longlive_cli.models.spec import ModelUnavailableError
    from longlive_cli.storyboard import StoryboardError
    from longlive_cli.video import OutputExistsError

    table = {InputError: EXIT_BAD_INPUT, ModelError: EXIT_MODEL, OutputError: EXIT_OUTPUT, GenerationError: 1}
    for cls, code in table.items():
        assert issubclass(cls, LongLiveError) and exit_code_for(cls("x")) == code
    assert exit_code_for(RuntimeError("x")) == EXIT_FAILURE
    for cls, base in [
        (StoryboardError, InputError),
        (ModelUnavailableError, ModelError),
        (WeightsUnavailableError, ModelError),
        (CheckpointError, ModelError),
        (OutputExistsError, OutputError),
    ]:
        assert issubclass(cls, base), cls
    # One table for every command: an unknown model is exit 3 in validate as in generate.
    story = tmp_path / "s.yaml"
    story.write_text(LIGHTHOUSE_STORY)
    for args in (["validate", str(story)], ["generate", str(story)], ["decode", str(story), "-o", "x.mp4"]):
        result = runner.invoke(app, [*args, "--model", "no-such-model"])
        assert result.exit_code == EXIT_MODEL, (args, result.output)
        assert "unknown model 'no-such-model'" in result.stderr and "Traceback" not in result.output


def test_debug_prints_the_traceback_in_every_command(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"no")
    for args in (
        ["validate", "x.yaml", "--model", "nope"],
        ["decode", str(junk), "-o", str(tmp_path / "o.mp4"), "--model", "tiny-random"],
        ["quantize", "-o", str(tmp_path / "q"), "--model", "nope"],
        ["download", "nope"],
    ):
        plain = runner.invoke(app, args)
        debug = runner.invoke(app, [*args, "--debug"])
        assert plain.exit_code == debug.exit_code != 0, (args, plain.output)
        assert "Traceback" not in plain.output and "Traceback" in debug.stderr, args


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "examples/boy_on_lawn.yaml"],
        ["info"],
        ["--help"],
        ["generate", "examples/boy_on_lawn.yaml", "--dry-run"],
        ["cache"],
    ],
    ids=["validate", "info", "help", "dry-run", "cache"],
)
def test_light_commands_do_not_import_torch(args):
    code = (
        "import sys\nfrom longlive_cli.cli import app\n"
        "try:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_sampler_asks_the_schedule_one_block_at_a_time(tiny, tmp_path):
    # A live prompt source must learn block b's prompt only after block b - 1 is out.
    plan = tiny.plan(LIGHTHOUSE_STORY)
    tiny.encode_prompts([plan])
    fixed = FixedSchedule.for_plan(plan, tiny.prompts.segment_embeddings(plan))
    log = []

    class Recording:
        num_blocks = plan.num_blocks

        def segment_for_block(self, block):
            log.append(("asked", block))
            return fixed.segment_for_block(block)

        def embedding(self, segment):
            return fixed.embedding(segment)

        def text(self, segment):
            return fixed.text(segment)

    model = tiny.load()
    events = pipeline.generate_video(
        pipeline.VideoRequest(plan, model, Recording(), tmp_path / "r.mp4", seed=1)
    )
    for event in events:
        if isinstance(event, BlockDone):
            log.append(("done", event.block))
    assert log == [("asked", 0), ("done", 0), ("asked", 1), ("done", 1), ("asked", 2), ("done", 2)]


def test_the_pipeline_takes_any_decoder(tiny, tmp_path):
    from longlive_cli.decoders.wan import StreamingDecoder

    plan = tiny.plan(LIGHTHOUSE_STORY)
    model = tiny.load()
    calls = []

    class Counting:
        def __init__(self):
            self.inner = StreamingDecoder(model.vae)
            self.device = self.inner.device

        def decode(self, latents):
            calls.append(latents.shape[1])
            return self.inner.decode(latents)

        def reset(self):
            self.inner.reset()

    tiny.encode_prompts([plan])
    embeds = tiny.prompts.segment_embeddings(plan)
    list(
        pipeline.generate_video(
            pipeline.VideoRequest(plan, model, embeds, tmp_path / "a.mp4", 3, decoder=Counting())
        )
    )
    list(pipeline.generate_video(pipeline.VideoRequest(plan, model, embeds, tmp_path / "b.mp4", seed=3)))
    assert calls == [3, 3, 3]
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def test_geometry_arithmetic():
    g = WAN21
    assert (g.latent_frames(60), g.video_frames(240)) == (240, 957)
    assert (g.latent_frames(5), g.video_frames(21)) == (21, 81)
    assert g.latent_index(10) == 40 and g.first_video_frame(42) == 165
    assert g.max_duration_s == 240 and g.tokens_per_frame(832, 480) == 1560 and g.block_s == 0.75
    with pytest.raises(ValueError, match="frames_per_block"):
        type(g)(frames_per_block=0)


def test_atomic_output_is_whole_or_absent_with_the_users_permissions(tmp_path):
    dest = tmp_path / "x.bin"
    with pytest.raises(RuntimeError, match="boom"), atomic_output(dest) as tmp:  # noqa: PT012
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    old = os.umask(0o022)
    try:
        with atomic_output(dest) as tmp:
            tmp.write_bytes(b"whole")
        with atomic_output(tmp_path / "dir", folder=True) as tmp:
            (tmp / "f").write_text("1")
    finally:
        os.umask(old)
    assert dest.read_bytes() == b"whole" and stat.S_IMODE(dest.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "dir").stat().st_mode) == 0o755
    with atomic_output(tmp_path / "dir", folder=True) as tmp:  # replaces a folder
        (tmp / "g").write_text("2")
    assert [p.name for p in (tmp_path / "dir").iterdir()] == ["g"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "x.bin"]


def test_public_names_are_listed_and_resolve():
    for name in longlive_cli.__all__:
        assert getattr(longlive_cli, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = longlive_cli.nope
