"""When each prompt starts in a video: from a storyboard, or from the plan this project embeds in its MP4s.

Every MP4 that ``longlive generate`` writes carries its plan in the container's ``comment`` tag (written by
ffmpeg's ``-metadata comment=...``): one compact JSON object ``{"longlive_plan": {"version": 1, "model":
..., "fps": ..., "seed": ..., "segments": [{"start_s", "start_frame", "text", "transition_s"}, ...]}}``.
:func:`read_embedded_plan` reads it back with the ffmpeg bundled with imageio-ffmpeg (``ffmpeg -i VIDEO -f
ffmetadata -``; no ffprobe needed). Torch-free and light: imported by the pipeline to write the tag.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = [
    "PLAN_TAG",
    "SegmentTiming",
    "plan_metadata",
    "read_embedded_plan",
    "storyboard_timing",
]

#: The MP4 tag (ffmpeg's name) that holds the plan, and the JSON key inside it that marks it as ours.
PLAN_TAG = "comment"
_PLAN_KEY = "longlive_plan"
_FFMPEG_TIMEOUT_S = 60  # reading a file's header; a larger wait means a stuck ffmpeg


@dataclass(frozen=True)
class SegmentTiming:
    """One prompt's stretch of the video: it starts at video frame ``start_frame`` (``start_s`` seconds),
    ``transition_s`` seconds of blend into it (0: a hard switch)."""

    index: int
    text: str
    start_s: float
    start_frame: int
    transition_s: float = 0.0


def plan_metadata(plan: Any, model: str | None = None, seed: int | None = None) -> dict[str, str]:
    """The container tags that embed ``plan`` (a :class:`~longlive_cli.storyboard.Plan`), the ``model`` that
    made it and the ``seed`` it was made with (the noise seed used, which ``--seed-offset`` or a random
    draw may make differ from the plan's) in an MP4: ``{"comment": JSON}``, for
    :class:`~longlive_cli.video.VideoWriter`'s ``metadata``."""
    segments = [
        {
            "start_s": round(seg.effective_s, 6),
            "start_frame": seg.start_video_frame,
            "text": seg.text,
            "transition_s": seg.transition_s,
        }
        for seg in plan.segments
    ]
    body = {"version": 1, "model": model, "fps": plan.fps, "seed": seed, "segments": segments}
    return {PLAN_TAG: json.dumps({_PLAN_KEY: body}, separators=(",", ":"), ensure_ascii=False)}


def _unescape_ffmetadata(value: str) -> str:
    # ffmetadata escapes '=', ';', '#', '\\' and newlines with a backslash.
    return re.sub(r"\\(.)", r"\1", value, flags=re.DOTALL)


def read_embedded_plan(path: str | Path, ffmpeg: str) -> dict[str, Any] | None:
    """The plan embedded by this project in ``path``'s ``comment`` tag (:func:`plan_metadata`'s JSON body),
    or None when the video has none (another program's video, or one written before plans were embedded).

    Args:
        path: an MP4 file.
        ffmpeg: the ffmpeg executable (``imageio_ffmpeg.get_ffmpeg_exe()``).
    """
    try:
        out = subprocess.run(
            [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(path), "-f", "ffmetadata", "-"],
            capture_output=True,
            timeout=_FFMPEG_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = out.stdout.decode("utf-8", errors="replace")
    # The JSON written by plan_metadata has no raw line break (json.dumps escapes them): one line.
    for line in text.splitlines():
        if not line.startswith(f"{PLAN_TAG}="):
            continue
        try:
            body = json.loads(_unescape_ffmetadata(line[len(PLAN_TAG) + 1 :]))[_PLAN_KEY]
            body["segments"] = _segments(body["segments"])
            return body
        except (ValueError, KeyError, TypeError):
            return None
    return None


def _segments(items: list[dict[str, Any]]) -> list[SegmentTiming]:
    return [
        SegmentTiming(
            index=i,
            text=str(item["text"]),
            start_s=float(item["start_s"]),
            start_frame=int(item["start_frame"]),
            transition_s=float(item.get("transition_s", 0.0)),
        )
        for i, item in enumerate(items)
    ]


def storyboard_timing(storyboard: str | Path) -> list[SegmentTiming]:
    """The prompt segments of a storyboard file as the default model plans them (block-aligned switch
    times: :class:`~longlive_cli.storyboard.Segment`'s ``effective_s``).

    Raises:
        InputError: the file is missing (``StoryboardError``, exit 2, for an invalid one).
    """
    from ..models.spec import DEFAULT_MODEL, resolve_spec
    from ..plans import plan_storyboard

    path = Path(storyboard)
    if not path.is_file():
        raise InputError(f"Storyboard '{path}' does not exist or is not a file; give a storyboard YAML.")
    plan = plan_storyboard(path, resolve_spec(DEFAULT_MODEL).geometry)
    return [
        SegmentTiming(
            index=seg.index,
            text=seg.text,
            start_s=seg.effective_s,
            start_frame=seg.start_video_frame,
            transition_s=seg.transition_s,
        )
        for seg in plan.segments
    ]
