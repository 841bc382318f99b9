"""Live output: frames to a player as they are made (MPEG-TS on standard output, a URL, or a ``.ts`` file),
optionally paced at the video's frame rate.

:class:`StreamSink` pipes raw frames to imageio-ffmpeg's ffmpeg, which encodes H.264 (``zerolatency``, a
keyframe every second so a player can join) into MPEG-TS (FLV for ``rtmp://``). A consumer that goes away
(``ffplay`` closed: ffmpeg gets EPIPE and exits) ends the stream, never the caller: :meth:`StreamSink.write`
then does nothing, and ``on_closed`` is told once. :class:`RealtimePacer` sits in front of a sink and lets
frames leave at ``fps`` from a bounded buffer: ahead of real time the producer waits for room; behind it the
buffer runs dry, ``on_behind`` is told, and the stream resumes with the next frame (nothing is dropped).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from typing import IO, Any

import numpy as np

from .errors import OutputError
from .video import h264_command

__all__ = ["RealtimePacer", "StreamSink"]

log = logging.getLogger(__name__)


def _format_for(target: str) -> str:
    return "flv" if target.startswith("rtmp://") else "mpegts"


class StreamSink:
    """Encodes frames to ``target`` as they come: ``-`` (MPEG-TS on standard output), ``udp://``, ``srt://``,
    ``rtmp://`` (FLV) or any URL the bundled ffmpeg can push, or a ``.ts`` path (overwritten).

    Args:
        target: where the stream goes.
        fps: frames per second; width, height: pixels (even).
        on_closed: called once, with the reason, when the stream ends before :meth:`close` (consumer gone,
            ffmpeg failed).

    Raises:
        OutputError: ffmpeg cannot be started.
    """

    def __init__(
        self,
        target: str,
        *,
        fps: float,
        width: int,
        height: int,
        on_closed: Callable[[str], None] | None = None,
    ) -> None:
        self.target, self.width, self.height = target, width, height
        self.on_closed = on_closed
        self.alive = True
        self.error: str | None = None  # why the stream ended early, if it did
        gop = max(1, round(fps))
        cmd = h264_command(
            width=width,
            height=height,
            fps=fps,
            encoder=["-preset", "veryfast", "-tune", "zerolatency", "-g", str(gop)],
            output=["-f", _format_for(target), "-y", "pipe:1" if target == "-" else target],
        )
        try:
            # stdout is inherited: with "-" ffmpeg writes the stream to our standard output itself.
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
            )
        except OSError as err:
            raise OutputError(f"cannot start ffmpeg for the stream {target}: {err}") from err
        assert self._proc.stdin is not None and self._proc.stderr is not None
        self._stdin: IO[bytes] = self._proc.stdin
        self._stderr: IO[bytes] = self._proc.stderr

    def write(self, frames: Any) -> None:
        """Send uint8 ``[T, H, W, 3]`` frames (numpy or torch); nothing once the stream has ended."""
        if not self.alive:
            return
        if hasattr(frames, "detach"):
            frames = frames.detach().cpu().numpy()
        data = np.ascontiguousarray(frames, dtype=np.uint8)
        try:
            self._stdin.write(memoryview(data).cast("B"))  # type: ignore[arg-type]
            self._stdin.flush()
        except (BrokenPipeError, ValueError, OSError) as err:
            self._ended(err)

    def _ended(self, err: BaseException) -> None:
        self.alive = False
        with contextlib.suppress(OSError):
            self._stdin.close()
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self.error = reason = self._reason(self.ffmpeg_error(), type(err).__name__)
        if self.on_closed is not None:
            self.on_closed(reason)

    def _reason(self, said: str, what: str) -> str:
        if not said or "Broken pipe" in said:
            return f"the stream {self.target} stopped ({what}: the consumer went away)"
        return f"the stream {self.target} failed: ffmpeg: {said}"  # a bad target: ffmpeg's own words

    def ffmpeg_error(self) -> str:
        """The last lines ffmpeg wrote on its standard error once it has exited (empty while it runs, or when
        it said nothing)."""
        if self._proc.poll() is None:
            return ""
        with contextlib.suppress(OSError, ValueError):
            text = self._stderr.read().decode("utf-8", "replace").strip()
            return " / ".join(text.splitlines()[-3:])
        return ""

    def close(self) -> None:
        """Flush and end the stream (waits for ffmpeg, at most 30 s). A failure of ffmpeg found here (it could
        not write the target) is told to ``on_closed`` as any early end.

        Raises:
            OutputError: ffmpeg did not end within 30 s (it is killed).
        """
        if not self.alive:
            return
        self.alive = False
        with contextlib.suppress(OSError, ValueError):
            self._stdin.close()
        try:
            code = self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            raise OutputError(
                f"the stream {self.target}: ffmpeg did not finish within 30 s; killed"
            ) from None
        if code != 0:
            self.error = self._reason(self.ffmpeg_error(), f"ffmpeg exit status {code}")
            if self.on_closed is not None:
                self.on_closed(self.error)


class RealtimePacer:
    """Lets frames through to ``inner`` at ``fps``, one by one, from a buffer of ``buffer_s`` seconds.

    :meth:`write` blocks while the buffer is full (generation ahead of real time waits); when a frame is due
    and the buffer is empty, ``on_behind(seconds of video sent so far)`` is called once for that underrun
    and the clock restarts with the next frame; never once ``inner`` has ended (its ``alive`` is false: a
    dead stream is not behind). :meth:`close` sends what is buffered, at pace, then stops.
    """

    def __init__(
        self,
        inner: Any,
        *,
        fps: float,
        buffer_s: float = 2.0,
        on_behind: Callable[[float], None] | None = None,
    ) -> None:
        self.inner, self.fps, self.on_behind = inner, fps, on_behind
        self.frames_sent = 0
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=max(1, round(fps * buffer_s)))
        self._thread = threading.Thread(target=self._run, name="longlive-realtime", daemon=True)
        self._thread.start()

    def write(self, frames: Any) -> None:
        """Queue uint8 ``[T, H, W, 3]`` frames; blocks while the buffer is full."""
        if hasattr(frames, "detach"):
            frames = frames.detach().cpu().numpy()
        for frame in np.asarray(frames):
            self._queue.put(frame)

    def _run(self) -> None:
        period = 1.0 / self.fps
        due: float | None = None
        while True:
            try:
                frame = self._queue.get(timeout=max(0.0, due - time.monotonic()) if due is not None else None)
            except queue.Empty:
                if self.on_behind is not None and getattr(self.inner, "alive", True):
                    self.on_behind(self.frames_sent / self.fps)
                frame = self._queue.get()
                due = None  # restart the clock: no burst to catch up
            if frame is None:
                return
            now = time.monotonic()
            if due is not None and now < due:
                time.sleep(due - now)
            self.inner.write(frame[None])
            self.frames_sent += 1
            due = (due if due is not None else time.monotonic()) + period

    def close(self) -> None:
        """Send the buffered frames (at pace), stop the pacing thread and close ``inner``."""
        self._queue.put(None)
        self._thread.join()
        self.inner.close()
