"""The rules that turn per-frame measures (:mod:`longlive_cli.quality.measures`) into events, and the
aggregates per second and per prompt segment.

Times: frame ``i`` is shown at ``i / fps`` seconds; a consecutive-frame measure of frame ``i`` (the change
from ``i-1`` to ``i``) is placed at ``i / fps``. Every threshold is a module constant, named in the rule:

- ``flicker``: a frame is a *jump* when its ``mad`` exceeds ``FLICKER_RATIO`` x the rolling median of
  ``mad`` over ``±FLICKER_CONTEXT_S`` seconds (frozen frames left out) plus ``FLICKER_FLOOR`` levels (the
  content's own motion sets the bar). Jumps closer than ``FLICKER_GAP_S`` to each other form a burst; a
  burst of at least ``FLICKER_MIN_JUMPS`` jumps is a flicker event (a single jump is a cut or a switch).
  ``start_s``: the frame before its first jump; ``end_s``: its last jump; ``score``: mean ``mad`` of its jumps
  (8-bit levels).
- ``freeze``: a run of frames with ``mad < FREEZE_MAD`` levels (near-identical to the previous frame) lasting
  at least ``FREEZE_MIN_S`` seconds. ``start_s``: the first frame of the held picture; ``end_s``: the last
  frame of the run; ``score``: its length in seconds.
- ``colour_drift``: per prompt segment, the reference colour is the mean CIELAB ``(L*, a*, b*)`` over the
  segment's first second; a frame's drift is the CIE76 colour difference (Euclidean ΔE*ab) between its mean
  Lab colour and the reference. A run of frames with drift above ``DRIFT_ONSET_DE`` (2.3: one just-noticeable
  difference) that stays above ``DRIFT_DE`` for at least ``DRIFT_MIN_S`` seconds is an event. ``start_s`` /
  ``end_s``: the run above the onset level; ``score``: the largest ΔE.
- ``cut``: PySceneDetect's ``ContentDetector`` (threshold ``measures.CUT_THRESHOLD``, scenes of at least
  ``measures.CUT_MIN_SCENE_S``), except inside a flicker event (one of its jumps). ``start_s = end_s``: the
  first frame of the new scene; ``score``: ``mad`` across the cut (levels).
- ``switch``: one event per prompt switch (from the storyboard or the embedded plan) at video frame ``k``:
  the change across the switch is the largest ``mad`` of frames ``k - SWITCH_HALF_WINDOW .. k +
  SWITCH_HALF_WINDOW`` (the VAE decodes 4 frames per latent frame, so the switch shows within a few frames);
  the change around it is the median ``mad`` of the frames within ``SWITCH_CONTEXT_S`` seconds outside that
  window. ``score`` (= ``abruptness``) is across / max(around, ``SWITCH_EPS``); ``abrupt`` is
  ``abruptness >= SWITCH_ABRUPT``. ``start_s`` / ``end_s``: the window; ``transition_s``: the planned
  transition into the prompt (0: a hard switch).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from .measures import FrameMeasures
from .timing import SegmentTiming

__all__ = [
    "aggregate_per_second",
    "aggregate_segments",
    "colour_drift",
    "find_events",
    "finite",
    "mean_of",
    "summarize",
]

FLICKER_RATIO = 3.0
FLICKER_FLOOR = 3.0  # 8-bit levels
FLICKER_CONTEXT_S = 2.0
FLICKER_GAP_S = 0.5
FLICKER_MIN_JUMPS = 3
FREEZE_MAD = 1.0  # 8-bit levels
FREEZE_MIN_S = 0.5
DRIFT_ONSET_DE = 2.3
DRIFT_DE = 10.0
DRIFT_MIN_S = 1.0
SWITCH_HALF_WINDOW = 3  # frames
SWITCH_CONTEXT_S = 2.0
SWITCH_EPS = 0.5  # 8-bit levels: the change around a switch in a near-still video
SWITCH_ABRUPT = 4.0


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(first, last)`` index of every run of True in ``mask`` (inclusive)."""
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _event(kind: str, start: float, end: float, score: float, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "start_s": round(start, 4),
        "end_s": round(end, 4),
        "score": round(score, 3),
    } | extra


def colour_drift(m: FrameMeasures, segments: list[SegmentTiming]) -> np.ndarray:
    """Per-frame ΔE*ab (CIE76) of the frame's mean Lab colour from its segment's first-second mean ``[N]``."""
    drift = np.zeros(m.num_frames)
    second = max(1, round(m.fps))
    for a, b in _segment_bounds(m, segments):
        reference = m.lab[a : min(b, a + second)].mean(axis=0)
        drift[a:b] = np.linalg.norm(m.lab[a:b] - reference, axis=1)
    return drift


def _frame_of(segment: SegmentTiming, m: FrameMeasures) -> int:
    """The frame of this video shown at the segment's start time: its planned frame at the plan's frame
    rate, the nearest one in a copy at another frame rate."""
    return round(segment.start_s * m.fps)


def _segment_bounds(m: FrameMeasures, segments: list[SegmentTiming]) -> list[tuple[int, int]]:
    starts = [min(max(0, _frame_of(s, m)), m.num_frames) for s in segments] or [0]
    starts[0] = 0
    ends = [*starts[1:], m.num_frames]
    return [(a, b) for a, b in zip(starts, ends, strict=True) if b > a]


def _flicker(m: FrameMeasures) -> list[dict[str, Any]]:
    from scipy.ndimage import generic_filter

    mad = np.nan_to_num(m.mad, nan=0.0)
    moving = np.where(m.mad >= FREEZE_MAD, m.mad, np.nan)  # a frozen stretch says nothing of the motion
    size = 2 * round(FLICKER_CONTEXT_S * m.fps) + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows (a still video): no context
        context = generic_filter(moving, np.nanmedian, size=size, mode="constant", cval=np.nan)
    context = np.nan_to_num(context, nan=0.0)
    jumps = np.flatnonzero(mad > FLICKER_RATIO * context + FLICKER_FLOOR)
    events: list[dict[str, Any]] = []
    burst: list[int] = []
    for j in [*jumps.tolist(), None]:
        if j is not None and (not burst or (j - burst[-1]) <= FLICKER_GAP_S * m.fps):
            burst.append(j)
            continue
        if len(burst) >= FLICKER_MIN_JUMPS:
            score = float(mad[burst].mean())
            events.append(
                _event("flicker", (burst[0] - 1) / m.fps, burst[-1] / m.fps, score, jumps=len(burst))
            )
        burst = [j] if j is not None else []
    return events


def _freezes(m: FrameMeasures) -> list[dict[str, Any]]:
    events = []
    for a, b in _runs(m.mad < FREEZE_MAD):  # NaN (frame 0) compares False
        length_s = (b - a + 2) / m.fps  # frames a-1 .. b show the same picture
        if length_s >= FREEZE_MIN_S:
            events.append(_event("freeze", (a - 1) / m.fps, b / m.fps, length_s))
    return events


def _drifts(m: FrameMeasures, drift: np.ndarray) -> list[dict[str, Any]]:
    events = []
    for a, b in _runs(drift > DRIFT_ONSET_DE):
        if np.count_nonzero(drift[a : b + 1] > DRIFT_DE) >= DRIFT_MIN_S * m.fps:
            events.append(_event("colour_drift", a / m.fps, b / m.fps, float(drift[a : b + 1].max())))
    return events


def _switches(m: FrameMeasures, segments: list[SegmentTiming]) -> list[dict[str, Any]]:
    mad = np.nan_to_num(m.mad, nan=0.0)
    n, half, context = m.num_frames, SWITCH_HALF_WINDOW, round(SWITCH_CONTEXT_S * m.fps)
    events = []
    for seg in segments[1:]:
        k = _frame_of(seg, m)
        if not 0 < k < n:
            continue
        lo, hi = max(1, k - half), min(n - 1, k + half)
        around = np.concatenate([mad[max(1, lo - context) : lo], mad[hi + 1 : hi + 1 + context]])
        across = float(mad[lo : hi + 1].max())
        typical = float(np.median(around)) if around.size else 0.0
        ratio = across / max(typical, SWITCH_EPS)
        events.append(
            _event(
                "switch",
                lo / m.fps,
                hi / m.fps,
                ratio,
                abruptness=round(ratio, 3),
                abrupt=ratio >= SWITCH_ABRUPT,
                at_s=round(k / m.fps, 4),
                frame=k,
                segment=seg.index,
                text=seg.text,
                change_across=round(across, 3),
                change_around=round(typical, 3),
                transition_s=seg.transition_s,
            )
        )
    return events


def find_events(m: FrameMeasures, segments: list[SegmentTiming], drift: np.ndarray) -> list[dict[str, Any]]:
    """Every event of every kind (module docstring), sorted by ``start_s``."""
    mad = np.nan_to_num(m.mad, nan=0.0)
    flicker = _flicker(m)
    cuts = [
        _event("cut", c / m.fps, c / m.fps, float(mad[c]))
        for c in m.cuts
        if not any(e["start_s"] <= c / m.fps <= e["end_s"] for e in flicker)  # a flicker's jump, not a cut
    ]
    events = flicker + _freezes(m) + _drifts(m, drift) + cuts + _switches(m, segments)
    return sorted(events, key=lambda e: (e["start_s"], e["kind"]))


def finite(value: float) -> float | str | None:
    """A float for JSON: rounded; ``inf`` as the string ``"inf"`` (``"-inf"``), NaN as ``null``."""
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return round(float(value), 4)


def mean_of(values: np.ndarray) -> float | str | None:
    """The mean of the non-NaN ``values`` for JSON; their median when some are infinite (identical frames'
    PSNR: ``"inf"`` when more than half are); None when there are none."""
    values = values[~np.isnan(values)]
    if not values.size:
        return None
    return finite(float(np.mean(values))) if np.isfinite(values).all() else finite(float(np.median(values)))


def _stats(m: FrameMeasures, drift: np.ndarray, a: int, b: int) -> dict[str, Any]:
    return {
        "flicker_mad": mean_of(m.mad[a:b]),
        "ssim": mean_of(m.ssim[a:b]),
        "psnr": mean_of(m.psnr[a:b]),
        "lab": [finite(v) for v in m.lab[a:b].mean(axis=0)],
        "lab_std": [finite(v) for v in m.lab_std[a:b].mean(axis=0)],
        "drift_de": finite(float(drift[a:b].max())),
    }


def aggregate_per_second(m: FrameMeasures, drift: np.ndarray) -> list[dict[str, Any]]:
    """One entry per second of video: ``{"t": start second, ...}`` with the means of the measures over its
    frames (``psnr``: the median when a frame pair is identical), ``drift_de``: the largest drift."""
    step = max(1, round(m.fps))
    return [
        {"t": round(a / m.fps, 4)} | _stats(m, drift, a, min(a + step, m.num_frames))
        for a in range(0, m.num_frames, step)
    ]


def aggregate_segments(
    m: FrameMeasures, segments: list[SegmentTiming], drift: np.ndarray, events: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One entry per prompt segment: its index, text, ``start_s``/``end_s``, the measures as
    :func:`aggregate_per_second`, and its event counts by kind."""
    timings = segments or [SegmentTiming(0, "", 0.0, 0)]
    out = []
    for seg, (a, b) in zip(timings, _segment_bounds(m, timings), strict=False):
        start, end = a / m.fps, b / m.fps
        counts: dict[str, int] = {}
        for e in events:
            if start <= e["start_s"] < end:
                counts[e["kind"]] = counts.get(e["kind"], 0) + 1
        entry = {"index": seg.index, "text": seg.text, "start_s": round(start, 4), "end_s": round(end, 4)}
        out.append(entry | _stats(m, drift, a, b) | {"events": counts})
    return out


def summarize(m: FrameMeasures, drift: np.ndarray, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Whole-video numbers: the means, VBench's temporal-flickering score ``(255 - mean mad) / 255``, the
    largest drift, and the event counts by kind (``abrupt_switches`` among the switches)."""
    counts = {kind: 0 for kind in ("flicker", "freeze", "colour_drift", "cut", "switch")}
    for e in events:
        counts[e["kind"]] += 1
    mad = m.mad[~np.isnan(m.mad)]
    stats = _stats(m, drift, 0, m.num_frames)
    return {
        "frames": m.num_frames,
        "duration_s": round(m.duration_s, 3),
        "flicker_mad": stats["flicker_mad"],
        "vbench_temporal_flickering": finite((255.0 - float(mad.mean())) / 255.0) if mad.size else None,
        "ssim": stats["ssim"],
        "psnr": stats["psnr"],
        "drift_de_max": stats["drift_de"],
        "events": counts,
        "abrupt_switches": sum(1 for e in events if e["kind"] == "switch" and e["abrupt"]),
    }
