"""``longlive report``: where a long video flickers, freezes, drifts in colour, cuts or jumps at a prompt
switch, as one JSON, one picture and one page.

The measures (:mod:`.measures`) need no model weights and run on the CPU; the rules and thresholds that turn
them into events are in :mod:`.rules`; the prompt times come from a storyboard or from the plan embedded in
this project's MP4s (:mod:`.timing`); the pictures and page from :mod:`.render`. Named ``quality`` (not
``report``) because ``longlive_cli.report`` is the function :func:`report`.

Heavy libraries (scikit-image, PySceneDetect/OpenCV, matplotlib) are imported on the first report only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
from pathlib import Path
from typing import Any

from ..errors import OutputError

__all__ = ["OUTPUT_NAMES", "check_report_dir", "default_report_dir", "report", "summary_line"]

#: The files a report writes in its folder (``compare.png`` only with ``compare``).
OUTPUT_NAMES = ("report.json", "timeline.png", "index.html", "compare.png")
#: A video whose decoded frames cover less than this share of its declared length is reported as truncated.
TRUNCATED_RATIO = 0.9
#: What the weight-based measures need (``pip install longlive-cli[eval]``).
EVAL_SKIPPED = (
    "skipped: CLIP text alignment and DINO subject consistency need model weights; install longlive-cli[eval]"
)
EVAL_NOT_IMPLEMENTED = (
    "skipped: CLIP text alignment and DINO subject consistency are not implemented in this version"
)


def default_report_dir(video: str | Path) -> Path:
    """``<video stem>_report`` beside the video: where ``generate --report`` and ``longlive report``
    without ``-o`` write."""
    video = Path(video).expanduser().absolute()
    return video.with_name(f"{video.stem}_report")


def check_report_dir(out_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Check, before any work, that a report can be written into ``out_dir``; nothing is created.

    Returns:
        ``out_dir`` made absolute.

    Raises:
        OutputError: ``out_dir`` is a file, its parent folder is missing or not writable, or it already
            holds files and ``overwrite`` is false (exit 4; the message names the folder and ``--force``).
    """
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise OutputError(f"Report folder '{out}' is a file; give a folder with -o.")
    parent = out if out.is_dir() else out.parent
    if not parent.is_dir():
        raise OutputError(f"Folder '{parent}' does not exist; create it first or choose another -o folder.")
    if not _writable(parent):
        raise OutputError(f"Folder '{parent}' is not writable; fix its permissions or choose another -o.")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputError(
            f"Report folder '{out}' already exists and is not empty; use --force to overwrite its report "
            "or choose another folder with -o."
        )
    return out


def _writable(folder: Path) -> bool:
    import os

    return os.access(folder, os.W_OK | os.X_OK)


def report(
    video: str | Path,
    out_dir: str | Path | None = None,
    *,
    storyboard: str | Path | None = None,
    plan: Any = None,
    compare: str | Path | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Measure ``video`` and write ``report.json``, ``timeline.png`` and ``index.html`` (and
    ``compare.png``) into ``out_dir``.

    Args:
        video: the MP4 (any video ffmpeg decodes).
        out_dir: the report folder [default: ``<video stem>_report`` beside the video]; created if missing
            (its parent must exist).
        storyboard: the storyboard YAML whose prompt times to use (planned as for the default model);
            default: the plan embedded in the video by ``longlive generate``, else no prompt switches.
        plan: a :class:`~longlive_cli.storyboard.Plan` to take the prompt times from (``generate
            --report``); ``storyboard`` wins over it.
        compare: another video to compare with frame by frame (PSNR/SSIM).
        overwrite: replace the files of an existing report in ``out_dir``.

    Returns:
        The report (as written to ``report.json``): ``{"video", "per_second", "segments", "events",
        "summary"}`` plus ``"compare"`` with ``compare``. PSNR of identical frames is the string ``"inf"``
        (JSON has no infinity); a measure with no value is ``null``.

    Raises:
        InputError: ``video``, ``compare`` or ``storyboard`` is missing or unreadable (exit 2).
        OutputError: the report cannot be written (exists without ``overwrite``, folder missing; exit 4).
    """
    from . import measures, rules

    video = Path(video).expanduser().absolute()
    timings, source, embedded = _timings(video, storyboard, plan)  # input errors first
    if compare is not None and not Path(compare).is_file():
        from ..errors import InputError

        raise InputError(f"Video '{compare}' (--compare) does not exist or is not a file.")
    out = check_report_dir(out_dir if out_dir is not None else default_report_dir(video), overwrite=overwrite)
    m = measures.measure_video(video)
    drift = rules.colour_drift(m, timings)
    events = rules.find_events(m, timings, drift)
    result: dict[str, Any] = {
        "video": {
            "path": str(video),
            "width": m.size[0],
            "height": m.size[1],
            "fps": m.fps,
            "frames": m.num_frames,
            "duration_s": round(m.duration_s, 3),
            "analysis_size": list(m.analysis_size),
            "prompt_times": source,
            "model": embedded.get("model") if embedded else None,
            "seed": embedded.get("seed") if embedded else None,
        },
        "per_second": rules.aggregate_per_second(m, drift),
        "segments": rules.aggregate_segments(m, timings, drift, events),
        "events": events,
        "summary": rules.summarize(m, drift, events),
    }
    result["summary"]["skipped"] = [_eval_message()]
    result["summary"]["warnings"] = _warnings(m)
    comparison = None
    if compare is not None:
        comparison = _compare(video, Path(compare).expanduser().absolute())
        result["compare"] = comparison["json"]
        result["summary"]["compare"] = comparison["summary"]
    out.mkdir(exist_ok=True)
    _write(out, result, m, timings, drift, comparison, video)
    return result


def _timings(video: Path, storyboard: str | Path | None, plan: Any) -> tuple[list, str, dict | None]:
    """The prompt segments, where they came from, and the plan embedded in ``video`` (or None)."""
    import imageio_ffmpeg

    from ..errors import InputError
    from .timing import SegmentTiming, read_embedded_plan, storyboard_timing

    if not video.is_file():
        raise InputError(f"Video '{video}' does not exist or is not a file; give an MP4 to report on.")
    embedded = read_embedded_plan(video, imageio_ffmpeg.get_ffmpeg_exe())
    if storyboard is not None:
        return storyboard_timing(storyboard), "storyboard", embedded
    if plan is not None:
        timings = [
            SegmentTiming(s.index, s.text, s.effective_s, s.start_video_frame, s.transition_s)
            for s in plan.segments
        ]
        return timings, "plan", embedded
    if embedded is not None:
        return embedded["segments"], "metadata", embedded
    return [], "none", None


def _compare(video: Path, other: Path) -> dict[str, Any]:
    import numpy as np

    from .measures import compare_videos
    from .rules import finite, mean_of

    psnr, ssim, frames_a, frames_b = compare_videos(video, other)
    summary = {
        "other": str(other),
        "frames_compared": len(psnr),
        "frames": [frames_a, frames_b],
        "identical_frames": int(np.isinf(psnr).sum()),
        "psnr_mean": mean_of(psnr),
        "psnr_min": finite(float(np.min(psnr))) if len(psnr) else None,
        "ssim_mean": finite(float(np.mean(ssim))) if len(ssim) else None,
        "ssim_min": finite(float(np.min(ssim))) if len(ssim) else None,
    }
    per_frame = {"psnr": [finite(v) for v in psnr], "ssim": [finite(v) for v in ssim]}
    return {"json": {**summary, **per_frame}, "summary": summary, "psnr": psnr, "ssim": ssim}


def _warnings(m: Any) -> list[str]:
    declared = m.declared_duration_s
    if declared and m.duration_s < TRUNCATED_RATIO * declared:
        return [
            f"only {m.duration_s:.2f} s of the {declared:.2f} s the file declares could be decoded "
            "(truncated or damaged?): the report covers the decoded part"
        ]
    return []


def _eval_message() -> str:
    if importlib.util.find_spec("open_clip") is None:
        return EVAL_SKIPPED
    return EVAL_NOT_IMPLEMENTED


def summary_line(result: dict[str, Any]) -> str:
    """One line: the event counts, the mean consecutive-frame SSIM, and the comparison when there is one."""
    s = result["summary"]
    counts = ", ".join(f"{n} {kind}" for kind, n in s["events"].items())
    line = f"{s['duration_s']} s, {s['frames']} frames: {counts} ({s['abrupt_switches']} abrupt switches)"
    line += f"; mean SSIM to previous frame {s['ssim']}"
    line += "".join(f"; warning: {w}" for w in s.get("warnings", ()))
    if "compare" in s:
        c = s["compare"]
        line += (
            f"; compare with {Path(c['other']).name} over {c['frames_compared']} frames: "
            f"PSNR mean {c['psnr_mean']} dB (min {c['psnr_min']}), SSIM mean {c['ssim_mean']} "
            f"(min {c['ssim_min']})"
        )
    return line


def _write(
    out: Path,
    result: dict[str, Any],
    m: Any,
    timings: list,
    drift: Any,
    comparison: dict[str, Any] | None,
    video: Path,
) -> None:
    from ..fileio import atomic_output
    from .render import render_compare, render_html, render_timeline

    model = result["video"]["model"]
    title = f"longlive report: {video.name}" + (f" (made by {model})" if model else "")
    try:
        with atomic_output(out / "timeline.png") as tmp:
            axis = render_timeline(tmp, m, timings, drift, result["events"], title=title)
        axis["duration"] = max(m.duration_s, 1.0 / m.fps)
        if comparison is not None:
            with atomic_output(out / "compare.png") as tmp:
                render_compare(tmp, comparison["psnr"], comparison["ssim"], m.fps, title=f"{title} vs "
                               f"{Path(comparison['summary']['other']).name}")  # fmt: skip
        else:
            with contextlib.suppress(FileNotFoundError):
                (out / "compare.png").unlink()  # an older report's (only reached with overwrite)
        with atomic_output(out / "index.html") as tmp:
            render_html(
                tmp, out, video, result["events"], summary_line(result), axis, title=title,
                compare=comparison is not None,
            )  # fmt: skip
        with atomic_output(out / "report.json") as tmp:
            tmp.write_text(
                json.dumps(result, indent=1, ensure_ascii=False, allow_nan=False), encoding="utf-8"
            )
    except OSError as err:
        raise OutputError(f"Could not write the report into '{out}': {err}") from err
