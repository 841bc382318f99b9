"""The studio behind ``longlive serve``: one loaded model and its one running job, a live session or a
render, on a worker thread.

A live session is :mod:`longlive_cli.live`'s: a :class:`~longlive_cli.live.LiveSchedule` fed by the HTTP API
and OSC instead of standard input, started by :func:`~longlive_cli.live.start_session` (the same checks, the
same session storyboard, the same recording) and run by :meth:`~longlive_cli.live.LiveSession.run`; its
frames also go to :class:`~longlive_cli.serve.media.LiveVideo` for the page. A render is
:meth:`LongLive.stream` of a storyboard. Every event goes to every ``/api/events`` client as the JSON object
``longlive live --json`` writes (:mod:`longlive_cli.jsonl`), through bounded per-client queues.

Each session lives in ``<sessions-dir>/<id>/`` (ids: ``secrets.token_hex(6)``): ``recording.mp4`` (or
``recording.partial.mp4`` when stopped by a signal), ``session.yaml``, ``live.mp4`` (the fragmented MP4
sent to viewers), ``thumbs/<block>.jpg`` and, with ``save_latents``, ``latents.safetensors``. A render:
``video.mp4``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import io
import json
import logging
import re
import secrets
import shutil
import threading
import time
import unicodedata
from pathlib import Path
from typing import Any

from ..errors import InputError, LongLiveError
from ..events import (
    BlockDone,
    Finished,
    GenerationStarted,
    Interrupted,
    PromptReceived,
    PromptShown,
    PromptSuperseded,
    PromptSwitched,
    StreamBehind,
)
from ..jsonl import event_name, to_json
from ..storyboard import StoryboardError
from ..storyboard.schema import (
    BLENDS,
    MAX_PROMPT_CHARS,
    check_prompt_text,
    check_transition,
    transition_blocks,
)
from .media import Mailbox, VideoHub

__all__ = ["ApiError", "EventHub", "Studio", "check_text"]

log = logging.getLogger(__name__)

ID_RE = re.compile(r"[0-9a-f]{12}")
#: Bytes of an image a session may start from (decoded from its data URL).
MAX_IMAGE_BYTES = 12 * 2**20
#: How long a stop at exit waits for the running job to end (seconds).
SHUTDOWN_WAIT_S = 120.0
_IMAGE_URL = re.compile(r"data:image/(png|jpeg);base64,", re.IGNORECASE)


class ApiError(Exception):
    """A request the studio refuses: its HTTP status, a message for people and the field it is about."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def check_text(value: Any, field: str) -> str:
    """A prompt from a request: a string, stripped, not empty, at most ``MAX_PROMPT_CHARS`` characters
    (:func:`~longlive_cli.storyboard.schema.check_prompt_text`), no control characters but newline and tab.

    Raises:
        ApiError: 400 naming ``field``.
    """
    try:
        text = check_prompt_text(value, field=field)
    except StoryboardError as err:
        raise ApiError(400, f"{field}: {err.message}", field) from None
    bad = next((c for c in text if c not in "\n\t" and unicodedata.category(c) in ("Cc", "Cs")), None)
    if bad is not None:
        raise ApiError(400, f"{field}: control character U+{ord(bad):04X} in the prompt; remove it", field)
    return text


class EventHub:
    """The ``/api/events`` clients: each gets every event as JSON text, through its own bounded queue."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: list[Mailbox] = []

    @property
    def count(self) -> int:
        return len(self._clients)

    def join(self, loop: asyncio.AbstractEventLoop) -> Mailbox:
        box = Mailbox(loop, limit=512)
        with self._lock:
            self._clients.append(box)
        return box

    def leave(self, box: Mailbox) -> None:
        box.close()
        with self._lock, contextlib.suppress(ValueError):
            self._clients.remove(box)

    def publish(self, text: str) -> None:
        with self._lock:
            clients = list(self._clients)
        for box in clients:
            box.put(text)

    def event(self, event: Any, **context: Any) -> None:
        """A pipeline or session event, as ``longlive live --json`` writes it (plus ``context``)."""
        fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
        self.publish(to_json(event_name(event), **context, **fields))


# --------------------------------------------------------------------------- jobs
class _Job:
    """A session or a render: its id, folder, state and thread."""

    kind = "job"

    def __init__(self, studio: Studio, job_id: str, folder: Path) -> None:
        self.studio, self.id, self.folder = studio, job_id, folder
        self.state = "starting"
        self.error: str | None = None
        self.blocks_done = 0
        self.num_blocks = 0
        self.frames_done = 0
        self.started: float | None = None  # GenerationStarted (monotonic)
        self.wall_s: float | None = None
        self.output: Path | None = None  # the finished (or partial) MP4
        self.outcome: str | None = None  # "finished" or "interrupted", from the pipeline's last event
        self.thread = threading.Thread(target=self._main, name=f"longlive-{self.kind}", daemon=True)

    @property
    def running(self) -> bool:
        return self.state in ("starting", "running", "paused")

    def _main(self) -> None:
        try:
            self.run()
        except LongLiveError as err:
            self.state, self.error = "failed", str(err)
            log.error("%s %s failed: %s", self.kind, self.id, err)
        except Exception as err:  # never a thread traceback in the server's output
            self.state, self.error = "failed", f"{type(err).__name__}: {err}"
            log.error("%s %s failed: %s: %s", self.kind, self.id, type(err).__name__, err)
        finally:
            if self.state in ("starting", "running", "paused"):  # the end is told once all is closed
                self.state = self.outcome or ("interrupted" if self.studio.stopping() else "finished")
            self.studio.job_ended(self)

    def run(self) -> None:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    def generation_fps(self) -> float:
        if self.wall_s:
            return self.frames_done / self.wall_s
        if self.started is None:
            return 0.0
        return self.frames_done / max(time.monotonic() - self.started, 1e-6)

    def track(self, event: Any) -> None:
        """The job's numbers from a pipeline event."""
        if isinstance(event, GenerationStarted):
            self.started, self.num_blocks = time.monotonic(), event.num_blocks
            if self.state == "starting":
                self.state = "running"
        elif isinstance(event, BlockDone):
            self.blocks_done, self.frames_done = event.block + 1, event.video_frames_done
        elif isinstance(event, Finished):
            self.outcome, self.wall_s, self.output = "finished", event.wall_s, event.path
            self.frames_done = event.num_video_frames
        elif isinstance(event, Interrupted):
            self.outcome, self.output = "interrupted", event.path
            if self.started is not None:
                self.wall_s = time.monotonic() - self.started


class LiveJob(_Job):
    """A live session (see the module docs)."""

    kind = "session"

    def __init__(self, studio: Studio, job_id: str, folder: Path, opts: Any, plan: Any) -> None:
        from ..live import LiveSchedule, PromptReader

        super().__init__(studio, job_id, folder)
        self.opts, self.plan = opts, plan
        self.num_blocks = plan.num_blocks
        self.created = time.monotonic()
        self.records: list[dict[str, Any]] = []
        self.pending: str | None = None
        self.video: Any = None
        self.latents = folder / "latents.safetensors" if studio.save_latents else None
        geometry = studio.geometry
        self.schedule = LiveSchedule(None, plan.num_blocks, studio.stopping, geometry)
        # The reader is never started: prompts come from the API; start_session takes it for its schedule.
        self.reader = PromptReader(
            self.schedule, stdin=io.BytesIO(), transitions=studio.transitions, shots=studio.shots
        )

    # ------------------------------------------------------------------ steering (any thread)
    def submit(self, text: str, transition: tuple[float, str] | None, cut: bool) -> None:
        self.schedule.side_events.append(PromptReceived(text, time.monotonic()))
        self.schedule.submit(text, transition=transition, cut=cut)
        self.pending = text

    def pause(self, paused: bool) -> None:
        self.schedule.pause(paused)
        if self.video is not None:
            self.video.paused = paused
            if not paused:
                self.video.last_sent = None  # the wait while paused is not the stream falling behind
        if self.state in ("running", "paused"):
            self.state = "paused" if paused else "running"

    def stop(self) -> None:
        self.schedule.finish()

    # ------------------------------------------------------------------ the worker
    def run(self) -> None:
        from ..live import close_session, start_session
        from .media import LiveVideo

        studio, geometry = self.studio, self.studio.geometry
        session = None
        try:
            session, _ = start_session(studio.ll, self.opts, stopping=studio.stopping, reader=self.reader)
            plan = session.plan
            self.records = [self._record(0, 0.0, 0)]

            def behind(video_s: float) -> None:
                self.schedule.side_events.append(StreamBehind(video_s))

            self.video = LiveVideo(
                studio.video,
                session=self.id,
                width=plan.width,
                height=plan.height,
                fps=plan.fps,
                block_frames=geometry.block_video_frames,
                file=self.folder / "live.mp4",
                ahead_s=studio.ahead_s,
                on_behind=behind,
            )
            session.sinks += [_Thumbnails(self), self.video]
            for event in session.run(should_stop=studio.stopping, save_latents=self.latents, overwrite=False):
                self._handle(event)
        finally:
            if session is not None:
                close_session(session)  # the paced frames go out, the viewers go idle
            else:
                self.schedule.close()
                self.reader.stop()

    def _handle(self, event: Any) -> None:
        state = self.state
        self.track(event)
        if isinstance(event, PromptSwitched):
            self.records.append(self._record(event.block, event.time_s, event.segment))
            if self.pending == event.text:
                self.pending = None
        elif isinstance(event, PromptShown):
            for record in self.records:
                if record["block"] == event.block:
                    record["latency_s"] = event.latency_s
        elif isinstance(event, PromptSuperseded) and self.pending == event.text:
            self.pending = None
        elif isinstance(event, BlockDone) and event.block == 0 and self.records:
            self.records[0]["latency_s"] = time.monotonic() - self.created
        if self.state == "running" and self.schedule.paused:
            self.state = "paused"
        self.studio.events.event(event)
        if self.state != state or isinstance(event, PromptSwitched | BlockDone | PromptShown):
            self.studio.publish_session()

    def _record(self, block: int, at_s: float, segment: int) -> dict[str, Any]:
        seconds, blend = self.schedule.transition_of(segment)
        return {
            "text": self.schedule.text(segment),
            "block": block,
            "at_s": at_s,
            "latency_s": None,
            "transition_s": seconds,
            "blend": blend,
            "cut": self.schedule.is_cut(segment),
            "thumbnail": None,
        }

    def thumbnail_path(self, block: int) -> Path:
        return self.folder / "thumbs" / f"{block}.jpg"

    def recording_file(self) -> tuple[Path, int | None] | None:
        """The recording to serve and how many of its bytes (None: all): while it runs, the fragmented
        MP4 streamed so far (whole boxes only); after, the finished (or partial) recording."""
        if self.running and self.video is not None:
            return self.folder / "live.mp4", self.video.complete_bytes
        return recording_in(self.folder)

    def describe(self) -> dict[str, Any]:
        """The session object of the contract (``GET /api/session``)."""
        plan, fps = self.plan, self.plan.fps
        video = self.video
        records = []
        for record in self.records:
            thumb = self.thumbnail_path(record["block"])
            url = f"/api/session/thumbnails/{record['block']}.jpg" if thumb.is_file() else None
            records.append(record | {"thumbnail": url})
        return {
            "id": self.id,
            "state": self.state,
            "blocks_done": self.blocks_done,
            "num_blocks": self.num_blocks,
            "width": plan.width,
            "height": plan.height,
            "video_fps": float(fps),
            "duration_s": float(plan.duration_s),
            "seed": plan.seed,
            "fps": self.generation_fps(),
            "video_s": self.frames_done / fps,
            "ahead_s": (video.frames_in - video.frames_sent) / fps if video is not None else 0.0,
            "behind_s": video.behind_s() if video is not None and self.running else 0.0,
            "viewers": self.studio.video.count,
            "error": self.error,
            "prompts": records,
            "pending": self.pending,
            "recording": "/api/session/recording",
            "storyboard": "/api/session/storyboard",
        }


class _Thumbnails:
    """A :class:`~longlive_cli.pipeline.VideoOutput` that keeps the first frame of each block a prompt took
    effect at as ``thumbs/<block>.jpg`` (JPEG, at most 160 px wide)."""

    def __init__(self, job: LiveJob) -> None:
        self.job, self.block = job, 0

    def write(self, frames: Any) -> None:
        block, self.block = self.block, self.block + 1
        if block not in self.job.schedule.switch_blocks:
            return
        try:
            from PIL import Image

            if hasattr(frames, "detach"):
                frames = frames.detach().cpu().numpy()
            image = Image.fromarray(frames[0])
            image.thumbnail((160, 160 * image.height // max(image.width, 1) or 1))
            path = self.job.thumbnail_path(block)
            path.parent.mkdir(exist_ok=True)
            with io.BytesIO() as buffer:
                image.save(buffer, "JPEG", quality=80)
                path.write_bytes(buffer.getvalue())
        except (OSError, ValueError) as err:  # a thumbnail is not worth stopping the session for
            log.warning("cannot keep the thumbnail of block %d: %s", block, err)

    def close(self) -> None:
        pass


class RenderJob(_Job):
    """A storyboard rendered to ``video.mp4`` with :meth:`LongLive.stream`."""

    kind = "render"

    def __init__(self, studio: Studio, job_id: str, folder: Path, plan: Any) -> None:
        super().__init__(studio, job_id, folder)
        self.plan, self.num_blocks = plan, plan.num_blocks

    def run(self) -> None:
        self.state = "running"
        for event in self.studio.ll.stream(
            self.plan, self.folder / "video.mp4", seed=self.plan.seed, should_stop=self.studio.stopping
        ):
            self.track(event)
            self.studio.events.event(event, render=self.id)

    def describe(self) -> dict[str, Any]:
        video = f"/api/render/{self.id}/video" if self.state == "finished" else None
        return {
            "id": self.id,
            "state": "running" if self.state == "starting" else self.state,
            "blocks_done": self.blocks_done,
            "num_blocks": self.num_blocks,
            "error": self.error,
            "video": video,
        }


def recording_in(folder: Path) -> tuple[Path, int | None] | None:
    """A session folder's recording: the finished MP4, else the partial one, else the live fMP4."""
    for name in ("recording.mp4", "recording.partial.mp4", "live.mp4"):
        if (folder / name).is_file():
            return folder / name, None
    return None


# --------------------------------------------------------------------------- the studio
class Studio:
    """One loaded model and its one running job (see the module docs).

    Args:
        ll: the loaded :class:`~longlive_cli.LongLive` (text encoder kept).
        sessions_dir: where each session's folder goes (exists, writable).
        save_latents: keep each session's latents (``latents.safetensors``).
        ahead_s: seconds of video generation may run ahead of the viewers (0: no pacing).
    """

    def __init__(self, ll: Any, *, sessions_dir: Path, save_latents: bool = False, ahead_s: float = 2.0):
        from ..registry import sampler_info

        self.ll, self.sessions_dir, self.save_latents, self.ahead_s = ll, sessions_dir, save_latents, ahead_s
        self.geometry = ll.geometry
        info = sampler_info(ll.spec.sampler.name)
        self.transitions, self.shots, self.image_input = info.transitions, info.shots, info.image_input
        self.events = EventHub()
        self.video = VideoHub()
        self._lock = threading.Lock()
        self._shutdown = threading.Event()
        self.session: LiveJob | None = None  # the current or last session
        self.renders: dict[str, RenderJob] = {}
        self.job: _Job | None = None  # the running one
        # OSC: a transition / cut asked for the next prompt
        self.next_transition: tuple[float, str] | None = None
        self.next_cut = False

    def stopping(self) -> bool:
        return self._shutdown.is_set()

    def health(self) -> dict[str, Any]:
        from ..live import live_duration

        geometry = self.geometry
        width, height = geometry.native_resolution
        return {
            "ok": True,
            "model": self.ll.spec.name,
            "device": "cuda:0" if str(self.ll.device).startswith("cuda") else str(self.ll.device),
            "architecture": self.ll.spec.architecture,
            "fps": geometry.fps,
            "block_seconds": geometry.block_s,
            "native_resolution": f"{width}x{height}",
            "resolution_multiple": geometry.pixel_multiple,
            "max_duration_s": live_duration(geometry),
            "shots": self.shots,
            "image": self.image_input,
            "transitions": self.transitions,
            "blends": list(BLENDS),
            "max_prompt_chars": MAX_PROMPT_CHARS,
            "ahead_s": self.ahead_s,
        }

    # ------------------------------------------------------------------ jobs
    def _reserve(self) -> tuple[str, Path]:
        """A new job id and its folder (created); 409 while a job runs. Called with the lock held."""
        if self._shutdown.is_set():
            raise ApiError(503, "the server is stopping")
        if self.job is not None and self.job.running:
            kind = "a live session" if isinstance(self.job, LiveJob) else "a render"
            raise ApiError(409, f"{kind} is running ({self.job.id}); stop it or wait for it to end")
        job_id = secrets.token_hex(6)
        folder = self.sessions_dir / job_id
        try:
            folder.mkdir(parents=False, exist_ok=False)
        except OSError as err:
            raise ApiError(500, f"cannot create the session folder {folder}: {err.strerror or err}") from None
        return job_id, folder

    def start_session(
        self,
        prompt: Any,
        *,
        seed: int | None = None,
        resolution: str | None = None,
        duration: str | float | None = None,
        image: str | None = None,
    ) -> dict[str, Any]:
        """Start a live session (its model work runs on the worker); the session object.

        Raises:
            ApiError: 400 a bad field (named), 409 a job runs.
        """
        from ..api import check_seed, resolve_seed
        from ..live import LiveOptions, _plan, check_options

        text = check_text(prompt, "prompt")
        try:
            seed = resolve_seed(check_seed(seed))
        except InputError as err:
            raise ApiError(400, str(err), "seed") from None
        if image is not None and not self.image_input:
            raise ApiError(400, f"image: {self.ll.spec.name} takes no image (image-to-video)", "image")
        with self._lock:
            job_id, folder = self._reserve()
            try:
                image_path = _save_image(image, folder) if image is not None else None
                opts = LiveOptions(
                    folder / "recording.mp4",
                    prompt=text,
                    duration=None if duration is None else str(duration),
                    seed=seed,
                    resolution=resolution,
                    save_session=folder / "session.yaml",
                    image=str(image_path) if image_path is not None else None,
                )
                latents = {"--save-latents": folder / "latents.safetensors" if self.save_latents else None}
                check_options(opts, self.geometry, outputs=latents)
                plan = _plan(opts, self.geometry, text, seed=seed)
            except ApiError:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            except (StoryboardError, InputError) as err:
                shutil.rmtree(folder, ignore_errors=True)
                raise ApiError(400, _message(err), _field(err)) from None
            job = LiveJob(self, job_id, folder, opts, plan)
            job.submit(text, None, False)
            job.pending = None
            self.session = self.job = job
            job.thread.start()
        self.publish_session()
        return job.describe()

    def current(self, *, running: bool = True) -> LiveJob:
        """The current session (``running``: it must still run, else 409)."""
        job = self.session
        if job is None:
            raise ApiError(409 if running else 404, "no session yet; start one with POST /api/session")
        if running and not job.running:
            raise ApiError(409, f"the session {job.id} is {job.state}; start a new one")
        return job

    def submit_prompt(self, text: Any, *, transition: Any = None, blend: Any = None, cut: Any = None) -> str:
        """A prompt for the running session (``transition``: seconds or ``"2s"``; None: the one OSC asked
        for, if any); the checked text.

        Raises:
            ApiError: 400 a bad field, 409 no running session.
        """
        job = self.current()
        text = check_text(text, "text")
        pair = self._transition(job, transition, blend)
        if cut is not None and not isinstance(cut, bool):
            raise ApiError(400, "cut: true or false", "cut")
        cut = bool(cut) or self.next_cut
        if cut and not self.shots:
            raise ApiError(400, f"cut: {self.ll.spec.name} has no shots (a LongLive 2.0 model has)", "cut")
        self.next_transition, self.next_cut = None, False
        job.submit(text, pair, cut)
        self.publish_session()
        return text

    def _transition(self, job: LiveJob, transition: Any, blend: Any) -> tuple[float, str] | None:
        if blend is not None and (not isinstance(blend, str) or blend.lower() not in BLENDS):
            raise ApiError(400, f"blend: one of {', '.join(BLENDS)}", "blend")
        if transition is None:
            if blend is not None and self.next_transition is not None:
                return self.next_transition[0], blend.lower()
            return self.next_transition
        if isinstance(transition, bool):
            raise ApiError(400, 'transition: give seconds, e.g. 2 or "2s"', "transition")
        try:
            seconds = check_transition(transition, field="transition")
        except StoryboardError as err:
            raise ApiError(400, f"transition: {err.message}", "transition") from None
        if seconds > 0 and not self.transitions:
            raise ApiError(400, "transition: this model's sampler switches prompts only hard", "transition")
        if transition_blocks(seconds, self.geometry) > job.num_blocks:
            raise ApiError(
                400,
                f"transition: {seconds:g} s is longer than the session ({job.plan.duration_s:g} s)",
                "transition",
            )
        return (seconds, (blend or "linear").lower()) if seconds > 0 else None

    def set_next_transition(self, seconds: Any, blend: Any = "linear") -> None:
        """OSC ``/longlive/transition``: the next prompt blends in over ``seconds``.

        Raises:
            ApiError: as :meth:`submit_prompt`.
        """
        self.next_transition = self._transition(self.current(), seconds, blend)

    def set_next_cut(self) -> None:
        """OSC ``/longlive/cut``: the next prompt starts a new shot."""
        self.current()
        if not self.shots:
            raise ApiError(400, f"cut: {self.ll.spec.name} has no shots", "cut")
        self.next_cut = True

    def pause(self, paused: bool) -> dict[str, Any]:
        job = self.current()
        job.pause(paused)
        self.publish_session()
        return job.describe()

    def stop(self) -> dict[str, Any]:
        job = self.current()
        job.stop()
        self.publish_session()
        return job.describe()

    def validate(self, text: Any) -> dict[str, Any]:
        """``POST /api/validate``: the plan ``longlive validate`` prints, or the error with line and
        column."""
        from ..storyboard import format_plan

        try:
            plan = self._plan_storyboard(text, None)
        except StoryboardError as err:
            return {"ok": False, "error": str(err), "line": err.line, "column": err.column}
        return {
            "ok": True,
            "plan": format_plan(plan),
            "num_blocks": plan.num_blocks,
            "duration_s": plan.duration_s,
        }

    def _plan_storyboard(self, text: Any, seed: int | None) -> Any:
        from ..plans import plan_storyboard
        from ..storyboard import parse_storyboard

        if not isinstance(text, str):
            raise ApiError(400, "storyboard: the storyboard's YAML text, as a string", "storyboard")
        storyboard = parse_storyboard(text, path="<storyboard>", geometry=self.geometry)
        if storyboard.image is not None:  # a request never names a file on the server
            raise StoryboardError(
                "image: a storyboard sent to the server cannot name a file; start a session with an "
                "image instead",
                field="image",
            )
        return plan_storyboard(storyboard, self.geometry, name="<storyboard>", seed=seed)

    def render(self, text: Any, seed: Any = None) -> dict[str, Any]:
        """``POST /api/render``: plan the storyboard, then render it on the worker.

        Raises:
            ApiError: 400 an invalid storyboard or seed, 409 a job runs.
        """
        from ..api import check_seed

        try:
            checked = check_seed(seed)
        except InputError as err:
            raise ApiError(400, str(err), "seed") from None
        try:
            plan = self._plan_storyboard(text, checked)
        except StoryboardError as err:
            raise ApiError(400, str(err), "storyboard") from None
        with self._lock:
            job_id, folder = self._reserve()
            job = RenderJob(self, job_id, folder, plan)
            self.renders[job_id] = self.job = job
            job.thread.start()
        return job.describe()

    def render_job(self, job_id: str) -> RenderJob:
        job = self.renders.get(job_id) if ID_RE.fullmatch(job_id) else None
        if job is None:
            raise ApiError(404, f"no render {job_id[:40]!r} on this server")
        return job

    def session_folder(self, job_id: str) -> Path:
        """An earlier session's folder by id (``[0-9a-f]{12}``; anything else is 404, never a path)."""
        folder = self.sessions_dir / job_id if ID_RE.fullmatch(job_id) else None
        if folder is None or not folder.is_dir() or job_id in self.renders:
            raise ApiError(404, "no such session on this server")
        return folder

    def job_ended(self, job: _Job) -> None:
        if isinstance(job, LiveJob):
            self.publish_session()
        else:
            self.events.publish(json.dumps({"event": "render", **job.describe()}))

    def publish_session(self) -> None:
        if self.session is not None:
            self.events.publish(json.dumps({"event": "session", **self.session.describe()}))

    def shutdown(self, timeout: float = SHUTDOWN_WAIT_S) -> None:
        """Stop: the running job ends as ``live``'s does on a signal (a playable partial recording, the
        session storyboard kept); waits for it at most ``timeout`` seconds."""
        self._shutdown.set()
        job = self.job
        if job is not None and job.thread.is_alive():
            job.thread.join(timeout)


def _save_image(url: Any, folder: Path) -> Path:
    """A ``data:image/png|jpeg;base64,...`` URL saved in the session folder (checked later by
    :func:`~longlive_cli.images.load_image`, as ``--image`` is).

    Raises:
        ApiError: 400 not such a URL, not base64; 413 over :data:`MAX_IMAGE_BYTES`.
    """
    if not isinstance(url, str) or not (match := _IMAGE_URL.match(url[:64])):
        raise ApiError(400, "image: a data:image/png;base64,... or data:image/jpeg;base64,... URL", "image")
    payload = url[match.end() :]
    if len(payload) * 3 // 4 > MAX_IMAGE_BYTES:
        raise ApiError(413, f"image: over the {MAX_IMAGE_BYTES // 2**20} MiB limit; shrink it", "image")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "image: not valid base64", "image") from None
    path = folder / f"image.{'png' if match.group(1).lower() == 'png' else 'jpg'}"
    path.write_bytes(data)
    return path


def _field(err: LongLiveError) -> str | None:
    field = getattr(err, "field", None)
    if isinstance(field, str):
        return field.lstrip("-").split(".")[0] or None
    message = str(err)
    for name in ("resolution", "duration", "image", "seed"):
        if name in message:
            return name
    return None


def _message(err: LongLiveError) -> str:
    message = getattr(err, "message", None) or str(err)
    return str(message).replace("--resolution", "resolution").replace("--duration", "duration")
