"""``longlive live``: steer a video while it is being made, from prompts typed one per line.

The pieces:

* :class:`PromptReader` reads lines from standard input, or from a path another program writes to (a FIFO,
  reopened whenever its writer closes it, or a regular file followed as it grows). Each line is decoded
  (UTF-8), checked (not empty, at most :data:`~longlive_cli.storyboard.schema.MAX_PROMPT_CHARS` characters)
  and either handed to the schedule as a prompt or run as a command (``:quit``, ``:pause``, ``:resume``,
  ``:transition 2s [linear|slerp]`` for the next prompt, ``:cut``: the next prompt starts a new shot,
  LongLive 2.0 models, ``:help``). A bad line gets one message on standard
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
from typing import IO, TYPE_CHECKING, Any

from .errors import EXIT_SIGINT, InputError, LongLiveError
from .events import (
    BlockDone,
    Event,
    Finished,
    Interrupted,
    PromptReceived,
    PromptShown,
    PromptSuperseded,
    PromptSwitched,
    SessionSummary,
    StreamBehind,
    StreamClosed,
)
from .fileio import atomic_output
from .geometry import WAN21, Geometry
from .schedule import Transition, transition_weight
from .storyboard import Plan, StoryboardError
from .storyboard.schema import BLENDS, MAX_PROMPT_CHARS, check_transition, transition_blocks
from .terminal import printable

if TYPE_CHECKING:  # torch only for annotations: the checks before loading stay light
    import torch

__all__ = [
    "LiveOptions",
    "LiveSchedule",
    "LiveSession",
    "PromptReader",
    "StoppedBeforeFirstPrompt",
    "check_options",
    "close_session",
    "open_prompts",
    "start_session",
]

log = logging.getLogger(__name__)

#: The planned length of a session without ``--duration`` on a relative-RoPE model (whose own bound, 24 h,
#: would lay out a day of noise before the first block): one hour. Absolute RoPE: the model's 240 s.
LIVE_UNBOUNDED_S = 3600.0

HELP = (
    "type a prompt and press Enter to switch to it at the next block; commands: :quit (finish the video "
    "here), :pause / :resume (hold and continue generating; the cache is kept), :transition 2s "
    "[linear|slerp] (the next prompt blends in over 2 s), :cut (the next prompt starts a new shot; "
    "LongLive 2.0 models), :help"
)


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
    cut: bool = False  # `:cut` given before it: it starts a new shot (LongLive 2.0)
    cut_embedding: torch.Tensor | None = field(repr=False, default=None)  # scene-cut prefix + text
    encoding_started: bool = False
    cancelled: bool = False  # passed over by a newer prompt: never shown, not encoded


class LiveSchedule:
    """Prompts that arrive while generating (see the module docs).

    Args:
        encode: text -> UMT5 embedding ``[1, n, text_dim]`` (run on a worker thread); None until the model
            is loaded (:meth:`attach_encoder`): prompts that arrive before wait in line, unencoded.
        num_blocks: the planned length in blocks.
        stopping: polled while paused and while waiting for the first prompt; True ends the wait (Ctrl-C).
        geometry: the model's numbers (a transition's seconds -> blocks).

    A prompt given a cut (``:cut`` before its line) starts a new shot, as a storyboard's ``cut: true`` does:
    :meth:`cut_embedding` answers :func:`~longlive_cli.schedule.shot_cut` with the embedding of
    ``scene_cut_prefix + text`` (encoded with the bare text, on the same worker) for its first block. A cut
    on a prompt passed over by a newer one before its block goes to the newer one.

    A prompt given a transition (``:transition 2s`` before its line) blends in from the prompt before it over
    the blocks that start within that time, as a storyboard's ``transition:`` does; a prompt that arrives
    during a transition waits until it has ended (so the session storyboard has the same transitions).

    Only prompts that can still be shown are encoded: a prompt passed over by a newer one before its block
    has its encoding cancelled (or never started), so a burst of lines costs one encoding, not one each.
    """

    def __init__(
        self,
        encode: Callable[[str], torch.Tensor] | None,
        num_blocks: int,
        stopping: Callable[[], bool],
        geometry: Geometry = WAN21,
    ):
        self._encode, self.num_blocks, self._stopping = encode, num_blocks, stopping
        self.geometry = geometry
        self.next_transition: tuple[float, str] | None = None  # for the next prompt line (`:transition`)
        self.next_cut = False  # the next prompt line starts a new shot (`:cut`)
        self.scene_cut_prefix = ""  # the model's (attach_encoder)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="longlive-encode")
        self._lock = threading.Condition()
        self._pending: list[_Prompt] = []
        self._segments: list[_Prompt] = []
        self.switch_blocks: list[int] = []  # first block of each segment
        self.side_events: list[Any] = []  # for the session to yield (appended from other threads)
        self.paused = False
        self.finish_requested = False
        self.input_ended = False  # the prompt source ended (no more lines can come)
        self.closed = False
        self._block_asked = -1  # the last block the sampler asked about
        self.started = time.monotonic()  # the session's clock starts when prompts can first arrive

    def attach_encoder(self, encode: Callable[[str], torch.Tensor], *, scene_cut_prefix: str = "") -> None:
        """The model is loaded: encode the prompts waiting in line (only those that can be shown).
        ``scene_cut_prefix``: the text before a new shot's first prompt (the model's sampler config)."""
        with self._lock:
            self._encode, self.scene_cut_prefix = encode, scene_cut_prefix
            for prompt in self._pending[:1] + self._pending[1:][-1:]:
                self._start_encoding(prompt)

    def _start_encoding(self, prompt: _Prompt) -> None:
        if self._encode is not None and not self.closed and not prompt.encoding_started:
            prompt.encoding_started = True
            future = self._pool.submit(self._timed_encode, prompt)
            target = prompt.embedding
            future.add_done_callback(lambda done: _chain(done, target))

    def submit(self, text: str, *, transition: tuple[float, str] | None = None, cut: bool = False) -> None:
        """A new prompt: start encoding it now; it takes effect at the next block that starts (after the
        transition in progress, if any). Ignored once the session is over (:meth:`close`).

        Args:
            text: the prompt (checked by the caller).
            transition: ``(seconds, blend)`` it blends in over; None: the one ``:transition`` asked for, if
                any (:attr:`next_transition`, then cleared).
            cut: it starts a new shot; also when ``:cut`` asked for one (:attr:`next_cut`, then cleared).
                Passing both here lets a caller on another thread (``longlive serve``) give a prompt its
                transition and cut in one call, without racing on the ``next_*`` fields.
        """
        prompt = _Prompt(text, time.monotonic())
        with self._lock:
            if transition is None:
                transition, self.next_transition = self.next_transition, None
            if transition is not None:
                prompt.transition_s, prompt.blend = transition
                prompt.transition_blocks = transition_blocks(prompt.transition_s, self.geometry)
            prompt.cut, self.next_cut = cut or self.next_cut, False
            if self.closed:
                log.info("the video is finished: ignored a prompt that came after it")
                return
            # Before the first prompt is taken, the first waits in line with the newest one.
            keep = 0 if self._segments else 1
            if len(self._pending) > keep:
                prompt.cut = prompt.cut or any(p.cut for p in self._pending[keep:])  # the cut carries over
                self._supersede(self._pending[keep:])
                del self._pending[keep:]
            self._pending.append(prompt)
            self._start_encoding(prompt)
            if self._segments and self._in_transition_at(self._next_block()):
                end = self.switch_blocks[-1] + self._segments[-1].transition_blocks
                at = end * self.geometry.block_video_frames / self.geometry.fps
                log.info("the prompt waits for the transition in progress to end (at %.2f s of video)", at)
            self._lock.notify_all()

    def _supersede(self, prompts: list[_Prompt]) -> None:
        """Drop prompts that will never be shown: cancel their encoding, report them as one burst."""
        for old in prompts:
            old.cancelled = True
            old.embedding.cancel()
        last = self.side_events[-1] if self.side_events else None
        count = len(prompts) + (last.count if isinstance(last, PromptSuperseded) else 0)
        if isinstance(last, PromptSuperseded):
            self.side_events.pop()
        self.side_events.append(PromptSuperseded(prompts[-1].text, count))

    def _next_block(self) -> int:
        return self._block_asked + 1

    def _in_transition_at(self, block: int) -> bool:
        return block < self.switch_blocks[-1] + self._segments[-1].transition_blocks

    def _timed_encode(self, prompt: _Prompt) -> torch.Tensor | None:
        if prompt.cancelled:  # passed over while it waited for the worker
            return None
        assert self._encode is not None
        start = time.monotonic()
        if prompt.cut:  # a new shot's first block: the prefixed text (official `scene_cut_prefix`)
            prompt.cut_embedding = self._encode(self.scene_cut_prefix + prompt.text)
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

    def has_prompt(self) -> bool:
        """A prompt is waiting in line or already in force."""
        with self._lock:
            return bool(self._pending or self._segments)

    def end_of_input(self) -> None:
        """The prompt source ended: a wait for a first prompt that has not come ends (no prompt)."""
        with self._lock:
            self.input_ended = True
            self._lock.notify_all()

    def wait_for_first(self, timeout: float | None = None) -> str | None:
        """Block until the first prompt has arrived and make it block 0's; its text, or None when the input
        ended first, finish was asked, ``stopping()`` became true (Ctrl-C, SIGTERM) or ``timeout`` seconds
        passed. Lines after it switch at block 1 or later."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while not self._pending and not (self.finish_requested or self.input_ended or self._stopping()):
                left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
                if left <= 0:
                    break
                self._lock.wait(left)  # short waits: a signal handler's flag is seen within 0.1 s
            if not self._pending or self._stopping():
                return None
            first = self._pending.pop(0)
            if first.transition_blocks:
                log.warning("the first prompt has nothing to blend from: no transition")
                first.transition_s, first.transition_blocks = 0.0, 0
            if first.cut:
                log.warning("the first prompt starts the first shot already: no cut")
                first.cut = False
            self._start_encoding(first)
            self._segments.append(first)
            self.switch_blocks.append(0)
            return self._segments[0].text

    # PromptSchedule
    def segment_for_block(self, block: int) -> int:
        with self._lock:
            self._block_asked = block
            while self.paused and not self.finish_requested and not self._stopping():
                self._lock.wait(timeout=0.2)
            if self._pending and block > 0 and not self._in_transition_at(block):  # block 0: the first's
                if len(self._pending) > 1:
                    self._supersede(self._pending[:-1])
                self._segments.append(self._pending[-1])
                self._pending = []
                self._start_encoding(self._segments[-1])
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
        embedding = self._segments[segment].embedding.result()
        assert embedding is not None  # a prompt in force is never cancelled
        return embedding

    def cut_embedding(self, segment: int) -> torch.Tensor | None:
        """For a segment that starts a new shot (``:cut``), the embedding ``[1, n, text_dim]`` of
        ``scene_cut_prefix + text`` (its first block's); None for any other segment
        (:func:`~longlive_cli.schedule.shot_cut`)."""
        if not self.is_cut(segment):
            return None
        self.embedding(segment)  # both encodings are done when the prompt's future is
        prompt = self._segments[segment]
        if prompt.cut_embedding is None:  # its encoding ran before the cut was known
            assert self._encode is not None
            prompt.cut_embedding = self._encode(self.scene_cut_prefix + prompt.text)
        return prompt.cut_embedding

    def is_cut(self, segment: int) -> bool:
        """Segment ``segment`` starts a new shot (``:cut`` before its line)."""
        return self._segments[segment].cut

    def text(self, segment: int) -> str:
        return self._segments[segment].text

    def received(self, segment: int) -> float:
        return self._segments[segment].received

    def close(self) -> None:
        """The session is over: later prompts are ignored, queued encodings cancelled."""
        with self._lock:
            self.closed = True
            for prompt in self._pending:
                prompt.cancelled = True
            self._lock.notify_all()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _chain(source: Future, target: Future) -> None:
    """Copy a finished encoding into the prompt's own future (which exists before encoding starts)."""
    if target.done():
        return
    if source.cancelled():
        target.cancel()
    elif source.exception() is not None:
        target.set_exception(source.exception())
    else:
        target.set_result(source.result())


# --------------------------------------------------------------------------- reading lines
#: Bytes kept of one line while waiting for its newline; the rest of a longer line is dropped (the line is
#: refused as too long anyway: :data:`MAX_PROMPT_CHARS` characters are at most four times as many bytes).
MAX_LINE_BYTES = 4 * MAX_PROMPT_CHARS + 64
#: How often the reader looks at its stop flag while no input comes (seconds).
POLL_S = 0.1


class PromptReader:
    """Reads prompt lines into ``schedule`` on a thread that can be stopped (see the module docs).

    The reader never blocks in a read: it waits on the raw file descriptor with ``select`` (at most
    :data:`POLL_S` at a time, then looks at its stop flag) and reads what is there with ``os.read``; bytes are
    kept until their newline, so a line written in two pieces is one prompt. A FIFO is opened without
    blocking and with a write end of our own, so writers can come and go; a regular file is followed as it
    grows from its end (``from_start``: from its first line), as ``tail -f`` does. :meth:`stop` ends the
    thread within :data:`POLL_S` seconds.

    Args:
        schedule: where prompts and commands go.
        source: None for standard input, else a path (FIFO or regular file).
        end_on_eof: standard input's end finishes the session (no ``--duration``); otherwise it only ends
            the reading.
        stdin: the binary stream used for standard input (tests); read through its file descriptor.
        transitions: ``:transition`` is accepted (the model's sampler can blend prompts block by block).
        shots: ``:cut`` is accepted (the model's sampler declares shots: LongLive 2.0).
        from_start: a regular ``source`` is read from its first line (else only lines added after start).
    """

    def __init__(
        self,
        schedule: LiveSchedule,
        *,
        source: Path | None = None,
        end_on_eof: bool = True,
        stdin: IO[bytes] | None = None,
        transitions: bool = True,
        from_start: bool = False,
        shots: bool = False,
    ) -> None:
        import sys

        self.schedule, self.source, self.end_on_eof = schedule, source, end_on_eof
        self.transitions, self.from_start, self.shots = transitions, from_start, shots
        self._stdin = stdin if stdin is not None else sys.stdin.buffer
        self.eof = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="longlive-prompts", daemon=True)

    def start(self) -> PromptReader:
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop reading and wait (at most ``timeout`` seconds) for the thread to end."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _done(self) -> bool:
        return self._stop.is_set() or self.schedule.finish_requested or self.schedule.closed

    def _run(self) -> None:
        fd, own = -1, False
        try:
            if self.source is None:
                fd = self._stdin.fileno()
                ended = self._pump(fd, follow=False)
                if ended:
                    self.eof.set()
                    if self.end_on_eof and not self._done():
                        if self.schedule.has_prompt():  # else: no first prompt, an error said by the caller
                            log.info("end of input: finishing after the current block")
                        self.schedule.finish()
            elif stat.S_ISFIFO(os.stat(self.source).st_mode):
                # Our own write end: the FIFO never reports EOF, so writers can come and go.
                fd, own = os.open(self.source, os.O_RDWR | os.O_NONBLOCK), True
                self._pump(fd, follow=False)
            else:
                fd, own = os.open(self.source, os.O_RDONLY), True
                if not self.from_start:
                    os.lseek(fd, 0, os.SEEK_END)
                self._pump(fd, follow=True)
        except OSError as err:
            log.error("cannot read prompts from %s: %s", self.source or "standard input", err.strerror or err)
        except Exception as err:  # never a thread traceback on the user's terminal
            log.error("stopped reading prompts from %s: %s", self.source or "standard input", err)
        finally:
            if own:
                os.close(fd)
            self.schedule.end_of_input()

    def _pump(self, fd: int, *, follow: bool) -> bool:
        """Read lines from ``fd`` until stopped; True when the input ended (never when ``follow``)."""
        import select

        pending = b""
        dropping = False  # inside a line longer than MAX_LINE_BYTES
        while not self._done():
            if not follow:
                ready, _, _ = select.select([fd], [], [], POLL_S)
                if not ready:
                    continue
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                if not follow:
                    if pending and not dropping:
                        self.handle(pending)  # a last line without its newline
                    return True
                time.sleep(POLL_S)
                continue
            *lines, rest = (pending + chunk).split(b"\n")
            for line in lines:
                if dropping:
                    dropping = False
                    log.warning(
                        "ignored a line of over %d bytes (a prompt has at most %d characters); shorten it",
                        MAX_LINE_BYTES,
                        MAX_PROMPT_CHARS,
                    )
                else:
                    self.handle(line)
                if self._done():
                    return False
            pending = rest
            if len(pending) > MAX_LINE_BYTES:
                pending, dropping = b"", True
        return False

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
            if self.schedule.paused:  # no block runs, so no event would echo it before :resume
                log.info("received while paused (it shows after :resume): %s", printable(line))
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
        elif name == ":cut":
            self._cut(line.split()[1:])
        else:
            log.warning("unknown command %s; %s", name, HELP)

    def _cut(self, args: list[str]) -> None:
        """``:cut``: the next prompt line starts a new shot (a storyboard's ``cut: true``)."""
        if not self.shots:
            from .models.spec import models_declaring

            log.warning(
                ":cut: this model has no shots; a new shot needs a LongLive 2.0 model (%s); ignored",
                models_declaring("shots"),
            )
        elif args:
            log.warning(":cut takes nothing after it; type :cut, then the new shot's prompt")
        else:
            self.schedule.next_cut = True
            log.info("the next prompt starts a new shot")

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
        geometry, planned = self.schedule.geometry, self.schedule.num_blocks
        if planned and transition_blocks(seconds, geometry) > planned:
            length = planned * geometry.block_video_frames / geometry.fps
            log.warning(
                ":transition %gs is longer than the session (%.2f s of video); give at most that",
                seconds,
                length,
            )
            return
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
        self.reader: PromptReader | None = None
        self.session_saved = False  # the session storyboard's last write succeeded

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
        """What happened since the last pipeline event; the prompts passed over in that time are one
        :class:`PromptSuperseded` (a burst of lines gives one message, not one each)."""
        batch = []
        while self.schedule.side_events:
            batch.append(self.schedule.side_events.pop(0))
        superseded = [e for e in batch if isinstance(e, PromptSuperseded)]
        for event in batch:
            if isinstance(event, PromptSuperseded):
                if event is not superseded[-1]:
                    continue
                event = PromptSuperseded(event.text, sum(e.count for e in superseded))
            elif isinstance(event, PromptReceived):
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
            session_path=self.session_path if self.session_saved else None,
            text_encoder_bytes=self.ll.text_encoder_bytes,
        )

    def save_session(self, *, stopped_at_s: float | None = None) -> None:
        """Write the session storyboard: seed, resolution, planned duration, the ``--image`` (absolute path)
        and every prompt at the time it took effect (block start: ``at = b * block_video_frames / fps``),
        with its transition and its ``cut: true``."""
        if self.session_path is None:
            return
        import yaml

        plan, geometry = self.plan, self.ll.geometry
        prompts: list[dict[str, Any]] = []
        for segment, block in enumerate(self.schedule.switch_blocks):
            at = block * geometry.block_video_frames / geometry.fps
            prompts.append({"at": f"{at:g}s", "text": self.schedule.text(segment)})
            seconds, blend = self.schedule.transition_of(segment)
            if seconds > 0:
                prompts[-1] |= {"transition": f"{seconds:g}s", "blend": blend}
            if self.schedule.is_cut(segment):
                prompts[-1]["cut"] = True
        data: dict[str, Any] = {
            "seed": plan.seed,
            "resolution": f"{plan.width}x{plan.height}",
            "duration": f"{plan.duration_s:g}s",
        }
        if plan.image is not None:  # absolute: the storyboard's own folder is not the session's
            data["image"] = str(Path(plan.image).absolute())
        data["prompts"] = prompts or [{"at": "0s", "text": plan.segments[0].text}]
        header = "# made by `longlive live`; `longlive generate` of this file makes the same latents\n"
        if stopped_at_s is not None:
            header += (
                f"# the session stopped at {stopped_at_s:.2f} s of the planned {plan.duration_s:g} s: "
                f"the first {stopped_at_s:.2f} s of `longlive generate` are the session\n"
            )
        try:
            with atomic_output(self.session_path) as tmp:
                tmp.write_text(
                    header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8"
                )
            self.session_saved = True
        except OSError as err:  # the video goes on; the summary does not name a file that is not there
            log.warning("cannot write the session storyboard %s: %s", self.session_path, err.strerror or err)
            self.session_saved = False


def check_targets(recording: Path | None, stream: str | None, json_to_stdout: bool) -> None:
    """The outputs a session needs: a recording and/or a stream; JSON on stdout only when stdout is free.

    Raises:
        InputError: neither output, or ``--json`` with ``--stream -``.
    """
    if recording is None and stream is None:
        raise InputError("longlive live needs -o FILE.mp4 (a recording), --stream TARGET, or both")
    if json_to_stdout and stream == "-":
        raise InputError("--json writes to standard output, which --stream - uses; use --events FILE")


class StoppedBeforeFirstPrompt(LongLiveError):
    """Ctrl-C or SIGTERM came before a first prompt: nothing was made (the command exits 130 or 143)."""

    exit_code = EXIT_SIGINT


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
    from_start: bool = False  # --from-start: a regular --prompts-from file is read from its first line
    image: str | None = None  # --image: a PNG/JPEG that starts the video (image-to-video, LongLive 2.0)

    @property
    def session_path(self) -> Path | None:
        """Where the session storyboard goes: ``--save-session``, else the recording's name with ``.yaml``."""
        return self.save_session or (self.recording.with_suffix(".yaml") if self.recording else None)

    @property
    def stream_path(self) -> Path | None:
        """The ``--stream`` target when it is a file (not ``-`` nor a URL)."""
        if self.stream is None or self.stream == "-" or "://" in self.stream:
            return None
        return Path(self.stream)


def _same_file(a: Path, b: Path) -> bool:
    a, b = a.expanduser().absolute(), b.expanduser().absolute()
    if a == b:
        return True
    with contextlib.suppress(OSError):
        return a.exists() and b.exists() and os.path.samefile(a, b)
    return False


def check_options(
    opts: LiveOptions,
    geometry: Geometry,
    *,
    json_to_stdout: bool = False,
    outputs: dict[str, Path | None] | None = None,
) -> None:
    """Check everything about a session that can be checked before loading a model: its outputs (each new,
    or ``force``; each in a writable folder; no two the same; none of them the prompt source), the prompt
    source (an existing FIFO or file), ``--resolution``, ``--duration`` and ``--image`` (read and checked as
    :func:`longlive_cli.images.load_image` does when the video starts). Nothing is created.

    Args:
        opts: the session's options.
        geometry: the model's numbers (from its spec: nothing loaded).
        json_to_stdout: ``--json`` (stdout is taken).
        outputs: more files the command writes, by option name (``--events``, ``--save-latents``).

    Raises:
        InputError: a bad option value, a missing or unusable ``--prompts-from``, two outputs on one path,
            an ``--image`` that is not a readable PNG/JPEG.
        OutputError: an output exists without ``force``, or its folder is missing or not writable.
    """
    from .video import check_output

    check_targets(opts.recording, opts.stream, json_to_stdout)
    files = {"-o": opts.recording, "--stream": opts.stream_path, "session storyboard": opts.session_path}
    files |= outputs or {}
    named = [(name, path) for name, path in files.items() if path is not None]
    for i, (name, path) in enumerate(named):
        for other, earlier in named[:i]:
            if _same_file(path, earlier):
                raise InputError(f"{name} and {other} are the same file ({path}); give each its own path")
        if opts.prompts_from is not None and _same_file(path, opts.prompts_from):
            raise InputError(
                f"{name} {path} is the --prompts-from input; an output must not replace an input"
            )
        check_output(path, overwrite=opts.force)
    check_prompt_source(opts.prompts_from)
    plan = _plan(opts, geometry, "-", seed=0)
    if plan.image is not None:  # a bad image is known before anything is loaded
        from .images import load_image

        load_image(plan.image, plan.width, plan.height)


def _plan(opts: LiveOptions, geometry: Geometry, first: str, *, seed: int) -> Plan:
    """The session's plan: ``first`` at 0 s for the planned length (``--duration``, else
    :func:`live_duration`) at ``--resolution``, from ``--image`` if given.

    Raises:
        StoryboardError: a bad ``--duration``, ``--resolution`` or ``--image`` path (named as the option).
    """
    from .plans import plan_storyboard

    storyboard = {"duration": live_duration(geometry), "prompts": [{"at": 0, "text": first}]}
    return plan_storyboard(
        storyboard,
        geometry,
        name="<live session>",
        seed=seed,
        resolution=opts.resolution,
        duration=opts.duration,
        image=opts.image,
    )


def live_duration(geometry: Geometry) -> float:
    """A session's planned length without ``--duration`` (seconds): the model's longest, at most
    :data:`LIVE_UNBOUNDED_S`."""
    return min(geometry.max_duration_s, LIVE_UNBOUNDED_S)


def check_prompt_source(path: Path | None) -> None:
    """``--prompts-from`` must be a FIFO or a regular file that exists (never opened here: a FIFO would
    block until a writer comes).

    Raises:
        InputError: it is missing, a folder or another kind of file.
    """
    if path is None:
        return
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(
            f"--prompts-from {path}: no such file or FIFO; create it first (mkfifo {path}, or touch {path})"
        ) from None
    except OSError as err:
        raise InputError(f"--prompts-from {path}: cannot be read ({err.strerror})") from None
    if stat.S_ISDIR(mode):
        raise InputError(
            f"--prompts-from {path} is a folder; give a FIFO or a file that prompts are added to"
        )
    if not (stat.S_ISFIFO(mode) or stat.S_ISREG(mode)):
        raise InputError(f"--prompts-from {path} is not a FIFO nor a regular file; give one of those")
    if not os.access(path, os.R_OK):
        raise InputError(f"--prompts-from {path} is not readable; fix its permissions")


def open_prompts(
    opts: LiveOptions,
    geometry: Geometry,
    *,
    stopping: Callable[[], bool],
    transitions: bool = True,
    shots: bool = False,
) -> PromptReader:
    """Start reading prompts (``--prompt`` first, then standard input or ``--prompts-from``) before the model
    is loaded: lines typed while it loads wait in line, and the end of the input is seen at once. The
    schedule gets its encoder in :func:`start_session`. ``transitions`` / ``shots``: ``:transition`` /
    ``:cut`` are accepted (what the model's sampler declares, :func:`longlive_cli.registry.sampler_info`).

    Raises:
        InputError: ``--prompts-from`` is unusable (:func:`check_prompt_source`).
    """
    check_prompt_source(opts.prompts_from)
    # The planned length is known before the first prompt: `:transition` is bounded by it from the start.
    schedule = LiveSchedule(None, _plan(opts, geometry, "-", seed=0).num_blocks, stopping, geometry)
    reader = PromptReader(
        schedule,
        source=opts.prompts_from,
        end_on_eof=opts.duration is None,
        transitions=transitions,
        from_start=opts.from_start,
        shots=shots,
    )
    if opts.prompt is not None:
        reader.handle(opts.prompt.encode())
    return reader.start()


NO_FIRST_PROMPT = "the input ended before a first prompt; give one with --prompt or on the first line"


def start_session(
    ll: Any, opts: LiveOptions, *, stopping: Callable[[], bool], reader: PromptReader | None = None
) -> tuple[LiveSession, PromptReader]:
    """Plan the session, check its outputs, start reading prompts (unless ``reader``, from
    :func:`open_prompts`, already does) and open the stream: everything before the first block. Waits for the
    first prompt when ``--prompt`` is not given; ``stopping()`` (Ctrl-C, SIGTERM) ends that wait.

    Raises:
        InputError: bad options, or the input ended before a first prompt. OutputError: an output exists
        without ``force`` or cannot be written. StoppedBeforeFirstPrompt: ``stopping()`` became true first.
    """
    from .api import resolve_seed
    from .storyboard import parse_resolution
    from .stream import RealtimePacer, StreamSink

    geometry = ll.geometry
    check_options(opts, geometry)
    # The session's encoder is placed and memory-checked at the session's resolution, not the native one.
    size = parse_resolution(opts.resolution, field="--resolution") if opts.resolution else None
    ll.text_encoder(keep=True, resolution=size or geometry.native_resolution)
    if reader is None:
        from .registry import sampler_info

        info = sampler_info(ll.spec.sampler.name)
        reader = open_prompts(
            opts, geometry, stopping=stopping, transitions=info.transitions, shots=info.shots
        )
    schedule = reader.schedule
    schedule.attach_encoder(ll.encode_prompt, scene_cut_prefix=ll.spec.sampler.scene_cut_prefix)
    if opts.prompt is None and not schedule.has_prompt():
        log.info("type the first prompt (%s)", HELP)
    first = schedule.wait_for_first()
    if first is None:
        reader.stop()
        if stopping():
            raise StoppedBeforeFirstPrompt("stopped before a first prompt came: nothing was made")
        raise InputError(NO_FIRST_PROMPT)
    plan = _plan(opts, geometry, first, seed=resolve_seed(opts.seed))
    schedule.num_blocks = plan.num_blocks
    sinks: list[Any] = []
    if opts.stream is not None:

        def closed(reason: str) -> None:
            if opts.recording is not None:
                log.warning("%s; the recording goes on", reason)
            else:  # nothing else to make: end the session
                log.warning("%s; nothing is recorded (no -o): finishing", reason)
                schedule.finish()
            schedule.side_events.append(StreamClosed(reason))

        stream = StreamSink(opts.stream, fps=plan.fps, width=plan.width, height=plan.height, on_closed=closed)
        sink: Any = stream
        if opts.realtime:

            def behind(video_s: float) -> None:
                if stream.alive:  # no "behind" for a stream that has ended
                    schedule.side_events.append(StreamBehind(video_s))

            sink = RealtimePacer(stream, fps=plan.fps, on_behind=behind)
        sinks.append(sink)
    session = LiveSession(
        ll, plan, recording=opts.recording, sinks=sinks, session_path=opts.session_path, schedule=schedule
    )
    session.reader = reader
    return session, reader


def close_session(session: LiveSession) -> None:
    """Stop reading prompts (the reader thread ends within a moment), flush and close the stream (paced frames
    go out first) and stop encoding prompts."""
    session.schedule.close()
    if session.reader is not None:
        session.reader.stop()
    for sink in session.sinks:
        sink.close()
