"""Plan -> prompt schedule -> sampler -> streaming decoder -> MP4, as a generator of events.

:func:`generate_video` wires the stages for one video, described by a :class:`VideoRequest`: the model
spec's sampler yields finished latent blocks under the prompt schedule, each block is decoded and appended
to the MP4 before (or, with overlapped decode, while) the next one is generated, and an event is yielded for
every step a progress display, a JSON log or a test may want to see. Events are the only channel from here
to those consumers. Making a video in one call, model loading included, is :mod:`longlive_cli.api`'s job.
The consumers of a video's frames are its *outputs* (:class:`VideoOutput`: the MP4 writer, a live stream);
LongLive's *frame sink* is something else (the first latent frames kept in the KV cache,
:mod:`longlive_cli.models.kv_cache`).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from .decoders import Decoder, make_decoder
from .errors import InputError
from .events import BlockDone, Event, Finished, GenerationStarted, Interrupted, PromptSwitched
from .latents import LatentsView, LatentsWriter
from .models.loaders import Model
from .models.spec import check_capabilities
from .quality.timing import plan_metadata
from .runtime import StageTimes, stage
from .samplers import SampledBlock, get_sampler
from .schedule import FixedSchedule, PromptSchedule
from .storyboard import Plan
from .video import VideoWriter

__all__ = [
    "VideoOutput",
    "VideoRequest",
    "check_plan_fits",
    "decode_to_video",
    "generate_video",
    "partial_path",
]


def check_plan_fits(plan: Plan, model: Model) -> None:
    """Raise :class:`~longlive_cli.errors.InputError` when ``plan`` asks for what ``model`` cannot make
    (another fps or block size than the model's geometry, or what its components do not declare:
    :func:`~longlive_cli.models.spec.check_capabilities`)."""
    geometry = model.spec.geometry
    check_capabilities(model.spec, plan)
    if plan.fps != geometry.fps:
        raise InputError(
            f"the storyboard asks for {plan.fps} fps; {model.spec.name} generates {geometry.fps} fps"
        )
    if plan.frames_per_block != geometry.frames_per_block:
        raise InputError(
            f"the plan uses blocks of {plan.frames_per_block} latent frames; "
            f"{model.spec.name} uses {geometry.frames_per_block}"
        )


class VideoOutput(Protocol):
    """Anything that takes a block's video frames, uint8 ``[T, H, W, 3]`` on the CPU, in order (the MP4
    writer, a live stream)."""

    def write(self, frames: torch.Tensor) -> None: ...


@dataclass(frozen=True)
class VideoRequest:
    """One video for :func:`generate_video`.

    Attributes:
        plan: the storyboard's generation plan (resolution in pixels, blocks, segments).
        model: transformer, VAE and spec (the text encoder is not used here).
        conditioning: the prompt of each block: a :class:`~longlive_cli.schedule.PromptSchedule` (``longlive
            live``), or one ``[1, n <= 512, text_dim]`` embedding per segment of ``plan``
            (:class:`~longlive_cli.schedule.FixedSchedule` then switches at the segments' blocks).
        output: MP4 path; written to a temporary file beside it and renamed when complete. None: no MP4
            (``outputs`` only; ``Finished.path`` is then None).
        seed: seeds all noise (see :class:`~longlive_cli.samplers.base.NoiseStream`).
        overwrite: replace an existing ``output`` (and ``save_latents``).
        save_latents: also write the latents to this safetensors file, streamed block by block
            (:class:`~longlive_cli.latents.LatentsWriter`: nothing is held in memory; ``L x 16 x h x w``
            float32 on disk, 96 MB for 240 s at 832x480). Not kept when the run is interrupted.
        should_stop: polled after each block; when it returns True the video so far is finished as
            ``<output stem>.partial.mp4`` (or discarded without ``keep_partial``) and ``Interrupted``
            is yielded instead of ``Finished``. Nothing is ever left under ``output`` itself.
        keep_partial: keep the partial video on a stop.
        times: receives the sampler's stages and ``decode`` / ``encode`` (:mod:`longlive_cli.runtime`).
        decoder: turns latent blocks into frames (default: the model's decoder, streaming).
        outputs: more consumers of every block's frames (:class:`VideoOutput`), fed after the MP4, in order
            (a live stream); the caller closes them.
        should_finish: polled after each block; when it returns True the video ends there as if that
            were its last block (written under ``output``, ``Finished`` yielded): ``longlive live``'s
            ``:quit``.
        cut_embeds: for each segment that starts a new shot (``cut: true``), the embedding of its first
            block (scene-cut prefix + text; LongLive 2.0); only with embeddings as ``conditioning``.
    """

    plan: Plan
    model: Model
    conditioning: PromptSchedule | Sequence[torch.Tensor]
    output: str | Path | None
    seed: int
    overwrite: bool = False
    save_latents: str | Path | None = None
    should_stop: Callable[[], bool] | None = None
    keep_partial: bool = True
    times: StageTimes | None = None
    decoder: Decoder | None = None
    outputs: Sequence[VideoOutput] = ()
    should_finish: Callable[[], bool] | None = None
    cut_embeds: Mapping[int, torch.Tensor] | None = None

    @property
    def schedule(self) -> PromptSchedule:
        """The prompt of each block: ``conditioning`` itself, or the plan's segments with its embeddings."""
        if isinstance(self.conditioning, Sequence):  # a list of embeddings (a tensor is no Sequence)
            return FixedSchedule.for_plan(self.plan, list(self.conditioning), self.cut_embeds)
        return self.conditioning


def generate_video(request: VideoRequest) -> Iterator[Event]:
    """Generate ``request.plan`` into ``request.output`` (:class:`VideoRequest` describes every field),
    yielding events as the work proceeds.

    With ``model.transformer.options.overlap_decode`` each block is decoded and written on a worker
    thread while the next one is generated; ``BlockDone`` then follows one block behind.

    Yields:
        ``GenerationStarted``, then ``PromptSwitched`` before each switched block and ``BlockDone``
        after each block, then ``Finished`` (or ``Interrupted``).

    Raises:
        InputError: plan and model do not fit (:func:`check_plan_fits`).
        longlive_cli.errors.OutputError: the output cannot be written (checked before generating).
    """
    r = request
    check_plan_fits(r.plan, r.model)
    geometry = r.model.spec.geometry
    schedule = r.schedule
    # A fixed plan is embedded in the MP4 (read by `longlive report`); a live schedule's is not known yet.
    fixed = isinstance(r.conditioning, Sequence)
    tags = plan_metadata(r.plan, r.model.spec.name, r.seed) if fixed else None
    sampler_extra: dict[str, torch.Tensor] = {}
    if r.plan.image is not None:  # image-to-video: read and encode the image before any output is opened
        from .images import encode_image, load_image

        with stage(r.times, "image"):
            image = load_image(r.plan.image, r.plan.width, r.plan.height)
            sampler_extra["image_latent"] = encode_image(r.model.vae, image)
    kept = (
        LatentsWriter(
            r.save_latents,
            r.plan,
            seed=r.seed,
            model=r.model.spec.name,
            latent_channels=geometry.latent_channels,
            spatial_stride=geometry.vae_spatial_stride,
            overwrite=r.overwrite,
        )
        if r.save_latents is not None
        else None
    )
    try:
        yield from _run(r, schedule, kept, tags, sampler_extra)
    except BaseException:
        if kept is not None:
            kept.abort()
        raise


def _run(
    r: VideoRequest,
    schedule: PromptSchedule,
    kept: LatentsWriter | None,
    tags: dict[str, str] | None,
    sampler_extra: Mapping[str, torch.Tensor],
) -> Iterator[Event]:
    """:func:`generate_video` past its checks; ``kept``: the latents file, or None; ``tags``: the MP4's
    metadata; ``sampler_extra``: keyword arguments only some samplers take (``image_latent`` for
    image-to-video)."""
    plan, model, output = r.plan, r.model, r.output
    geometry = model.spec.geometry
    overlap = model.transformer.options.overlap_decode
    writer: VideoWriter | _NoFile = (
        VideoWriter(
            output, fps=plan.fps, width=plan.width, height=plan.height, overwrite=r.overwrite, metadata=tags
        )
        if output is not None
        else _NoFile()
    )
    with (
        writer,
        _BlockOutputs(
            r.decoder
            or make_decoder(
                model.spec.decoder,
                model.vae,
                options=model.transformer.options,
                fallbacks=model.transformer.fallbacks,
            ),
            [writer, *r.outputs],
            overlap=overlap,
            keep=kept is not None,
            times=r.times,
        ) as outputs,
    ):
        started = time.perf_counter()
        frames_done = 0

        def done(pending: int) -> Iterator[BlockDone]:
            nonlocal frames_done
            for block, num_frames, latents in outputs.finished(pending):
                frames_done += num_frames
                if kept is not None and latents is not None:
                    kept.write(latents)
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
            seed=r.seed,
        )
        latent_height, latent_width = geometry.latent_size(plan.width, plan.height)
        blocks = get_sampler(model.spec.sampler.name)(
            model.transformer,
            schedule,
            latent_height=latent_height,
            latent_width=latent_width,
            seed=r.seed,
            sampler_config=model.spec.sampler,
            geometry=geometry,
            times=r.times,
            **sampler_extra,
        )
        for block in blocks:
            if block.switched:
                time_s = geometry.first_video_frame(block.start_frame) / plan.fps
                text = schedule.text(block.segment)
                yield PromptSwitched(block=block.index, segment=block.segment, text=text, time_s=time_s)
            outputs.submit(block)
            yield from done(outputs.depth)
            if r.should_stop is not None and r.should_stop() and block.index + 1 < plan.num_blocks:
                yield from done(0)
                keep = r.keep_partial and output is not None
                partial = writer.close(partial_path(output)) if keep and output is not None else None
                if partial is None:
                    writer.abort()
                if kept is not None:
                    kept.abort()  # as before streaming: an interrupted run keeps no latents file
                yield Interrupted(
                    path=partial, num_video_frames=frames_done, duration_s=frames_done / plan.fps
                )
                return
            if r.should_finish is not None and r.should_finish():
                break
        yield from done(0)
        with stage(r.times, "encode"):
            path = writer.close()
        wall = time.perf_counter() - started
    if kept is not None:
        kept.close()
    yield Finished(path=path, num_video_frames=frames_done, duration_s=frames_done / plan.fps, wall_s=wall)


def __getattr__(name: str) -> Any:
    if name == "FrameSink":  # the old name of VideoOutput (in __all__ before)
        warnings.warn("pipeline.FrameSink is now pipeline.VideoOutput", DeprecationWarning, stacklevel=2)
        return VideoOutput
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _NoFile:
    """The MP4 writer's stand-in when no file is asked for (a live stream only)."""

    def write(self, frames: torch.Tensor) -> None:
        pass

    def close(self, path: str | Path | None = None) -> None:
        return None

    def abort(self) -> None:
        pass

    def __enter__(self) -> _NoFile:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _BlockOutputs:
    """Decodes finished blocks and feeds their frames to the outputs (the MP4 first), in order.

    Inline (``overlap=False``): :meth:`submit` does the work before returning. Overlapped: one
    worker thread does it while the caller generates the next block; on CUDA the worker runs on
    its own stream, ordered after the work that produced the latents. At most ``depth`` = 1 block
    waits beside the one being decoded, so memory stays bounded.
    """

    def __init__(
        self, decoder: Decoder, writers: Sequence[VideoOutput], *, overlap: bool, keep: bool, times: Any
    ) -> None:
        self.decoder, self.writers, self.keep, self.times = decoder, writers, keep, times
        self.depth = 1 if overlap else 0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="longlive-decode") if overlap else None
        device = decoder.device
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
            if ready is not None and self._stream is not None:
                self._stream.wait_event(ready)
                latents.record_stream(self._stream)  # the allocator must not reuse it before we are done
            with stage(self.times, "decode"):
                frames = self.decoder.decode(latents)[0]
            with stage(self.times, "encode"):
                for writer in self.writers:
                    writer.write(frames)
            return frames.shape[0], latents.float().cpu() if self.keep else None

    def __enter__(self) -> _BlockOutputs:
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:  # let the worker finish before the writer is closed or aborted
            self._pool.shutdown(wait=True, cancel_futures=True)


def partial_path(output: str | Path) -> Path:
    """Where an interrupted video is kept: ``out.mp4`` -> ``out.partial.mp4``."""
    output = Path(output)
    return output.with_name(f"{output.stem}.partial{output.suffix or '.mp4'}")


def decode_to_video(
    decoder: Decoder,
    latents: torch.Tensor | LatentsView,
    output: str | Path,
    *,
    fps: int,
    frames_per_block: int,
    overwrite: bool = False,
) -> Path:
    """Decode ``latents`` ``[1, L, 16, h, w]`` (a tensor, or a file's
    :class:`~longlive_cli.latents.LatentsView`, read a block at a time) block by block with ``decoder`` into
    the MP4 ``output`` (``fps`` video frames per second; frames of ``8h x 8w`` pixels for the Wan VAE).

    Raises:
        longlive_cli.errors.OutputError: the output cannot be written.
    """
    writer: VideoWriter | None = None
    try:
        for start in range(0, latents.shape[1], frames_per_block):
            frames = decoder.decode(latents[:, start : start + frames_per_block].to(decoder.device))[0]
            if writer is None:
                height, width = frames.shape[1], frames.shape[2]
                writer = VideoWriter(output, fps=fps, width=width, height=height, overwrite=overwrite)
            writer.write(frames)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is None:
        raise InputError("the latents hold no frames")
    return writer.close()
