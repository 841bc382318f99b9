"""The live video of ``longlive serve``: frames -> fragmented MP4 -> every viewer of ``WS /api/video``.

:class:`LiveVideo` is a :class:`~longlive_cli.pipeline.VideoOutput`: the session's frames (uint8
``[T, H, W, 3]``) go, paced to real time by :class:`~longlive_cli.stream.RealtimePacer` (``ahead_s`` of video
at most ahead of what was sent; 0: no pacing), to imageio-ffmpeg's ffmpeg, which encodes H.264 baseline
(``-tune zerolatency``, a keyframe at least every block) into fragmented MP4 of one frame per fragment
(``-movflags empty_moov+default_base_moof+frag_keyframe -frag_duration 1 -flush_packets 1``). A reader thread
splits ffmpeg's output into ISO BMFF boxes (:func:`read_box`, ISO/IEC 14496-12 section 4.2: a 32-bit size
and a type, size 1 meaning a 64-bit ``largesize``), keeps the init segment (``ftyp`` + ``moov``) for viewers
who join late, appends everything to the session's ``live.mp4`` and hands each fragment (``moof`` + ``mdat``)
to :class:`VideoHub`, which fans it out to per-viewer bounded queues: a viewer whose queue is full loses its
queued fragments and then everything up to the next keyframe fragment (never a broken stream); generation
never waits for a viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import struct
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "InitSegment",
    "LiveVideo",
    "Mailbox",
    "VideoHub",
    "Viewer",
    "codec_string",
    "is_keyframe_fragment",
    "read_box",
]

log = logging.getLogger(__name__)

#: A box larger than this in ffmpeg's output is a fault (one fragment is one frame: kilobytes).
MAX_BOX_BYTES = 256 * 2**20
#: Bytes of fragments queued for one viewer before it starts losing them (a slow or stalled viewer).
VIEWER_QUEUE_BYTES = 4 * 2**20
#: Fragments queued for one viewer at most (whatever their size).
VIEWER_QUEUE_FRAGMENTS = 256
#: libx264 for the page: H.264 baseline (every browser's Media Source Extensions), no frame held back.
X264_LIVE = ("-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "baseline")
#: Fragmented MP4, one frame per fragment (a fragment is cut when the next frame arrives), flushed at once.
FRAGMENTED_MP4 = (
    *("-f", "mp4", "-movflags", "empty_moov+default_base_moof+frag_keyframe"),
    *("-frag_duration", "1", "-flush_packets", "1"),
)
_NON_SYNC = 0x00010000  # sample_is_non_sync_sample (ISO/IEC 14496-12 8.8.3.1, sample flags)


# --------------------------------------------------------------------------- ISO BMFF boxes
def read_box(stream: IO[bytes]) -> tuple[bytes, bytes] | None:
    """One whole box from ``stream``: ``(type, the box's bytes, header included)``; None at the end.

    Raises:
        ValueError: a box cut short, a size below its header, a size-0 box (to the end of file: not in a
            fragmented stream) or one over :data:`MAX_BOX_BYTES`.
    """
    header = _read_exactly(stream, 8)
    if header is None:
        return None
    size, kind = struct.unpack(">I4s", header)
    if size == 1:
        large = _read_exactly(stream, 8)
        if large is None:
            raise ValueError("a box cut short in its largesize")
        header += large
        size = struct.unpack(">Q", large)[0]
    if size == 0 or size < len(header) or size > MAX_BOX_BYTES:
        raise ValueError(f"box {kind!r} of {size} bytes: not a box of a fragmented MP4 stream")
    body = _read_exactly(stream, size - len(header))
    if body is None:
        raise ValueError(f"box {kind!r} cut short")
    return kind, header + body


def _read_exactly(stream: IO[bytes], n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            if data:
                raise ValueError("the stream ended inside a box")
            return None
        data += chunk
    return data


def _children(data: bytes, start: int = 8) -> dict[bytes, list[bytes]]:
    """The child boxes of a container box's bytes ``data`` (header of ``start`` bytes), by type."""
    out: dict[bytes, list[bytes]] = {}
    stream = io.BytesIO(data[start:])
    with contextlib.suppress(ValueError):
        while (box := read_box(stream)) is not None:
            out.setdefault(box[0], []).append(box[1])
    return out


def _trex_flags(init: bytes) -> int:
    """``default_sample_flags`` of the first track's ``trex`` (moov/mvex/trex), 0 when absent."""
    moov = _children(init, 0).get(b"moov", [b""])[0]
    mvex = _children(moov).get(b"mvex", [b""])[0]
    trex = _children(mvex).get(b"trex", [b""])[0]
    return struct.unpack(">I", trex[28:32])[0] if len(trex) >= 32 else 0


def is_keyframe_fragment(moof: bytes, default_flags: int = 0) -> bool:
    """Does the fragment whose ``moof`` box is ``moof`` start with a sync sample (a keyframe)?

    The first sample's flags are, in order: the ``trun``'s ``first_sample_flags`` (flag 0x4), its first
    per-sample flags (0x400), the ``tfhd``'s ``default_sample_flags`` (0x20), else ``default_flags`` (the
    ``trex``'s) -- ISO/IEC 14496-12 8.8.7 and 8.8.8.
    """
    traf = _children(moof).get(b"traf", [b""])[0]
    boxes = _children(traf)
    flags = default_flags
    tfhd = boxes.get(b"tfhd", [b""])[0]
    if len(tfhd) >= 16:
        tf_flags = struct.unpack(">I", tfhd[8:12])[0] & 0xFFFFFF
        offset = 16 + (8 if tf_flags & 0x1 else 0) + (4 if tf_flags & 0x2 else 0)
        offset += (4 if tf_flags & 0x8 else 0) + (4 if tf_flags & 0x10 else 0)
        if tf_flags & 0x20 and len(tfhd) >= offset + 4:
            flags = struct.unpack(">I", tfhd[offset : offset + 4])[0]
    trun = boxes.get(b"trun", [b""])[0]
    if len(trun) >= 16:
        tr_flags = struct.unpack(">I", trun[8:12])[0] & 0xFFFFFF
        offset = 16 + (4 if tr_flags & 0x1 else 0)
        if tr_flags & 0x4:
            flags = struct.unpack(">I", trun[offset : offset + 4])[0]
        elif tr_flags & 0x400:
            offset += (4 if tr_flags & 0x100 else 0) + (4 if tr_flags & 0x200 else 0)
            flags = struct.unpack(">I", trun[offset : offset + 4])[0]
    return not flags & _NON_SYNC


def codec_string(init: bytes) -> str:
    """The RFC 6381 codecs value of the H.264 track in ``init``: ``avc1.PPCCLL`` from its ``avcC``
    (profile, constraint flags, level; ISO/IEC 14496-15 5.3.3.1)."""
    at = init.find(b"avcC")
    if at < 0 or len(init) < at + 8:
        return "avc1.42E01E"
    profile, compat, level = init[at + 5], init[at + 6], init[at + 7]
    return f"avc1.{profile:02X}{compat:02X}{level:02X}"


# --------------------------------------------------------------------------- viewers
class InitSegment(bytes):
    """An init segment (``ftyp`` + ``moov``) in a viewer's queue: sent alone, never dropped."""


class Mailbox:
    """Messages for one WebSocket client, filled from any thread (:meth:`put`), read on the event loop
    (:meth:`get`); at most ``limit`` kept (the oldest go first). :meth:`close` ends :meth:`get`. The loop is
    woken once per batch of messages, not once per message."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int = 512) -> None:
        self._loop = loop
        self._ready = asyncio.Event()
        self._lock = threading.Lock()
        self._queue: deque[dict[str, Any] | bytes | str] = deque()
        self._bytes = 0  # of queued fragments (bytes that are not an InitSegment)
        self._fragments = 0
        self._signalled = False
        self.limit = limit
        self.dropped = 0
        self.closed = False

    def put(self, message: dict[str, Any] | bytes | str) -> None:
        with self._lock:
            if len(self._queue) >= self.limit:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(message)
            wake = self._arm()
        if wake:
            self._wake()

    def _arm(self) -> bool:
        """Called with the lock held: True when the reader must be woken (it is not already)."""
        wake, self._signalled = not self._signalled, True
        return wake

    def _wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is going away
            self._loop.call_soon_threadsafe(self._ready.set)

    def close(self) -> None:
        self.closed = True
        self._wake()

    async def get(self) -> dict[str, Any] | bytes | str | None:
        """The next message (waits for one); fragments queued one after another come as one ``bytes``
        (whole fragments, in order); None once closed."""
        while not self.closed:
            with self._lock:
                if self._queue:
                    message = self._queue.popleft()
                    if not isinstance(message, bytes) or isinstance(message, InitSegment):
                        return message
                    parts = [message]
                    while self._queue and _is_fragment(self._queue[0]):
                        parts.append(self._queue.popleft())  # type: ignore[arg-type]
                    self._fragments -= len(parts)
                    data = b"".join(parts)
                    self._bytes = max(0, self._bytes - len(data))
                    return data
                self._ready.clear()
                self._signalled = False
            await self._ready.wait()
        return None

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    @property
    def queued_fragments(self) -> int:
        return self._fragments


def _is_fragment(message: Any) -> bool:
    return isinstance(message, bytes) and not isinstance(message, InitSegment)


class Viewer(Mailbox):
    """One ``WS /api/video`` connection's queue: text (dict) and binary (bytes) messages, bounded.

    When the queued fragments pass :data:`VIEWER_QUEUE_BYTES` or :data:`VIEWER_QUEUE_FRAGMENTS`, they are
    dropped and the viewer waits for the next keyframe fragment (``dropped`` counts the fragments it lost).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.need_keyframe = True  # a new viewer starts at a keyframe

    def _drop_fragments(self) -> None:
        self.dropped += self._fragments
        self._queue = deque(m for m in self._queue if not _is_fragment(m))
        self._bytes = self._fragments = 0

    def put_control(self, message: dict[str, Any] | InitSegment) -> None:
        """A message that is never dropped (``init``, ``idle``, the init segment); the fragments queued
        before it go (they belong to the video before)."""
        with self._lock:
            self._drop_fragments()
            self._queue.append(message)
            if isinstance(message, InitSegment):
                self.need_keyframe = True
            wake = self._arm()
        if wake:
            self._wake()

    def put_fragment(self, fragment: bytes, keyframe: bool) -> None:
        with self._lock:
            if self.need_keyframe and not keyframe:
                self.dropped += 1
                return
            full = self._bytes + len(fragment) > VIEWER_QUEUE_BYTES
            if full or self._fragments >= VIEWER_QUEUE_FRAGMENTS:
                self._drop_fragments()
                if not keyframe:
                    self.need_keyframe = True
                    self.dropped += 1
                    return
            self.need_keyframe = False
            self._queue.append(fragment)
            self._bytes += len(fragment)
            self._fragments += 1
            wake = self._arm()
        if wake:
            self._wake()


class VideoHub:
    """The viewers of ``WS /api/video`` and the current live video (None when no session runs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._viewers: list[Viewer] = []
        self.video: LiveVideo | None = None

    @property
    def count(self) -> int:
        return len(self._viewers)

    def join(self, loop: asyncio.AbstractEventLoop) -> Viewer:
        """A new viewer: it gets the current video's ``init`` message and init segment first, or ``idle``."""
        viewer = Viewer(loop)
        with self._lock:
            self._viewers.append(viewer)
            video = self.video
            if video is not None and video.init_segment is not None:
                viewer.put_control(video.init_message())
                viewer.put_control(video.init_segment)
            else:
                viewer.put_control({"type": "idle"})
        return viewer

    def leave(self, viewer: Viewer) -> None:
        viewer.close()
        with self._lock, contextlib.suppress(ValueError):
            self._viewers.remove(viewer)

    def started(self, video: LiveVideo) -> None:
        with self._lock:
            self.video = video

    def init_ready(self, video: LiveVideo) -> None:
        """The video's init segment is known: every viewer gets ``init`` and the segment."""
        assert video.init_segment is not None
        with self._lock:
            if self.video is not video:
                return
            for viewer in self._viewers:
                viewer.put_control(video.init_message())
                viewer.put_control(video.init_segment)

    def fragment(self, video: LiveVideo, data: bytes, keyframe: bool) -> None:
        with self._lock:
            if self.video is not video:
                return
            viewers = list(self._viewers)
        for viewer in viewers:
            viewer.put_fragment(data, keyframe)

    def ended(self, video: LiveVideo) -> None:
        with self._lock:
            if self.video is not video:
                return
            self.video = None
            for viewer in self._viewers:
                viewer.put_control({"type": "idle"})


# --------------------------------------------------------------------------- the live video
class LiveVideo:
    """A session's live video: a :class:`~longlive_cli.pipeline.VideoOutput` (see the module docs).

    Args:
        hub: where fragments go.
        session: the session id (in the ``init`` message).
        width, height: pixels (even); fps: video frames per second.
        block_frames: video frames per block (a keyframe at least every block).
        file: the fragmented MP4 of everything streamed so far (``<id>/live.mp4``; created here).
        ahead_s: seconds of video generation may run ahead of what was sent (0: no pacing).
        on_behind: told the seconds of video sent when the pacer's buffer ran dry (``StreamBehind``).
        on_frames: told the frames of each block as they come, before pacing (thumbnails).

    Raises:
        OutputError: ffmpeg cannot be started or ``file`` cannot be created.
    """

    def __init__(
        self,
        hub: VideoHub,
        *,
        session: str,
        width: int,
        height: int,
        fps: float,
        block_frames: int,
        file: Path,
        ahead_s: float = 2.0,
        on_behind: Callable[[float], None] | None = None,
    ) -> None:
        from ..errors import OutputError
        from ..stream import RealtimePacer
        from ..video import h264_command

        self.hub, self.session, self.width, self.height, self.fps = hub, session, width, height, fps
        self.init_segment: InitSegment | None = None
        self.mime = 'video/mp4; codecs="avc1.42E01E"'
        self.frames_in = 0  # frames written by the session
        self.frames_encoded = 0  # frames handed to ffmpeg (after pacing)
        self.fragments = 0
        self.complete_bytes = 0  # bytes of ``file`` that hold whole boxes (a playable prefix)
        self.last_sent: float | None = None  # time.monotonic() of the last frame sent to ffmpeg
        self.waited_s = 0.0  # seconds the stream waited for a frame past its due time (not paused)
        self.paused = False  # the session is paused: a wait is not the stream falling behind
        self.error: str | None = None
        gop = str(max(1, block_frames))
        cmd = h264_command(
            width=width,
            height=height,
            fps=fps,
            encoder=[*X264_LIVE, "-g", gop, "-keyint_min", gop],
            output=[*FRAGMENTED_MP4, "pipe:1"],
        )
        try:
            self._file = open(file, "xb")  # noqa: SIM115 (closed by the reader thread)
        except OSError as err:
            raise OutputError(f"cannot create {file}: {err.strerror or err}") from None
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as err:
            self._file.close()
            raise OutputError(f"cannot start ffmpeg for the live video: {err}") from err
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._stdin: IO[bytes] = self._proc.stdin
        self._reader = threading.Thread(target=self._read, name="longlive-fmp4", daemon=True)
        self._reader.start()
        hub.started(self)
        self._encoder = _Encoder(self)
        self._pacer: Any = (
            RealtimePacer(self._encoder, fps=fps, buffer_s=ahead_s, on_behind=on_behind)
            if ahead_s > 0
            else None
        )

    def init_message(self) -> dict[str, Any]:
        return {
            "type": "init",
            "session": self.session,
            "mime": self.mime,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
        }

    def behind_s(self) -> float:
        """Seconds the paced stream waited for frames so far (generation slower than real time; time
        paused not counted; 0 without pacing)."""
        return self.waited_s if self._pacer is not None else 0.0

    @property
    def frames_sent(self) -> int:
        return self._pacer.frames_sent if self._pacer is not None else self.frames_encoded

    def write(self, frames: Any) -> None:
        """Take a block's uint8 ``[T, H, W, 3]`` frames (waits while ``ahead_s`` of video is buffered)."""
        if hasattr(frames, "detach"):
            frames = frames.detach().cpu().numpy()
        frames = np.asarray(frames)
        self.frames_in += len(frames)
        if self._pacer is not None:
            self._pacer.write(frames)
        else:
            self._encoder.write(frames)

    def _encode(self, frames: np.ndarray) -> None:
        if self.error is not None:
            return
        data = np.ascontiguousarray(frames, dtype=np.uint8)
        try:
            self._stdin.write(memoryview(data).cast("B"))  # type: ignore[arg-type]
            self._stdin.flush()
            now = time.monotonic()
            if self.last_sent is not None and not self.paused:
                self.waited_s += max(0.0, now - self.last_sent - 1.5 / self.fps)
            self.last_sent = now
            self.frames_encoded += len(data)
        except (BrokenPipeError, ValueError, OSError) as err:
            self.error = f"the live video's ffmpeg stopped ({type(err).__name__})"
            log.warning("%s; the recording goes on", self.error)

    def _read(self) -> None:
        """ffmpeg's output -> init segment, fragments (moof + mdat), ``live.mp4``; ends with ffmpeg."""
        assert self._proc.stdout is not None
        init, moof = b"", None
        default_flags = 0
        try:
            while (box := read_box(self._proc.stdout)) is not None:
                kind, data = box
                if kind == b"moof":
                    if self.init_segment is None:
                        self.init_segment = InitSegment(init)
                        self.mime = f'video/mp4; codecs="{codec_string(init)}"'
                        default_flags = _trex_flags(init)
                        self._file.write(init)
                        self.complete_bytes += len(init)
                        self.hub.init_ready(self)
                    moof = data
                elif kind == b"mdat" and moof is not None:
                    fragment, moof = moof + data, None
                    self._file.write(fragment)
                    self._file.flush()
                    self.complete_bytes += len(fragment)
                    self.fragments += 1
                    self.hub.fragment(self, fragment, is_keyframe_fragment(fragment, default_flags))
                elif self.init_segment is None:
                    init += data  # ftyp, moov (and anything before the first fragment)
        except (ValueError, OSError) as err:
            self.error = f"the live video could not be read from ffmpeg: {err}"
            log.warning("%s", self.error)
        finally:
            self._file.close()

    def close(self) -> None:
        """Send what is buffered (at pace), end ffmpeg (at most 30 s) and the reader; viewers go idle."""
        try:
            if self._pacer is not None:
                self._pacer.close()  # sends the buffered frames, then closes the encoder
            else:
                self._encoder.close()
        finally:
            self.hub.ended(self)

    def _finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._stdin.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=10)


class _Encoder:
    """What the pacer writes to (one frame at a time) and closes."""

    def __init__(self, video: LiveVideo) -> None:
        self.video = video

    def write(self, frames: np.ndarray) -> None:
        self.video._encode(frames)

    def close(self) -> None:
        self.video._finish()
