"""Many storyboards in one run: jobs, output names, shards, stop signals, exit codes, JSON lines.

The CLI turns its arguments into :class:`Job` objects, runs them with one loaded model, and ends
with :func:`exit_code`. Scheduling across GPUs or machines is left to existing tools (Slurm arrays,
GNU parallel, ``xargs -P``): :func:`select_shard` gives each of them a deterministic slice.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

# Exit codes (README "Exit codes").
EXIT_OK = 0
EXIT_FAILURE = 1  # generation failed at run time
EXIT_BAD_INPUT = 2  # storyboard or command-line arguments unusable
EXIT_MODEL = 3  # model or weights unavailable
EXIT_OUTPUT = 4  # output cannot be written (exists, folder missing, disk)
EXIT_PARTIAL = 5  # some storyboards done, some failed
EXIT_SIGINT = 130  # 128 + SIGINT
EXIT_SIGTERM = 143  # 128 + SIGTERM

STDIN = "-"


class Status(str, enum.Enum):
    pending = "pending"
    done = "done"
    skipped = "skipped"  # the output already existed (batch mode, no --force)
    failed = "failed"
    interrupted = "interrupted"


@dataclass
class Job:
    """One storyboard to generate: where it comes from, where it goes, and how it ended."""

    name: str  # the storyboard file as given, or "-" for stdin
    output: Path
    status: Status = Status.pending
    code: int = EXIT_OK  # the exit code this job alone would give
    message: str = ""

    def fail(self, code: int, message: str) -> None:
        self.status, self.code, self.message = Status.failed, code, message


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with ``1 <= K <= N``.

    Raises:
        ValueError: anything else (the message shows the expected form).
    """
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: write K/N, e.g. 1/4 for the first of four slices") from None
    if not 1 <= k <= n:
        raise ValueError(f"--shard {text!r}: K must be between 1 and N")
    return k, n


def select_shard(items: Sequence[str], k: int, n: int) -> list[str]:
    """The K-th of N deterministic slices of ``items`` (1-based): every N-th item from the K-th.

    The slices are disjoint and together cover ``items`` in their given order.
    """
    return [item for i, item in enumerate(items) if i % n == k - 1]


def output_for(storyboard: str, output: Path | None, *, batch: bool) -> Path:
    """The MP4 path for ``storyboard``.

    Batch mode (several storyboards, or ``-o`` naming a folder): ``<folder>/<storyboard stem>.mp4``
    (``stdin.mp4`` for ``-``). Single mode: ``output`` or ``<storyboard stem>.mp4``.
    """
    stem = "stdin" if storyboard == STDIN else Path(storyboard).stem
    if batch:
        return (output if output is not None else Path(".")) / f"{stem}.mp4"
    return output if output is not None else Path(f"{stem}.mp4")


def exit_code(jobs: Sequence[Job]) -> int:
    """The run's exit code: 0 when every job is done or skipped, the interrupt code when stopped,
    5 (partial success) when some succeeded and some failed, else the first failure's code."""
    for job in jobs:
        if job.status is Status.interrupted:
            return job.code
    failed = [j for j in jobs if j.status is Status.failed]
    if not failed:
        return EXIT_OK
    if any(j.status in (Status.done, Status.skipped) for j in jobs):
        return EXIT_PARTIAL
    return failed[0].code


class StopSignals:
    """Turns the first SIGINT/SIGTERM into a polite stop request and the second into an abort.

    Use as a context manager around the generation loop; poll :meth:`requested` between blocks.
    The first signal only sets a flag (the current block finishes, the video so far is kept); a
    second one raises ``KeyboardInterrupt`` at once. Handlers are restored on exit. Outside the
    main thread (signals cannot be caught there) it does nothing.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return EXIT_SIGTERM if self.signum == signal.SIGTERM else EXIT_SIGINT

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(
            f"\n{name}: finishing the current block and keeping the video so far; "
            "press Ctrl-C again to abort",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def to_json(kind: str, **fields: Any) -> str:
    """One JSON line ``{"event": kind, ...}``; dataclasses and paths are converted."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {k: plain(v) for k, v in dataclasses.asdict(value).items()}
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, enum.Enum):
            return value.value
        return value

    return json.dumps({"event": kind, **{k: plain(v) for k, v in fields.items()}}, ensure_ascii=False)


def event_name(event: object) -> str:
    """``BlockDone`` -> ``block_done``."""
    name = type(event).__name__
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


class JsonLines:
    """Writes one JSON object per line to ``stream`` (stdout by default), flushing each."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout

    def emit(self, kind: str, **fields: Any) -> None:
        self.stream.write(to_json(kind, **fields) + "\n")
        self.stream.flush()

    def event(self, event: object, **context: Any) -> None:
        fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
        self.emit(event_name(event), **context, **fields)
