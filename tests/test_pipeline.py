"""The pipeline: events in order, frames streamed block by block, equal to a one-shot decode."""

from __future__ import annotations

import dataclasses

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
    for event in pipeline.generate(plan, model, embeds, tmp_path / "out.mp4", seed=9):
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
            cfg=model.spec.sampler,
        )
    ]
    one_shot = decode_latents(model.vae, torch.cat(latents, dim=1))[0]
    assert torch.equal(torch.cat(written, dim=0), one_shot)


def test_plan_must_fit_the_model(model, tmp_path):
    plan = make_plan(parse_storyboard(LIGHTHOUSE_STORY), dataclasses.replace(WAN21, frames_per_block=1))
    with pytest.raises(ValueError, match="blocks of 1 latent frames"):
        next(pipeline.generate(plan, model, [], tmp_path / "x.mp4", seed=0))
    assert list(tmp_path.iterdir()) == []
