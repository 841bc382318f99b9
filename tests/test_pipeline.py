"""The pipeline: events in order, frames streamed block by block, equal to a one-shot decode."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch
from helpers import LIGHTHOUSE_STORY

from longlive_cli import pipeline
from longlive_cli.decoders.wan import decode_latents
from longlive_cli.events import BlockDone, Finished, GenerationStarted, PromptSwitched
from longlive_cli.geometry import WAN21
from longlive_cli.models.loaders import load_model, load_text_encoder
from longlive_cli.models.spec import resolve_model
from longlive_cli.samplers.longlive import sample_video
from longlive_cli.storyboard import make_plan, parse_storyboard
from longlive_cli.text import encode_prompts


@pytest.fixture(scope="module")
def model():
    return load_model(resolve_model("tiny-random"), device=torch.device("cpu"), dtype=torch.float32)


def test_events_and_streamed_frames_equal_one_shot_decode(model, tmp_path, monkeypatch):
    plan = make_plan(parse_storyboard(LIGHTHOUSE_STORY))
    text = load_text_encoder(resolve_model("tiny-random"), device="cpu")
    embeds = encode_prompts(text, [s.text for s in plan.segments])
    written = []
    original_write = pipeline.VideoWriter.write

    def spy(self, frames):
        written.append(frames.clone())
        return original_write(self, frames)

    monkeypatch.setattr(pipeline.VideoWriter, "write", spy)
    events = []
    for event in pipeline.generate_video(
        pipeline.VideoRequest(plan, model, embeds, tmp_path / "out.mp4", seed=9)
    ):
        events.append(event)
        if isinstance(event, BlockDone):
            # Frames of a block reach the writer before the next block is generated.
            assert len(written) == event.block + 1
    assert isinstance(events[0], GenerationStarted) and events[0].seed == 9
    assert isinstance(events[-1], Finished) and events[-1].num_video_frames == plan.num_video_frames
    done = [e for e in events if isinstance(e, BlockDone)]
    assert [e.video_frames_done for e in done] == [9 + 12 * i for i in range(plan.num_blocks)]
    switches = [e for e in events if isinstance(e, PromptSwitched)]
    assert [(s.block, s.segment) for s in switches] == [(plan.segments[1].start_block, 1)]
    assert events.index(switches[0]) < events.index(done[switches[0].block])

    latents = [
        b.latents
        for b in sample_video(
            model.transformer,
            embeds,
            [plan.segment_for_block(i) for i in range(plan.num_blocks)],
            latent_height=6,
            latent_width=8,
            seed=9,
            sampler_config=model.spec.sampler,
        )
    ]
    one_shot = decode_latents(model.vae, torch.cat(latents, dim=1))[0]
    assert torch.equal(torch.cat(written, dim=0), one_shot)


def test_plan_must_fit_the_model(model, tmp_path):
    plan = make_plan(parse_storyboard(LIGHTHOUSE_STORY), dataclasses.replace(WAN21, frames_per_block=1))
    with pytest.raises(ValueError, match="blocks of 1 latent frames"):
        next(pipeline.generate_video(pipeline.VideoRequest(plan, model, [], tmp_path / "x.mp4", seed=0)))
    assert list(tmp_path.iterdir()) == []


def _temp_files(folder):
    return [p for p in folder.iterdir() if p.name.startswith(".lat.safetensors.part-")]


def test_save_latents_streams_to_its_file_block_by_block(model, tmp_path):
    from longlive_cli.latents import read_latents

    plan = make_plan(parse_storyboard(LIGHTHOUSE_STORY))
    embeds = [torch.randn(1, 5, 32, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    lat = tmp_path / "lat.safetensors"
    sizes, blocks = [], []
    for event in pipeline.generate_video(
        pipeline.VideoRequest(plan, model, embeds, tmp_path / "out.mp4", seed=9, save_latents=lat)
    ):
        if isinstance(event, BlockDone):
            (part,) = _temp_files(tmp_path)  # written under a temporary name while generating
            sizes.append(part.stat().st_size)
    block_bytes = 4 * 3 * 16 * 6 * 8
    assert [b - a for a, b in itertools.pairwise(sizes)] == [block_bytes] * (plan.num_blocks - 1)
    latents, saved_plan = read_latents(lat)
    assert (
        latents.shape == (1, plan.num_latent_frames, 16, 6, 8) and saved_plan["num_blocks"] == plan.num_blocks
    )
    for b in sample_video(
        model.transformer,
        embeds,
        [plan.segment_for_block(i) for i in range(plan.num_blocks)],
        latent_height=6,
        latent_width=8,
        seed=9,
        sampler_config=model.spec.sampler,
    ):
        blocks.append(b.latents)
    assert torch.equal(latents, torch.cat(blocks, dim=1))
    assert _temp_files(tmp_path) == []


def test_latents_of_a_video_ended_early_and_of_an_interrupted_one(model, tmp_path):
    from longlive_cli.latents import read_latents

    plan = make_plan(parse_storyboard(LIGHTHOUSE_STORY.replace("duration: 2s", "duration: 4s")))
    embeds = [torch.randn(1, 5, 32, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    done = []
    finish = lambda: len(done) >= 2  # noqa: E731 - `:quit` after the second block
    lat = tmp_path / "lat.safetensors"
    request = pipeline.VideoRequest(
        plan, model, embeds, tmp_path / "a.mp4", seed=9, save_latents=lat, should_finish=finish
    )
    for event in pipeline.generate_video(request):
        done += [event] if isinstance(event, BlockDone) else []
    latents, saved = read_latents(lat)
    assert latents.shape[1] == 6 and saved["num_latent_frames"] == plan.num_latent_frames  # header rewritten
    stop = tmp_path / "stop.safetensors"
    events = list(
        pipeline.generate_video(
            pipeline.VideoRequest(
                plan, model, embeds, tmp_path / "b.mp4", seed=9, save_latents=stop, should_stop=lambda: True
            )
        )
    )
    assert type(events[-1]).__name__ == "Interrupted" and not stop.exists()
    assert not [p for p in tmp_path.iterdir() if ".part-" in p.name]
