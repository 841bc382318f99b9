"""MP4 output: stream uint8 RGB frames into H.264 through the ffmpeg bundled with imageio-ffmpeg.

Frames are piped to one ffmpeg process as they arrive (nothing but the current batch is held in memory) and
encoded into a hidden temporary file next to the target. ``close()`` waits for ffmpeg, checks its exit
status and renames the temporary file onto the final name with ``os.replace`` (atomic on one filesystem),
so the target either does not exist or is a complete video; it is never a half-written file.

The process is started directly (``subprocess``) with ``imageio_ffmpeg.get_ffmpeg_exe()`` rather than
through ``imageio_ffmpeg.write_frames``: that generator sends ffmpeg's stderr to the terminal and never
looks at ffmpeg's exit status, so it could neither stay quiet nor report why encoding failed (a failure
while finishing the file, e.g. a full disk, would go unnoticed). The command line is the same kind it
builds: rawvideo rgb24 on stdin → libx264, yuv420p.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import IO

import imageio_ffmpeg
import numpy as np

from .errors import OutputError
from .fileio import make_temp_beside

__all__ = [
    "OutputError",
    "OutputExistsError",
    "VideoWriter",
    "check_output",
    "h264_command",
    "read_video_info",
]

_STDERR_MAX_CHARS = 4000  # ffmpeg's first error lines name the cause; the rest is fallout


class OutputExistsError(OutputError):
    """The output file already exists and overwriting was not requested."""


def _popen_isolation() -> dict:
    # Own process group: Ctrl-C reaches Python, which then aborts (kills ffmpeg, deletes the temp file)
    # instead of ffmpeg dying on its own half-way.
    if sys.platform.startswith("win"):
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW}
    return {"start_new_session": True}


def check_output(path: str | Path, *, overwrite: bool = False) -> Path:
    """Check, before any work, that a video can be written to ``path``; nothing is created.

    Args:
        path: the intended output file.
        overwrite: an existing file at ``path`` may be replaced.

    Returns:
        ``path`` made absolute (``~`` expanded).

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false (message names the file and
            ``--force``).
        OutputError: the output folder does not exist, is not a folder or is not writable, or ``path`` is a
            folder (each message names the folder or path and what to do).
    """
    path = Path(path).expanduser().absolute()
    folder = path.parent
    if not folder.exists():
        raise OutputError(
            f"Output folder '{folder}' does not exist; create it first (mkdir -p '{folder}') "
            "or choose an output path in an existing folder."
        )
    if not folder.is_dir():
        raise OutputError(f"Output folder '{folder}' is not a folder; choose another output path.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(
            f"Output folder '{folder}' is not writable; fix its permissions or choose another output path."
        )
    if path.is_dir():
        raise OutputError(f"Output path '{path}' is a folder; give a file name such as out.mp4.")
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"Output file '{path}' already exists; use --force to overwrite it or choose another name."
        )
    return path


def h264_command(
    *, width: int, height: int, fps: float, encoder: Sequence[str], output: Sequence[str]
) -> list[str]:
    """The one ffmpeg command line that encodes raw frames to H.264: bundled ffmpeg (imageio-ffmpeg), quiet,
    ``rgb24`` frames of ``width`` x ``height`` pixels at ``fps`` read from standard input, no audio,
    ``libx264`` with the ``encoder`` options (preset, crf or tune, GOP), ``yuv420p``, then the ``output``
    arguments (container options and the destination). :class:`VideoWriter` (MP4 files) and
    :class:`longlive_cli.stream.StreamSink` (live streams) both run it."""
    return [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-hide_banner",
        "-nostats",
        "-loglevel",
        "error",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{width}x{height}",
        "-r",
        str(Fraction(fps).limit_denominator()),
        "-i",
        "pipe:0",
        "-an",
        "-c:v",
        "libx264",
        *encoder,
        "-pix_fmt",
        "yuv420p",
        *output,
    ]


class VideoWriter:
    """Streams uint8 RGB frames into an H.264 (libx264, yuv420p) MP4 at ``fps``.

    Frames go to a hidden temporary file in the target folder (``.<name>.part-<random>``), renamed
    atomically (``os.replace``) onto the final name by :meth:`close`; :meth:`abort` (or leaving the ``with``
    block on an exception) stops ffmpeg and deletes the temporary file, leaving nothing behind. ffmpeg's
    console output is captured (never printed); its error lines become the :class:`OutputError` message.

    Args:
        path: final output file (written as MP4 whatever its extension).
        fps: frames per second (> 0; a float is passed to ffmpeg as an exact fraction).
        width, height: frame size in pixels; both must be even (yuv420p halves chroma resolution).
            Frames are never resized.
        overwrite: replace an existing ``path`` (only when :meth:`close` succeeds).
        crf: libx264 constant rate factor, 0 (lossless) … 51 (worst); 18 is visually near-lossless.
        preset: libx264 speed/size preset (``ultrafast`` … ``veryslow``).
        metadata: container tags written with ffmpeg's ``-metadata key=value`` (e.g. ``{"comment": ...}``:
            the generation plan, read back by ``longlive report``); keys are ffmpeg's tag names.

    Raises:
        OutputExistsError, OutputError: as :func:`check_output`; OutputError also when ffmpeg
            cannot be started.
        ValueError: bad ``fps``, size, ``crf``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        fps: float,
        width: int,
        height: int,
        overwrite: bool = False,
        crf: int = 18,
        preset: str = "medium",
        metadata: Mapping[str, str] | None = None,
    ):
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        for name, value in (("width", width), ("height", height)):
            if int(value) != value or value <= 0 or value % 2:
                raise ValueError(
                    f"{name} must be a positive even number of pixels (H.264 yuv420p), got {value}"
                )
        if not 0 <= crf <= 51:
            raise ValueError(f"crf must be in 0..51, got {crf}")
        self.fps = fps
        self.width, self.height = int(width), int(height)
        self.overwrite = overwrite
        self._frames_written = 0
        self._state = "starting"  # → open → closed | aborted; only "open" has ffmpeg and a temp file

        self.path = check_output(path, overwrite=overwrite)

        cmd = h264_command(
            width=self.width,
            height=self.height,
            fps=fps,
            encoder=["-preset", preset, "-crf", str(crf)],
            # index at the front: playable while downloading; the temp name has no .mp4 extension to infer
            # the format from; the temp file was created empty by us, exclusively.
            output=[
                *[arg for key, value in (metadata or {}).items() for arg in ("-metadata", f"{key}={value}")],
                *["-movflags", "+faststart", "-f", "mp4", "-y"],
            ],
        )
        self.temp_path = self._create_temp_file()
        proc: subprocess.Popen | None = None
        # Lives as long as ffmpeg does (closed in close()/abort()), so no `with` block.
        stderr: IO[bytes] | None = None
        try:
            stderr = self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
            cmd.append(str(self.temp_path))
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                **_popen_isolation(),
            )
            assert proc.stdin is not None  # stdin=PIPE
            self._proc, self._stdin = proc, proc.stdin
            self._state = "open"
        except BaseException as err:  # also Ctrl-C while ffmpeg starts: no stray temporary file is left
            if proc is not None:
                proc.kill()
                proc.wait()
            if stderr is not None:
                stderr.close()
            self.temp_path.unlink(missing_ok=True)
            self._state = "aborted"
            if isinstance(err, OSError):
                raise OutputError(f"Could not start ffmpeg ({cmd[0]}): {err}") from err
            raise

    def _create_temp_file(self) -> Path:
        try:
            return make_temp_beside(self.path)
        except OSError as err:
            raise OutputError(f"Cannot create a file in output folder '{self.path.parent}': {err}") from err

    @property
    def frames_written(self) -> int:
        """Frames accepted by :meth:`write` so far."""
        return self._frames_written

    def write(self, frames) -> None:
        """Append frames to the video.

        Args:
            frames: uint8 ``[T, H, W, 3]`` (frames, height, width, RGB) as a numpy array or a torch tensor
                (any device); ``H, W`` must equal the writer's ``height, width``. ``T = 0`` is a no-op.

        Raises:
            ValueError: wrong shape or dtype, or the writer is already closed/aborted.
            OutputError: ffmpeg failed (its message included); the writer is aborted.
        """
        if self._state != "open":
            raise ValueError(f"write() on a {self._state} VideoWriter")
        if hasattr(frames, "detach"):  # torch.Tensor, without importing torch here
            frames = frames.detach().cpu().numpy()
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[1:] != (self.height, self.width, 3):
            raise ValueError(
                f"frames must have shape [T, {self.height}, {self.width}, 3], got {frames.shape}"
            )
        if frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8, got {frames.dtype}")
        if frames.shape[0] == 0:
            return
        data = np.ascontiguousarray(frames)
        try:
            self._stdin.write(memoryview(data).cast("B"))  # type: ignore[arg-type]
        except OSError as err:  # BrokenPipeError: ffmpeg exited
            message = self._fail_message(f"ffmpeg stopped accepting frames ({err})")
            self.abort()
            raise OutputError(message) from err
        self._frames_written += frames.shape[0]

    def close(self, path: str | Path | None = None) -> Path:
        """Finish the video: flush ffmpeg, wait for it, and rename the temporary file onto the final path.

        Args:
            path: put the finished video here instead of the path given at construction (used for
                ``<name>.partial.mp4`` after an interrupt).

        Returns:
            The final path (absolute). Calling again after success returns it again.

        Raises:
            OutputError: no frames were written, or ffmpeg failed (its message included); the temporary file
                is deleted.
            OutputExistsError: ``overwrite`` is false and the target appeared while writing; the finished
                video is kept under ``temp_path`` (named in the message).
            ValueError: the writer was aborted.
        """
        if self._state == "closed":
            return self.path
        if self._state == "aborted":
            raise ValueError("close() on an aborted VideoWriter")
        if path is not None:
            self.path = Path(path).expanduser().absolute()
        if self._frames_written == 0:
            self.abort()
            raise OutputError(f"No frames were written; '{self.path}' was not created.")
        with contextlib.suppress(OSError):  # ffmpeg already exited: its exit status below says why
            self._stdin.close()
        try:
            returncode = self._proc.wait()
        except BaseException:  # e.g. Ctrl-C while ffmpeg finishes: do not leave it or the temp behind
            self.abort()
            raise
        if returncode != 0:
            message = self._fail_message(f"ffmpeg exited with status {returncode}")
            self.abort()
            raise OutputError(message)
        self._stderr.close()
        if not self.overwrite and self.path.exists():
            self._state = "aborted"  # nothing left to finish; the temp file is deliberately kept
            raise OutputExistsError(
                f"Output file '{self.path}' appeared while writing; use --force to overwrite it. "
                f"The finished video was kept as '{self.temp_path}'."
            )
        try:
            os.replace(self.temp_path, self.path)
        except OSError as err:
            self.abort()
            raise OutputError(f"Could not move the finished video to '{self.path}': {err}") from err
        self._state = "closed"
        return self.path

    def abort(self) -> None:
        """Stop ffmpeg and delete the temporary file; the target path is left untouched. Idempotent."""
        if self._state != "open":
            return
        self._state = "aborted"
        proc = self._proc
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(OSError):
            self._stdin.close()
        proc.wait()
        self._stderr.close()
        self.temp_path.unlink(missing_ok=True)

    def _fail_message(self, what: str) -> str:
        # Wait for ffmpeg to exit so its error lines are complete, then read them back.
        with contextlib.suppress(OSError):
            self._stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._stderr.seek(0)
        log = self._stderr.read(_STDERR_MAX_CHARS).decode(errors="replace").strip()
        return f"Writing '{self.path}' failed: {what}" + (f":\n{log}" if log else ".")

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        # Last resort for a writer dropped without close()/abort(): no orphan ffmpeg, no stray temp file.
        if getattr(self, "_state", None) == "open":
            with contextlib.suppress(Exception):
                self.abort()


def read_video_info(path: str | Path) -> dict:
    """Read back a video's frame count, frame rate and size.

    Args:
        path: a video file.

    Returns:
        ``{"frames": int, "fps": float, "width": int, "height": int}``; ``frames`` is exact (every frame is
        decoded and counted by ffmpeg), ``fps`` is the container's frame rate in frames per second,
        ``width``/``height`` in pixels.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        OutputError: ffmpeg cannot read it as a video.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such video file: '{path}'")
    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        try:
            meta = next(reader)
        finally:
            reader.close()
        frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    except (OSError, RuntimeError, StopIteration) as err:
        raise OutputError(f"Cannot read video '{path}': {err}") from err
    width, height = meta["size"]
    return {"frames": int(frames), "fps": float(meta["fps"]), "width": int(width), "height": int(height)}


# H.264 at CRF 18 on generated video stays well under this; noise-like video comes close to it.
_BYTES_PER_PIXEL_FRAME = 0.15


def estimate_mp4_bytes(width: int, height: int, frames: int) -> int:
    """A generous estimate of the MP4 size in bytes for ``frames`` frames of ``width`` x ``height``."""
    return int(width * height * frames * _BYTES_PER_PIXEL_FRAME) + (1 << 20)


def check_free_space(path: str | Path, needed_bytes: int) -> None:
    """Raise :class:`OutputError` when the folder of ``path`` has less than ``needed_bytes`` free."""
    folder = Path(path).expanduser().absolute().parent
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise OutputError(
            f"Not enough free space in '{folder}' for '{Path(path).name}': about {needed_bytes / 1e6:.0f} MB "
            f"needed, {free / 1e6:.0f} MB free. Free some space or write elsewhere."
        )
