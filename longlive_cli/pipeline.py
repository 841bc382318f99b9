"""storyboard plan -> prompt embeddings -> causal sampler -> streaming VAE decode -> MP4, as events.

:func:`generate` is the library's one entry point for making a video. It is a generator: each
finished block is decoded and appended to the MP4 before the next one starts, and an event is
yielded for every step that a progress display, a JSON log or a test may want to see.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch

from .decode import StreamingDecoder
from .events import BlockDone, Event, Finished, GenerationStarted, PromptSwitched
from .models.registry import Model
from .sampler import sample_video
from .storyboard import Plan
from .text import TextEncoder, encode_prompts
from .video import VideoWriter

VAE_SPATIAL_STRIDE = 8


def resolve_seed(seed: int | None) -> int:
    """``seed``, or a fresh random one (reported in the events so the video can be made again)."""
    return secrets.randbelow(2**31) if seed is None else seed


def encode_plan_prompts(
    text_encoder: TextEncoder,
    plan: Plan,
    *,
    on_truncate: Callable[[int, str, int], None] | None = None,
) -> list[torch.Tensor]:
    """One UMT5 embedding ``[1, 512, text_dim]`` per segment of ``plan`` (each unique prompt encoded once)."""
    return encode_prompts(text_encoder, [s.text for s in plan.segments], on_truncate=on_truncate)


def check_plan_fits(plan: Plan, model: Model) -> None:
    """Raise ``ValueError`` when ``plan`` asks for what ``model`` cannot make (fps, block size)."""
    if plan.fps != model.spec.fps:
        raise ValueError(
            f"the storyboard asks for {plan.fps} fps; {model.spec.name} generates {model.spec.fps} fps"
        )
    if plan.frames_per_block != model.spec.sampler.frames_per_block:
        raise ValueError(
            f"the plan uses blocks of {plan.frames_per_block} latent frames; "
            f"{model.spec.name} uses {model.spec.sampler.frames_per_block}"
        )


def generate(
    plan: Plan,
    model: Model,
    prompt_embeds: Sequence[torch.Tensor],
    output: str | Path,
    *,
    seed: int,
    overwrite: bool = False,
) -> Iterator[Event]:
    """Generate ``plan`` into the MP4 ``output``, yielding events as the work proceeds.

    Args:
        plan: the storyboard's generation plan (resolution in pixels, blocks, segments).
        model: transformer, VAE and spec (the text encoder is not used here).
        prompt_embeds: one ``[1, 512, text_dim]`` embedding per segment (:func:`encode_plan_prompts`).
        output: MP4 path; written to a temporary file beside it and renamed when complete.
        seed: seeds all noise (see :class:`~longlive_cli.sampler.NoiseStream`).
        overwrite: replace an existing ``output``.

    Yields:
        ``GenerationStarted``, then ``PromptSwitched`` before each switched block and ``BlockDone``
        after each block, then ``Finished``.

    Raises:
        ValueError: plan and model do not fit (:func:`check_plan_fits`).
        longlive_cli.video.OutputError: the output cannot be written (checked before generating).
    """
    check_plan_fits(plan, model)
    segment_of_block = [plan.segment_for_block(b) for b in range(plan.num_blocks)]
    decoder = StreamingDecoder(model.vae)
    with VideoWriter(
        output, fps=plan.fps, width=plan.width, height=plan.height, overwrite=overwrite
    ) as writer:
        started = time.perf_counter()
        yield GenerationStarted(
            num_blocks=plan.num_blocks,
            frames_per_block=plan.frames_per_block,
            num_video_frames=plan.num_video_frames,
            fps=plan.fps,
            duration_s=plan.video_duration_s,
            first_prompt=plan.segments[0].text,
            seed=seed,
        )
        blocks = sample_video(
            model.transformer,
            prompt_embeds,
            segment_of_block,
            latent_height=plan.height // VAE_SPATIAL_STRIDE,
            latent_width=plan.width // VAE_SPATIAL_STRIDE,
            seed=seed,
            cfg=model.spec.sampler,
        )
        for block in blocks:
            if block.switched:
                segment = plan.segments[block.segment]
                yield PromptSwitched(
                    block=block.index, segment=block.segment, text=segment.text, time_s=segment.effective_s
                )
            writer.write(decoder.decode(block.latents)[0])
            yield BlockDone(
                block=block.index,
                num_blocks=plan.num_blocks,
                video_frames_done=writer.frames_written,
                num_video_frames=plan.num_video_frames,
                fps=plan.fps,
                elapsed_s=time.perf_counter() - started,
            )
        path = writer.close()
        wall = time.perf_counter() - started
    yield Finished(
        path=path, num_video_frames=writer.frames_written, duration_s=plan.video_duration_s, wall_s=wall
    )
