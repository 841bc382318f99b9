"""storyboard plan -> prompt embeddings -> causal sampler -> streaming VAE decode -> MP4, as events.

:func:`generate` is the library's one entry point for making a video. It is a generator: each
finished block is decoded and appended to the MP4 before the next one starts, and an event is
yielded for every step that a progress display, a JSON log or a test may want to see.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch

from .decode import StreamingDecoder
from .events import BlockDone, Event, Finished, GenerationStarted, Interrupted, PromptSwitched
from .models.registry import Model
from .runtime import StageTimes, stage
from .sampler import SampledBlock, sample_video
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
    """One UMT5 embedding ``[1, n, text_dim]`` per segment of ``plan``: each unique prompt encoded once, kept
    trimmed to its n <= 512 tokens (:func:`~longlive_cli.text.encode_prompts`)."""
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
    times: StageTimes | None = None,
) -> Iterator[Event]:
    """Generate ``plan`` into the MP4 ``output``, yielding events as the work proceeds.

    Args:
        plan: the storyboard's generation plan (resolution in pixels, blocks, segments).
        model: transformer, VAE and spec (the text encoder is not used here).
        prompt_embeds: one ``[1, n <= 512, text_dim]`` embedding per segment (:func:`encode_plan_prompts`).
        output: MP4 path; written to a temporary file beside it and renamed when complete.
        seed: seeds all noise (see :class:`~longlive_cli.sampler.NoiseStream`).
        overwrite: replace an existing ``output`` (and ``save_latents``).
        save_latents: also write the latents to this safetensors file (:func:`write_latents`); they
            are kept on the CPU until the end, ``L x 16 x h x w`` float32 (96 MB for 240 s at 832x480).
        should_stop: polled after each block; when it returns True the video so far is finished as
            ``<output stem>.partial.mp4`` (or discarded without ``keep_partial``) and ``Interrupted``
            is yielded instead of ``Finished``. Nothing is ever left under ``output`` itself.
        keep_partial: keep the partial video on a stop.
        times: receives the sampler's stages and ``decode`` / ``encode`` (:mod:`longlive_cli.runtime`).

    With ``model.transformer.options.overlap_decode`` each block is decoded and written on a worker
    thread while the next one is generated; ``BlockDone`` then follows one block behind.

    Yields:
        ``GenerationStarted``, then ``PromptSwitched`` before each switched block and ``BlockDone``
        after each block, then ``Finished`` (or ``Interrupted``).

    Raises:
        ValueError: plan and model do not fit (:func:`check_plan_fits`).
        longlive_cli.video.OutputError: the output cannot be written (checked before generating).
    """
    check_plan_fits(plan, model)
    segment_of_block = [plan.segment_for_block(b) for b in range(plan.num_blocks)]
    kept: list[torch.Tensor] | None = [] if save_latents is not None else None
    overlap = model.transformer.options.overlap_decode
    with (
        VideoWriter(
            output, fps=plan.fps, width=plan.width, height=plan.height, overwrite=overwrite
        ) as writer,
        _BlockSink(
            StreamingDecoder(model.vae), writer, overlap=overlap, keep=kept is not None, times=times
        ) as sink,
    ):
        started = time.perf_counter()
        frames_done = 0

        def done(pending: int) -> Iterator[BlockDone]:
            nonlocal frames_done
            for block, num_frames, latents in sink.finished(pending):
                frames_done += num_frames
                if kept is not None:
                    kept.append(latents)
                yield BlockDone(
                    block=block.index,
                    num_blocks=plan.num_blocks,
                    video_frames_done=frames_done,
                    num_video_frames=plan.num_video_frames,
                    fps=plan.fps,
                    elapsed_s=time.perf_counter() - started,
                )

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
            times=times,
        )
        for block in blocks:
            if block.switched:
                segment = plan.segments[block.segment]
                yield PromptSwitched(
                    block=block.index, segment=block.segment, text=segment.text, time_s=segment.effective_s
                )
            sink.submit(block)
            yield from done(sink.depth)
            if should_stop is not None and should_stop() and block.index + 1 < plan.num_blocks:
                yield from done(0)
                partial = writer.close(partial_path(output)) if keep_partial else None
                if not keep_partial:
                    writer.abort()
                yield Interrupted(
                    path=partial, num_video_frames=frames_done, duration_s=frames_done / plan.fps
                )
                return
        yield from done(0)
        with stage(times, "encode"):
            path = writer.close()
        wall = time.perf_counter() - started
    if kept is not None:
        write_latents(save_latents, torch.cat(kept, dim=1), plan, seed=seed, model=model.spec.name)
    yield Finished(path=path, num_video_frames=frames_done, duration_s=plan.video_duration_s, wall_s=wall)


class _BlockSink:
    """Decodes finished blocks with the VAE and appends their frames to the MP4, in order.

    Inline (``overlap=False``): :meth:`submit` does the work before returning. Overlapped: one
    worker thread does it while the caller generates the next block; on CUDA the worker runs on
    its own stream, ordered after the work that produced the latents. At most ``depth`` = 1 block
    waits beside the one being decoded, so memory stays bounded.
    """

    def __init__(self, decoder: StreamingDecoder, writer: VideoWriter, *, overlap: bool, keep: bool, times):
        self.decoder, self.writer, self.keep, self.times = decoder, writer, keep, times
        self.depth = 1 if overlap else 0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="longlive-decode") if overlap else None
        device = decoder.vae.device
        self._stream = torch.cuda.Stream(device) if overlap and device.type == "cuda" else None
        self._pending: deque[tuple[SampledBlock, Future]] = deque()

    def submit(self, block: SampledBlock) -> None:
        """Queue ``block`` (inline: decode and write it now)."""
        if self._pool is None:
            future: Future = Future()
            future.set_result(self._work(block.latents, None))
        else:
            ready = None
            if self._stream is not None:
                ready = torch.cuda.Event()
                ready.record()  # on the generating stream, after the ops that produced the latents
            future = self._pool.submit(self._work, block.latents, ready)
        self._pending.append((block, future))

    def finished(self, pending: int) -> Iterator[tuple[SampledBlock, int, torch.Tensor | None]]:
        """``(block, video frames written, latents on the CPU if kept)``, oldest first, waiting
        until at most ``pending`` blocks are left in flight. Re-raises the worker's errors."""
        while len(self._pending) > pending:
            block, future = self._pending.popleft()
            with stage(self.times, "wait") if self._pool is not None else contextlib.nullcontext():
                num_frames, latents = future.result()
            yield block, num_frames, latents

    def _work(self, latents: torch.Tensor, ready) -> tuple[int, torch.Tensor | None]:
        with torch.cuda.stream(self._stream) if self._stream is not None else contextlib.nullcontext():
            if ready is not None:
                self._stream.wait_event(ready)
                latents.record_stream(self._stream)  # the allocator must not reuse it before we are done
            with stage(self.times, "decode"):
                frames = self.decoder.decode(latents)[0]
            with stage(self.times, "encode"):
                self.writer.write(frames)
            return frames.shape[0], latents.float().cpu() if self.keep else None

    def __enter__(self) -> _BlockSink:
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:  # let the worker finish before the writer is closed or aborted
            self._pool.shutdown(wait=True, cancel_futures=True)


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
