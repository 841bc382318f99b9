"""Progress display for the block-by-block generation loop.

Reporters consume the pipeline's events (see :mod:`longlive_cli.events`) and draw them on a
stream, by default ``sys.stderr`` so that stdout stays free for machine-readable output.
:func:`make_reporter` picks a live Rich bar for terminals, plain log lines for pipes and CI logs,
and only the final summary line when asked to be quiet.

Usage::

    with make_reporter(quiet=args.quiet) as reporter:
        for event in pipeline.run(plan):
            reporter.handle(event)
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, TextIO, runtime_checkable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Column

from longlive_cli.events import BlockDone, Event, Finished, GenerationStarted, PromptSwitched

__all__ = [
    "PlainReporter",
    "ProgressReporter",
    "QuietReporter",
    "RichReporter",
    "format_duration",
    "make_reporter",
    "summary_line",
]

PROMPT_WIDTH = 50
"""Characters of the current prompt shown in the live bar."""


@runtime_checkable
class ProgressReporter(Protocol):
    """Something that shows generation progress: a context manager fed every pipeline event."""

    def __enter__(self) -> ProgressReporter: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def handle(self, event: Event) -> None:
        """Update the display for one event."""
        ...


# --------------------------------------------------------------------------- formatting helpers


def format_duration(seconds: float) -> str:
    """Format a duration as ``M:SS`` under an hour and ``H:MM:SS`` from an hour on.

    Seconds are rounded to the nearest whole second; negative values count as zero and
    non-finite ones (an unknown ETA) give ``"--:--"``.
    """
    if not math.isfinite(seconds):
        return "--:--"
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def summary_line(event: Finished) -> str:
    """The one-line result summary, e.g. ``Wrote out.mp4 — 59.81 s of video, 957 frames in 1:35 (10.1 fps)``.

    The fps is generation speed: video frames per wall-clock second of the block loop.
    """
    fps = event.generation_fps
    fps_text = f"{fps:.1f} fps" if math.isfinite(fps) else "-- fps"
    what = f"Wrote {event.path}" if event.path is not None else "Streamed"
    return (
        f"{what} — {event.duration_s:.2f} s of video, "
        f"{event.num_video_frames} frames in {format_duration(event.wall_s)} ({fps_text})"
    )


def _generation_fps(event: BlockDone) -> float | None:
    """Video frames per wall second so far, or None before any time has been measured."""
    if event.elapsed_s <= 0:
        return None
    return event.video_frames_done / event.elapsed_s


def _eta_s(event: BlockDone, fps: float | None) -> float:
    """Seconds of wall time left at the measured rate; ``inf`` while the rate is unknown."""
    remaining = max(0, event.num_video_frames - event.video_frames_done)
    if remaining == 0:
        return 0.0
    if not fps:
        return math.inf
    return remaining / fps


def _one_line(text: str) -> str:
    """Collapse whitespace and drop control characters, so a prompt can't break the layout
    (or smuggle escape sequences into a log)."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def _truncate(text: str, width: int = PROMPT_WIDTH) -> str:
    text = _one_line(text)
    if len(text) <= width:
        return text
    return text[: width - 1].rstrip() + "…"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


# --------------------------------------------------------------------------- line reporters


class _LineReporter:
    """Shared plumbing for reporters that write whole lines to a text stream."""

    def __init__(self, stream: TextIO | None = None) -> None:
        # Resolved now rather than at import so redirected/captured stderr is honoured.
        self.stream: TextIO = stream if stream is not None else sys.stderr

    def __enter__(self) -> _LineReporter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        # Flush per line so progress shows up promptly in pipes and CI logs.
        self.stream.flush()

    def handle(self, event: Event) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class QuietReporter(_LineReporter):
    """Prints nothing but the summary line when the output is finished."""

    def handle(self, event: Event) -> None:
        """Write the summary on :class:`Finished`; ignore everything else."""
        if isinstance(event, Finished):
            self._write(summary_line(event))


class PlainReporter(_LineReporter):
    """Plain, log-friendly lines: no ANSI codes, no carriage returns, one flushed line per event.

    Block lines look like ``block 3/80  video 2.25/60.00 s  9.8 fps  eta 1:10``. They are
    rate-limited to at most one per ``min_interval_s`` of wall time (measured with ``clock``),
    except that the first and the last block are always shown. Prompt switches are always shown,
    as ``prompt 2 at 10.31 s: The boy starts to run``.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        min_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(stream)
        self.min_interval_s = min_interval_s
        self.clock = clock
        self._last_block_line_at: float | None = None
        self._segment: int | None = None

    def handle(self, event: Event) -> None:
        """Write the line(s) for one event, if any are due."""
        if isinstance(event, GenerationStarted):
            self._segment = 0
            self._write(
                f"generating {event.duration_s:.2f} s of video: {event.num_video_frames} frames "
                f"at {event.fps} fps in {event.num_blocks} blocks"
            )
            self._write(f"prompt 1 at 0.00 s: {_one_line(event.first_prompt)}")
        elif isinstance(event, PromptSwitched):
            # The first prompt was already shown with GenerationStarted; don't repeat it if the
            # pipeline also announces segment 0.
            if event.segment == self._segment:
                return
            self._segment = event.segment
            self._write(f"prompt {event.segment + 1} at {event.time_s:.2f} s: {_one_line(event.text)}")
        elif isinstance(event, BlockDone):
            now = self.clock()
            is_last = event.block + 1 >= event.num_blocks
            due = self._last_block_line_at is None or now - self._last_block_line_at >= self.min_interval_s
            if due or is_last:
                self._last_block_line_at = now
                self._write(self._block_line(event))
        elif isinstance(event, Finished):
            self._write(summary_line(event))

    @staticmethod
    def _block_line(event: BlockDone) -> str:
        fps = _generation_fps(event)
        fps_text = f"{fps:.1f} fps" if fps is not None else "-- fps"
        done_s = event.video_frames_done / event.fps
        total_s = event.num_video_frames / event.fps
        return (
            f"block {event.block + 1}/{event.num_blocks}  video {done_s:.2f}/{total_s:.2f} s  "
            f"{fps_text}  eta {format_duration(_eta_s(event, fps))}"
        )


# --------------------------------------------------------------------------- rich reporter


class RichReporter:
    """A live Rich progress bar (kept on screen afterwards) for interactive terminals.

    Shows a bar with blocks done/total, video seconds done/total, generation fps, an ETA from the
    measured rate and the current prompt (truncated to :data:`PROMPT_WIDTH` characters); the
    summary line is printed below the bar when the output is finished.
    """

    def __init__(self, stream: TextIO | None = None, *, console: Console | None = None) -> None:
        if console is None:
            console = Console(stderr=True) if stream is None else Console(file=stream)
        self.console = console
        self.progress = Progress(
            BarColumn(bar_width=30),
            MofNCompleteColumn(table_column=Column(no_wrap=True)),
            TextColumn("blocks", markup=False, table_column=Column(no_wrap=True)),
            TextColumn("{task.fields[video]}", markup=False, table_column=Column(no_wrap=True)),
            TextColumn("{task.fields[fps]}", markup=False, table_column=Column(no_wrap=True)),
            TextColumn("eta {task.fields[eta]}", markup=False, table_column=Column(no_wrap=True)),
            # Last, so the numbers don't move when it changes and a narrow terminal cuts it first.
            # markup=False: prompts are user text and may contain "[...]" that Rich would parse.
            TextColumn(
                "{task.fields[prompt]}",
                markup=False,
                table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1),
            ),
            # With expand, the ratio column (the prompt) gets whatever width the numbers leave.
            expand=True,
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()  # idempotent; already stopped after Finished

    def _ensure_task(self, num_blocks: int, total_s: float, prompt: str = "") -> TaskID:
        if self._task is None:
            self._task = self.progress.add_task(
                "generating",
                total=num_blocks,
                prompt=_truncate(prompt),
                video=f"0.0/{total_s:.1f} s",
                fps="-- fps",
                eta=format_duration(math.inf),
            )
        return self._task

    def handle(self, event: Event) -> None:
        """Update the bar for one event; on :class:`Finished`, stop it and print the summary."""
        if isinstance(event, GenerationStarted):
            self._ensure_task(event.num_blocks, event.duration_s, event.first_prompt)
        elif isinstance(event, PromptSwitched):
            if self._task is not None:
                self.progress.update(self._task, prompt=_truncate(event.text))
        elif isinstance(event, BlockDone):
            # Tolerate a missing GenerationStarted rather than crash the run over a progress bar.
            task = self._ensure_task(event.num_blocks, event.num_video_frames / event.fps)
            fps = _generation_fps(event)
            self.progress.update(
                task,
                completed=event.block + 1,
                video=f"{event.video_frames_done / event.fps:.1f}/{event.num_video_frames / event.fps:.1f} s",
                fps=f"{fps:.1f} fps" if fps is not None else "-- fps",
                eta=format_duration(_eta_s(event, fps)),
            )
        elif isinstance(event, Finished):
            # Stop first so the final bar is drawn above the summary rather than below it.
            self.progress.stop()
            self.console.print(summary_line(event), markup=False, highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------- factory


def make_reporter(
    *, quiet: bool = False, stream: TextIO | None = None, force_plain: bool = False
) -> ProgressReporter:
    """Pick the reporter for ``stream`` (default ``sys.stderr``).

    * ``quiet``: :class:`QuietReporter`, only the final summary line (errors are reported
      elsewhere).
    * a terminal, with neither ``NO_COLOR`` (non-empty) nor ``TERM=dumb`` set and not
      ``force_plain``: :class:`RichReporter`, a live progress bar.
    * otherwise: :class:`PlainReporter`, one plain line per event.
    """
    stream = stream if stream is not None else sys.stderr
    if quiet:
        return QuietReporter(stream)
    fancy = (
        not force_plain
        and _is_terminal(stream)
        and not os.environ.get("NO_COLOR")
        and os.environ.get("TERM") != "dumb"
    )
    if fancy:
        return RichReporter(stream)
    return PlainReporter(stream)
