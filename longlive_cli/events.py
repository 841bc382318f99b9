"""Events the generation pipeline yields, in order, while it runs.

The pipeline is a generator of these; progress display, JSON output and tests are consumers.
All times are wall-clock seconds measured with ``time.perf_counter``; video times are seconds of
output video at the plan's fps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GenerationStarted:
    """Model loaded and prompts encoded; the block loop is about to start.

    ``num_blocks`` blocks of ``frames_per_block`` latent frames will be generated, giving
    ``num_video_frames`` video frames (``duration_s`` seconds at ``fps``) from noise seed ``seed``.
    """

    num_blocks: int
    frames_per_block: int
    num_video_frames: int
    fps: int
    duration_s: float
    first_prompt: str
    seed: int | None = None


@dataclass(frozen=True)
class PromptSwitched:
    """Segment ``segment`` (0-based) takes effect at block ``block``, after the KV re-cache.

    ``time_s`` is the video time of the first frame generated under the new prompt.
    """

    block: int
    segment: int
    text: str
    time_s: float


@dataclass(frozen=True)
class BlockDone:
    """Block ``block`` (0-based) of ``num_blocks`` is denoised, decoded and handed to the writer.

    ``video_frames_done`` counts video frames written so far (cumulative); ``elapsed_s`` is wall
    time since ``GenerationStarted``.
    """

    block: int
    num_blocks: int
    video_frames_done: int
    num_video_frames: int
    fps: int
    elapsed_s: float


@dataclass(frozen=True)
class Finished:
    """The output file is complete and in place under its final name (``path``; None when no file was
    asked for). ``duration_s``: seconds of video made (shorter than planned after ``longlive live``'s
    ``:quit``)."""

    path: Path | None
    num_video_frames: int
    duration_s: float
    wall_s: float

    @property
    def generation_fps(self) -> float:
        """Video frames per wall-clock second over the block loop."""
        return self.num_video_frames / self.wall_s if self.wall_s > 0 else float("inf")


@dataclass(frozen=True)
class Interrupted:
    """Generation stopped early on request (Ctrl-C / SIGTERM) after ``num_video_frames`` frames.

    ``path`` is the playable partial MP4 kept (``<name>.partial.mp4``), or None when nothing was
    kept. ``duration_s`` is its length in seconds.
    """

    path: Path | None
    num_video_frames: int
    duration_s: float


# --------------------------------------------------------------------------- `longlive live`'s own
@dataclass(frozen=True)
class PromptReceived:
    """A prompt line arrived (``at_s``: wall seconds since the session started)."""

    text: str
    at_s: float


@dataclass(frozen=True)
class PromptSuperseded:
    """A newer prompt arrived before ``text`` was shown, so it never will be (nor encoded, when its turn had
    not come); ``count`` prompts were passed over in one burst, ``text`` the last of them."""

    text: str
    count: int = 1


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


@dataclass(frozen=True)
class Aborted:
    """The run was abandoned at once (a second Ctrl-C / SIGTERM): the unfinished video was removed, nothing
    was kept; the command exits ``exit_code`` (130 or 143)."""

    exit_code: int


Event = GenerationStarted | PromptSwitched | BlockDone | Finished | Interrupted
#: What a live session yields besides the pipeline's :data:`Event`.
LiveEvent = PromptReceived | PromptSuperseded | PromptShown | StreamBehind | StreamClosed | SessionSummary
