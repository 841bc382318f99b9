"""storyboard plan -> prompt embeddings -> causal sampler -> streaming VAE decode -> MP4, as events.

:func:`generate` is the library's one entry point for making a video. It is a generator: each
finished block is decoded and appended to the MP4 before the next one starts, and an event is
yielded for every step that a progress display, a JSON log or a test may want to see.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch

from .decode import StreamingDecoder
from .events import BlockDone, Event, Finished, GenerationStarted, Interrupted, PromptSwitched
from .models.registry import Model
from .sampler import sample_video
from .storyboard import Plan
from .text import TextEncoder, encode_prompts
from .video import VideoWriter

VAE_SPATIAL_STRIDE = 8
LATENTS_FORMAT = "longlive-latents/1"


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
    save_latents: str | Path | None = None,
    should_stop: Callable[[], bool] | None = None,
    keep_partial: bool = True,
) -> Iterator[Event]:
    """Generate ``plan`` into the MP4 ``output``, yielding events as the work proceeds.

    Args:
        plan: the storyboard's generation plan (resolution in pixels, blocks, segments).
        model: transformer, VAE and spec (the text encoder is not used here).
        prompt_embeds: one ``[1, 512, text_dim]`` embedding per segment (:func:`encode_plan_prompts`).
        output: MP4 path; written to a temporary file beside it and renamed when complete.
        seed: seeds all noise (see :class:`~longlive_cli.sampler.NoiseStream`).
        overwrite: replace an existing ``output`` (and ``save_latents``).
        save_latents: also write the latents to this safetensors file (:func:`write_latents`); they
            are kept on the CPU until the end, ``L x 16 x h x w`` float32 (96 MB for 240 s at 832x480).
        should_stop: polled after each block; when it returns True the video so far is finished as
            ``<output stem>.partial.mp4`` (or discarded without ``keep_partial``) and ``Interrupted``
            is yielded instead of ``Finished``. Nothing is ever left under ``output`` itself.
        keep_partial: keep the partial video on a stop.

    Yields:
        ``GenerationStarted``, then ``PromptSwitched`` before each switched block and ``BlockDone``
        after each block, then ``Finished`` (or ``Interrupted``).

    Raises:
        ValueError: plan and model do not fit (:func:`check_plan_fits`).
        longlive_cli.video.OutputError: the output cannot be written (checked before generating).
    """
    check_plan_fits(plan, model)
    segment_of_block = [plan.segment_for_block(b) for b in range(plan.num_blocks)]
    decoder = StreamingDecoder(model.vae)
    kept: list[torch.Tensor] | None = [] if save_latents is not None else None
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
            if kept is not None:
                kept.append(block.latents.float().cpu())
            yield BlockDone(
                block=block.index,
                num_blocks=plan.num_blocks,
                video_frames_done=writer.frames_written,
                num_video_frames=plan.num_video_frames,
                fps=plan.fps,
                elapsed_s=time.perf_counter() - started,
            )
            if should_stop is not None and should_stop() and block.index + 1 < plan.num_blocks:
                frames = writer.frames_written
                if keep_partial:
                    kept = writer.close(partial_path(output))
                else:
                    writer.abort()
                    kept = None
                yield Interrupted(path=kept, num_video_frames=frames, duration_s=frames / plan.fps)
                return
        path = writer.close()
        wall = time.perf_counter() - started
    if kept is not None:
        write_latents(save_latents, torch.cat(kept, dim=1), plan, seed=seed, model=model.spec.name)
    yield Finished(
        path=path, num_video_frames=writer.frames_written, duration_s=plan.video_duration_s, wall_s=wall
    )


def partial_path(output: str | Path) -> Path:
    """Where an interrupted video is kept: ``out.mp4`` -> ``out.partial.mp4``."""
    output = Path(output)
    return output.with_name(f"{output.stem}.partial{output.suffix or '.mp4'}")


def write_latents(path: str | Path, latents: torch.Tensor, plan: Plan, *, seed: int, model: str) -> Path:
    """Save ``latents`` ``[1, L, 16, h, w]`` (float32) as safetensors, the plan and seed in the metadata.

    Written to a temporary file beside ``path`` and renamed, so ``path`` is never half-written.
    """
    from safetensors.torch import save_file

    path = Path(path)
    meta = {
        "format": LATENTS_FORMAT,
        "plan": json.dumps(dataclasses.asdict(plan)),
        "seed": str(seed),
        "model": model,
    }
    tmp = path.with_name(f".{path.name}.part-{secrets.token_hex(4)}")
    try:
        save_file({"latents": latents.float().contiguous()}, str(tmp), metadata=meta)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_latents(path: str | Path) -> tuple[torch.Tensor, dict]:
    """Load a file written by :func:`write_latents`: ``(latents [1, L, 16, h, w], plan as a dict)``.

    Raises:
        ValueError: not such a file (names the file and what is wrong).
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != LATENTS_FORMAT or "latents" not in f.keys():  # noqa: SIM118
                raise ValueError(f"{path} is not a latents file from `longlive generate --save-latents`")
            latents = f.get_tensor("latents")
    except (SafetensorError, OSError) as err:
        raise ValueError(f"cannot read latents file {path}: {err}") from None
    if latents.ndim != 5 or latents.shape[0] != 1 or latents.shape[2] != 16:
        raise ValueError(f"{path}: latents have shape {tuple(latents.shape)}, expected [1, L, 16, h, w]")
    return latents, json.loads(meta["plan"])


def decode_to_video(
    vae, latents: torch.Tensor, output: str | Path, *, fps: int, frames_per_block: int = 3, overwrite=False
) -> Path:
    """Decode ``latents`` ``[1, L, 16, h, w]`` block by block into the MP4 ``output``."""
    decoder = StreamingDecoder(vae)
    height, width = latents.shape[-2] * VAE_SPATIAL_STRIDE, latents.shape[-1] * VAE_SPATIAL_STRIDE
    with VideoWriter(output, fps=fps, width=width, height=height, overwrite=overwrite) as writer:
        for start in range(0, latents.shape[1], frames_per_block):
            block = latents[:, start : start + frames_per_block]
            writer.write(decoder.decode(block.to(device=next(vae.parameters()).device))[0])
        return writer.close()
