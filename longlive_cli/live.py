"""``longlive live``: steer a video while it is being made, from prompts typed one per line.

The pieces:

* :class:`PromptReader` reads lines from standard input, or from a path another program writes to (a FIFO,
  reopened whenever its writer closes it, or a regular file followed as it grows). Each line is decoded
  (UTF-8), checked (not empty, at most :data:`~longlive_cli.storyboard.schema.MAX_PROMPT_CHARS` characters)
  and either handed to the schedule as a prompt or run as a command (``:quit``, ``:pause``, ``:resume``,
  ``:transition 2s [linear|slerp]`` for the next prompt, ``:help``). A bad line gets one message on standard
  error and is ignored.
* :class:`LiveSchedule` is the :class:`~longlive_cli.schedule.PromptSchedule` the sampler asks before each
  block. A prompt that arrived before block ``b`` starts is in force from block ``b`` (the same re-cache as a
  storyboard's switch); when several arrive during one block, the newest wins and the others are reported as
  superseded. Prompts are encoded as they arrive, on one worker thread, so a block waits for an embedding
  only when its prompt came in just before it. ``:pause`` holds the next block (the KV cache is kept).
* :class:`LiveSession` runs the pipeline with that schedule, streams and records, measures each switch's
  prompt-to-frame latency (wall seconds from the line arriving to the first decoded frame under it), and
  rewrites the session storyboard after every switch, so that ``longlive generate session.yaml`` (same seed)
  makes the same latents.

A session always has a planned length (``duration``; when not given the model's longest, 240 s, or one hour
with relative RoPE, :data:`LIVE_UNBOUNDED_S`): the noise
stream is laid out for it, as for a storyboard of that length. ``:quit``, the end of standard input without
``--duration``, or Ctrl-C end it earlier; the session storyboard then keeps the planned duration and says
where the session stopped: ``longlive generate`` of it makes the planned length, whose first part is the
session, latent for latent (later blocks never change earlier ones).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch

from .errors import InputError
from .events import BlockDone, Event, Finished, Interrupted, PromptSwitched
from .fileio import atomic_output
from .geometry import WAN21, Geometry
from .registry import sampler_info
from .schedule import Transition, transition_weight
from .storyboard import Plan, StoryboardError
from .storyboard.schema import BLENDS, MAX_PROMPT_CHARS, check_transition, transition_blocks

__all__ = ["LiveSchedule", "LiveSession", "PromptReader"]

log = logging.getLogger(__name__)

#: The planned length of a session without ``--duration`` on a relative-RoPE model (whose own bound, 24 h,
#: would lay out a day of noise before the first block): one hour. Absolute RoPE: the model's 240 s.
LIVE_UNBOUNDED_S = 3600.0

HELP = (
    "type a prompt and press Enter to switch to it at the next block; commands: :quit (finish the video "
    "here), :pause / :resume (hold and continue generating; the cache is kept), :transition 2s "
    "[linear|slerp] (the next prompt blends in over 2 s), :help"
)


# --------------------------------------------------------------------------- events of a live session
@dataclass(frozen=True)
class PromptReceived:
    """A prompt line arrived (``at_s``: wall seconds since the session started)."""

    text: str
    at_s: float


@dataclass(frozen=True)
class PromptSuperseded:
    """A prompt arrived while a newer one was already waiting for the same block; it was not shown."""

    text: str


@dataclass(frozen=True)
class PromptShown:
    """The first frames under the prompt switched to at ``block`` are decoded and written, ``latency_s``
    wall seconds after its line arrived; ``encode_s`` of them went to the text encoder (on its worker thread,
    so it adds to the latency only where the block waited for it)."""

    block: int
    latency_s: float
    encode_s: float


@dataclass(frozen=True)
class StreamBehind:
    """``--realtime``: the stream's buffer ran dry after ``video_s`` seconds of video (generation is slower
    than real time); the stream waits for the next frame."""

    video_s: float


@dataclass(frozen=True)
class StreamClosed:
    """The live stream ended before the session (its consumer went away); the recording goes on."""

    reason: str


@dataclass(frozen=True)
class SessionSummary:
    """The end of a session: prompt-to-frame latency over its switches (None without a switch), generation
    FPS (video frames per wall second), where the session storyboard is, and the memory the text encoder
    kept loaded for the session took (bytes of its weights; 0 when every prompt came from a cache)."""

    switches: int
    latency_median_s: float | None
    latency_max_s: float | None
    generation_fps: float
    session_path: Path | None
    text_encoder_bytes: int


# --------------------------------------------------------------------------- the schedule
@dataclass
class _Prompt:
    text: str
    received: float  # time.monotonic() of the line's arrival
    embedding: Future = field(repr=False, default_factory=Future)
    encode_s: float = 0.0  # wall seconds the text encoder took for it
    transition_s: float = (
        0.0  # `:transition` given before it: seconds of blending in from the previous prompt
    )
    blend: str = "linear"
    transition_blocks: int = 0


class LiveSchedule:
    """Prompts that arrive while generating (see the module docs).

    Args:
        encode: text -> UMT5 embedding ``[1, n, text_dim]`` (run on a worker thread).
        num_blocks: the planned length in blocks.
        stopping: polled while paused; True ends the pause (Ctrl-C).
        geometry: the model's numbers (a transition's seconds -> blocks).

    A prompt given a transition (``:transition 2s`` before its line) blends in from the prompt before it over
    the blocks that start within that time, as a storyboard's ``transition:`` does; a prompt that arrives
    during a transition waits until it has ended (so the session storyboard has the same transitions).
    """

    def __init__(
        self,
        encode: Callable[[str], torch.Tensor],
        num_blocks: int,
        stopping: Callable[[], bool],
        geometry: Geometry = WAN21,
    ):
        self._encode, self.num_blocks, self._stopping = encode, num_blocks, stopping
        self.geometry = geometry
        self.next_transition: tuple[float, str] | None = None  # for the next prompt line (`:transition`)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="longlive-encode")
        self._lock = threading.Condition()
        self._pending: list[_Prompt] = []
        self._segments: list[_Prompt] = []
        self.switch_blocks: list[int] = []  # first block of each segment
        self.side_events: list[Any] = []  # for the session to yield (appended from other threads)
        self.paused = False
        self.finish_requested = False
        self.started = time.monotonic()  # the session's clock starts when prompts can first arrive

    def submit(self, text: str) -> None:
        """A new prompt: start encoding it now; it takes effect at the next block that starts (after the
        transition in progress, if any), with the transition ``:transition`` asked for, if any."""
        prompt = _Prompt(text, time.monotonic())
        if self.next_transition is not None:
            prompt.transition_s, prompt.blend = self.next_transition
            prompt.transition_blocks = transition_blocks(prompt.transition_s, self.geometry)
            self.next_transition = None
        prompt.embedding = self._pool.submit(self._timed_encode, prompt)
        with self._lock:
            if self._pending and self._segments:  # before the first prompt is taken, both wait in line
                self.side_events.append(PromptSuperseded(self._pending[-1].text))
                self._pending = []
            self._pending.append(prompt)
            self._lock.notify_all()

    def _timed_encode(self, prompt: _Prompt) -> torch.Tensor:
        start = time.monotonic()
        embedding = self._encode(prompt.text)
        prompt.encode_s = time.monotonic() - start
        return embedding

    def encode_seconds(self, segment: int) -> float:
        return self._segments[segment].encode_s

    def pause(self, paused: bool) -> None:
        with self._lock:
            self.paused = paused
            self._lock.notify_all()

    def finish(self) -> None:
        """End the session after the block being generated."""
        with self._lock:
            self.finish_requested, self.paused = True, False
            self._lock.notify_all()

    def wait_for_first(self, timeout: float | None = None) -> str | None:
        """Block until the first prompt has arrived (or finish was asked) and make it block 0's; its text, or
        None when the input ended first. Lines after it switch at block 1 or later."""
        with self._lock:
            self._lock.wait_for(lambda: self._pending or self.finish_requested, timeout=timeout)
            if not self._pending:
                return None
            first = self._pending.pop(0)
            if first.transition_blocks:
                log.warning("the first prompt has nothing to blend from: no transition")
                first.transition_s, first.transition_blocks = 0.0, 0
            self._segments.append(first)
            self.switch_blocks.append(0)
            return self._segments[0].text

    # PromptSchedule
    def segment_for_block(self, block: int) -> int:
        with self._lock:
            while self.paused and not self.finish_requested and not self._stopping():
                self._lock.wait(timeout=0.2)
            in_transition = block < self.switch_blocks[-1] + self._segments[-1].transition_blocks
            if self._pending and block > 0 and not in_transition:  # block 0 is the first prompt's
                self._segments.append(self._pending.pop())
                self.switch_blocks.append(block)
            return len(self._segments) - 1

    def transition(self, block: int) -> Transition | None:
        with self._lock:
            segment = len(self._segments) - 1
            prompt, step = self._segments[segment], block - self.switch_blocks[segment]
            if not step < prompt.transition_blocks:
                return None
            t = transition_weight(step, prompt.transition_blocks)
            return Transition(segment - 1, segment, t, prompt.blend, step, prompt.transition_blocks)

    def transition_of(self, segment: int) -> tuple[float, str]:
        """Seconds and blend of the transition into ``segment`` (0 s: a hard switch)."""
        return self._segments[segment].transition_s, self._segments[segment].blend

    def embedding(self, segment: int) -> torch.Tensor:
        return self._segments[segment].embedding.result()

    def text(self, segment: int) -> str:
        return self._segments[segment].text

    def received(self, segment: int) -> float:
        return self._segments[segment].received

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


# --------------------------------------------------------------------------- reading lines
class PromptReader:
    """Reads prompt lines into ``schedule`` on a daemon thread (see the module docs).

    Args:
        schedule: where prompts and commands go.
        source: None for standard input, else a path (FIFO or regular file).
        end_on_eof: standard input's end finishes the session (no ``--duration``); otherwise it only ends
            the reading.
        stdin: the binary stream used for standard input (tests).
        transitions: ``:transition`` is accepted (the model's sampler can blend prompts block by block).
    """

    def __init__(
        self,
        schedule: LiveSchedule,
        *,
        source: Path | None = None,
        end_on_eof: bool = True,
        stdin: IO[bytes] | None = None,
        transitions: bool = True,
    ) -> None:
        import sys

        self.schedule, self.source, self.end_on_eof = schedule, source, end_on_eof
        self.transitions = transitions
        self._stdin = stdin if stdin is not None else sys.stdin.buffer
        self.eof = threading.Event()
        self._thread = threading.Thread(target=self._run, name="longlive-prompts", daemon=True)

    def start(self) -> PromptReader:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            if self.source is None:
                self._read(self._stdin)
                self.eof.set()
                if self.end_on_eof:
                    log.info("end of input: finishing after the current block")
                    self.schedule.finish()
            elif stat.S_ISFIFO(os.stat(self.source).st_mode):
                while not self.schedule.finish_requested:  # a writer comes, writes, goes; wait for the next
                    with open(self.source, "rb") as fifo:
                        self._read(fifo)
            else:
                with open(self.source, "rb") as f:
                    while not self.schedule.finish_requested:  # follow the file as it grows
                        self._read(f)
                        time.sleep(0.1)
        except OSError as err:
            log.error("cannot read prompts from %s: %s", self.source or "standard input", err)

    def _read(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self.handle(raw)
            if self.schedule.finish_requested:
                return

    def handle(self, raw: bytes) -> None:
        """One line: a prompt, a command, or a message for what is wrong with it."""
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as err:
            log.warning(
                "ignored a line that is not UTF-8 (byte 0x%02x at %d); save prompts as UTF-8",
                raw[err.start],
                err.start,
            )
            return
        if not line:
            log.warning("ignored an empty line; type a prompt, or :help")
            return
        if line.startswith(":"):
            self._command(line)
        elif len(line) > MAX_PROMPT_CHARS:
            log.warning(
                "ignored a prompt of %d characters (the limit is %d); shorten it", len(line), MAX_PROMPT_CHARS
            )
        else:
            self.schedule.side_events.append(PromptReceived(line, time.monotonic()))
            self.schedule.submit(line)

    def _command(self, line: str) -> None:
        name = line.split()[0].lower()
        if name == ":quit":
            log.info(":quit: finishing after the current block")
            self.schedule.finish()
        elif name in (":pause", ":resume"):
            log.info("%s", "paused: :resume to go on" if name == ":pause" else "resumed")
            self.schedule.pause(name == ":pause")
        elif name == ":help":
            log.info("%s", HELP)
        elif name == ":transition":
            self._transition(line.split()[1:])
        else:
            log.warning("unknown command %s; %s", name, HELP)

    def _transition(self, args: list[str]) -> None:
        """``:transition 2s [linear|slerp]``: the next prompt line blends in over that time (0 or ``off``:
        a hard switch)."""
        if not self.transitions:
            log.warning(":transition: this model's sampler switches prompts only hard; ignored")
            return
        usage = ":transition TIME [linear|slerp], e.g. :transition 2s (0 or off: a hard switch)"
        if not 1 <= len(args) <= 2 or (len(args) == 2 and args[1].lower() not in BLENDS):
            log.warning("%s", usage)
            return
        try:
            seconds = 0.0 if args[0].lower() == "off" else check_transition(args[0], field=":transition")
        except StoryboardError as err:
            log.warning("%s; %s", err.message, usage)
            return
        blend = args[1].lower() if len(args) == 2 else "linear"
        self.schedule.next_transition = (seconds, blend) if seconds > 0 else None
        if seconds > 0:
            log.info("the next prompt blends in over %gs (%s)", seconds, blend)
        else:
            log.info("the next prompt switches hard")


# --------------------------------------------------------------------------- the session
class LiveSession:
    """One live session: a :class:`~longlive_cli.LongLive` model, a plan for the planned length, a prompt
    source, and where the video goes (a recording, a stream, or both).

    Args:
        ll: the loaded model (:class:`~longlive_cli.api.LongLive`).
        plan: the planned video (size, length, seed); its prompt is the first prompt.
        recording: the MP4 to write (temporary file renamed at the end), or None.
        sinks: more frame consumers (the stream, paced or not).
        session_path: where the session storyboard is kept (rewritten after every switch), or None.
        schedule: the live schedule fed by a :class:`PromptReader`.
    """

    def __init__(
        self,
        ll: Any,
        plan: Plan,
        *,
        recording: Path | None,
        sinks: list[Any],
        session_path: Path | None,
        schedule: LiveSchedule,
    ) -> None:
        self.ll, self.plan, self.recording, self.sinks = ll, plan, recording, sinks
        self.session_path, self.schedule = session_path, schedule
        self.latencies: list[float] = []

    def run(
        self, *, should_stop: Callable[[], bool], keep_partial: bool = True, **stream_kwargs: Any
    ) -> Iterator[Any]:
        """The pipeline's events interleaved with the session's own, ending with :class:`SessionSummary`.

        Raises:
            LongLiveError: as :meth:`LongLive.stream`.
        """
        schedule = self.schedule
        self.save_session()
        last: Event | None = None
        events = self.ll.stream(
            self.plan,
            self.recording,
            seed=self.plan.seed,
            schedule=schedule,
            outputs=self.sinks,
            should_stop=should_stop,
            should_finish=lambda: schedule.finish_requested,
            keep_partial=keep_partial,
            **stream_kwargs,
        )
        switched_at: dict[int, int] = {}  # block -> segment, for the latency of its first frames
        for event in events:
            yield from self._side_events()
            if isinstance(event, PromptSwitched):
                switched_at[event.block] = event.segment
                self.save_session()
            yield event
            if isinstance(event, BlockDone) and event.block in switched_at:
                segment = switched_at.pop(event.block)
                latency = time.monotonic() - schedule.received(segment)
                self.latencies.append(latency)
                yield PromptShown(event.block, latency, schedule.encode_seconds(segment))
            last = event
        yield from self._side_events()
        stopped = None
        if isinstance(last, Finished | Interrupted):
            stopped = last.duration_s if last.num_video_frames < self.plan.num_video_frames else None
        self.save_session(stopped_at_s=stopped)
        yield self.summary(last)

    def _side_events(self) -> Iterator[Any]:
        while self.schedule.side_events:
            event = self.schedule.side_events.pop(0)
            if isinstance(event, PromptReceived):
                event = PromptReceived(event.text, event.at_s - self.schedule.started)
            yield event

    def summary(self, last: Event | None) -> SessionSummary:
        fps = 0.0
        if isinstance(last, Finished):
            fps = last.generation_fps
        elif isinstance(last, Interrupted):
            fps = last.num_video_frames / max(time.monotonic() - self.schedule.started, 1e-9)
        lat = self.latencies
        return SessionSummary(
            switches=len(lat),
            latency_median_s=statistics.median(lat) if lat else None,
            latency_max_s=max(lat) if lat else None,
            generation_fps=fps,
            session_path=self.session_path,
            text_encoder_bytes=self.ll.text_encoder_bytes,
        )

    def save_session(self, *, stopped_at_s: float | None = None) -> None:
        """Write the session storyboard: seed, resolution, planned duration and every prompt at the time
        it took effect (block start: latent frame ``3b`` -> ``at = 3b * 4 / fps``)."""
        if self.session_path is None:
            return
        import yaml

        plan, geometry = self.plan, self.ll.geometry
        prompts = []
        for segment, block in enumerate(self.schedule.switch_blocks):
            at = block * geometry.block_video_frames / geometry.fps
            prompts.append({"at": f"{at:g}s", "text": self.schedule.text(segment)})
            seconds, blend = self.schedule.transition_of(segment)
            if seconds > 0:
                prompts[-1] |= {"transition": f"{seconds:g}s", "blend": blend}
        data = {
            "seed": plan.seed,
            "resolution": f"{plan.width}x{plan.height}",
            "duration": f"{plan.duration_s:g}s",
            "prompts": prompts or [{"at": "0s", "text": plan.segments[0].text}],
        }
        header = "# made by `longlive live`; `longlive generate` of this file makes the same latents\n"
        if stopped_at_s is not None:
            header += (
                f"# the session stopped at {stopped_at_s:.2f} s of the planned {plan.duration_s:g} s: "
                f"the first {stopped_at_s:.2f} s of `longlive generate` are the session\n"
            )
        with contextlib.suppress(OSError), atomic_output(self.session_path) as tmp:
            tmp.write_text(
                header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8"
            )


def check_targets(recording: Path | None, stream: str | None, json_to_stdout: bool) -> None:
    """The outputs a session needs: a recording and/or a stream; JSON on stdout only when stdout is free.

    Raises:
        InputError: neither output, or ``--json`` with ``--stream -``.
    """
    if recording is None and stream is None:
        raise InputError("longlive live needs -o FILE.mp4 (a recording), --stream TARGET, or both")
    if json_to_stdout and stream == "-":
        raise InputError("--json writes to standard output, which --stream - uses; use --events FILE")


@dataclass
class LiveOptions:
    """What ``longlive live`` was asked for (the command-line options, parsed)."""

    recording: Path | None
    stream: str | None = None
    realtime: bool = False
    prompt: str | None = None
    prompts_from: Path | None = None
    duration: str | None = None
    seed: int | None = None
    resolution: str | None = None
    save_session: Path | None = None
    force: bool = False
    rope: str | None = None  # --rope: temporal RoPE in place of the model's


def start_session(
    ll: Any, opts: LiveOptions, *, stopping: Callable[[], bool]
) -> tuple[LiveSession, PromptReader]:
    """Plan the session, check its outputs, start reading prompts and open the stream: everything before the
    first block. Waits for the first prompt when ``--prompt`` is not given.

    Raises:
        InputError: bad options, or the input ended before a first prompt. OutputError: an output exists
        without ``force`` or cannot be written.
    """
    from .api import resolve_seed
    from .plans import plan_storyboard
    from .stream import RealtimePacer, StreamSink
    from .video import check_output

    geometry = ll.geometry
    if opts.recording is not None:
        check_output(opts.recording, overwrite=opts.force)
    session_path = opts.save_session or (opts.recording.with_suffix(".yaml") if opts.recording else None)
    if session_path is not None and session_path.exists() and not opts.force:
        raise InputError(
            f"{session_path} already exists (the session storyboard); use --force or --save-session"
        )
    from .storyboard import parse_resolution

    # The session's encoder is placed and memory-checked at the session's resolution, not the native one.
    size = parse_resolution(opts.resolution, field="--resolution") if opts.resolution else None
    ll.text_encoder(keep=True, resolution=size or geometry.native_resolution)
    schedule = LiveSchedule(ll.encode_prompt, 0, stopping, geometry)
    reader = PromptReader(
        schedule,
        source=opts.prompts_from,
        end_on_eof=opts.duration is None,
        transitions=sampler_info(ll.spec.sampler.name).transitions,
    )
    if opts.prompt is not None:
        reader.handle(opts.prompt.encode())
    reader.start()
    if opts.prompt is None:
        log.info("type the first prompt (%s)", HELP)
    first = schedule.wait_for_first()
    if first is None:
        raise InputError("the input ended before a first prompt; give one with --prompt or on the first line")
    duration = opts.duration if opts.duration is not None else min(geometry.max_duration_s, LIVE_UNBOUNDED_S)
    storyboard = {"duration": duration, "prompts": [{"at": 0, "text": first}]}
    plan = plan_storyboard(
        storyboard, geometry, name="<live session>", seed=resolve_seed(opts.seed), resolution=opts.resolution
    )
    schedule.num_blocks = plan.num_blocks
    sinks: list[Any] = []
    if opts.stream is not None:

        def closed(reason: str) -> None:
            log.warning("%s; the recording goes on", reason)
            schedule.side_events.append(StreamClosed(reason))

        sink: Any = StreamSink(
            opts.stream, fps=plan.fps, width=plan.width, height=plan.height, on_closed=closed
        )
        if opts.realtime:
            sink = RealtimePacer(
                sink, fps=plan.fps, on_behind=lambda s: schedule.side_events.append(StreamBehind(s))
            )
        sinks.append(sink)
    session = LiveSession(
        ll, plan, recording=opts.recording, sinks=sinks, session_path=session_path, schedule=schedule
    )
    return session, reader


def close_session(session: LiveSession) -> None:
    """Flush and close the stream (paced frames go out first) and stop encoding prompts."""
    for sink in session.sinks:
        sink.close()
    session.schedule.close()
