"""The report's pictures and page: ``timeline.png``, ``compare.png`` (matplotlib, Agg backend: no display
needed) and ``index.html`` (self-contained apart from the video and the PNGs beside it; no CDN, no script
from elsewhere).
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from .measures import FrameMeasures
from .timing import SegmentTiming

__all__ = ["EVENT_COLOURS", "render_compare", "render_html", "render_timeline"]

#: One colour per event kind, in the plot and on the page.
EVENT_COLOURS = {
    "flicker": "#d62728",
    "freeze": "#1f77b4",
    "colour_drift": "#ff7f0e",
    "cut": "#9467bd",
    "switch": "#2ca02c",
}
_THUMBNAILS = 12  # at most, evenly spread over the video
_TEXT_CHARS = 48  # prompt text shown per boundary


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def render_timeline(
    path: Path,
    m: FrameMeasures,
    segments: list[SegmentTiming],
    drift: np.ndarray,
    events: list[dict[str, Any]],
    *,
    title: str,
) -> dict[str, float]:
    """Write ``timeline.png``: a contact sheet (thumbnails at their times, prompt boundaries and texts) above
    the measures over time (``mad``, SSIM, colour drift ΔE) with the events shaded.

    Returns:
        Where the time axis lies in the picture, for the page's click-to-seek: ``{"x0", "x1"}`` as fractions
        of the picture's width for 0 s and the video's end.
    """
    plt = _pyplot()
    duration = max(m.duration_s, 1.0 / m.fps)
    t = np.arange(m.num_frames) / m.fps
    fig, axes = plt.subplots(
        4, 1, figsize=(14, 8.5), sharex=True, gridspec_kw={"height_ratios": [1.3, 1, 1, 1]}, dpi=72
    )
    sheet, ax_mad, ax_ssim, ax_drift = axes
    _contact_sheet(sheet, m, duration)
    for seg in segments:
        for ax in axes:
            ax.axvline(seg.start_s, color="black", lw=0.8, ls="--")
        label = seg.text if len(seg.text) <= _TEXT_CHARS else seg.text[: _TEXT_CHARS - 1] + "…"
        sheet.text(seg.start_s, 1.02, f"{seg.index}: {label}", fontsize=7, rotation=8, va="bottom")
    ax_mad.plot(t, m.mad, lw=0.7, color="black")
    ax_mad.set_ylabel("frame diff\n(levels)")
    ax_ssim.plot(t, m.ssim, lw=0.7, color="black")
    ax_ssim.set_ylabel("SSIM to\nprevious")
    ax_drift.plot(t, drift, lw=0.7, color="black")
    ax_drift.set_ylabel("colour drift\nΔE*ab")
    ax_drift.set_xlabel("time (s)")
    for e in events:
        width = max(e["end_s"] - e["start_s"], 1.5 / m.fps)
        for ax in axes[1:]:
            ax.axvspan(e["start_s"], e["start_s"] + width, color=EVENT_COLOURS[e["kind"]], alpha=0.35, lw=0)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.5) for c in EVENT_COLOURS.values()]
    ax_mad.legend(handles, list(EVENT_COLOURS), loc="upper right", fontsize=7, ncol=5)
    ax_drift.set_xlim(0, duration)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    box = ax_drift.get_position()
    fig.savefig(path, format="png")
    plt.close(fig)
    return {"x0": round(box.x0, 5), "x1": round(box.x1, 5)}


def _contact_sheet(ax: Any, m: FrameMeasures, duration: float) -> None:
    """Up to ``_THUMBNAILS`` equal slots along the time axis, each showing the thumbnail nearest its start."""
    thumbs = m.thumbnails
    count = min(len(thumbs), _THUMBNAILS)
    slot = duration / max(count, 1)
    times = np.array([time_s for time_s, _ in thumbs])
    for k in range(count):
        image = thumbs[int(np.abs(times - k * slot).argmin())][1]
        ax.imshow(image, extent=(k * slot, (k + 0.96) * slot, 0, 1), aspect="auto")
    ax.set_ylim(0, 1)
    ax.set_yticks([])


def render_compare(path: Path, psnr: np.ndarray, ssim: np.ndarray, fps: float, title: str) -> None:
    """Write ``compare.png``: PSNR (dB; identical frames drawn at the top of the axis) and SSIM per frame."""
    plt = _pyplot()
    t = np.arange(len(psnr)) / fps
    finite = psnr[np.isfinite(psnr)]
    top = float(finite.max()) + 5 if finite.size else 100.0
    fig, (ax_p, ax_s) = plt.subplots(2, 1, figsize=(14, 4.5), sharex=True, dpi=72)
    ax_p.plot(t, np.where(np.isinf(psnr), top, psnr), lw=0.7, color="black")
    ax_p.set_ylabel("PSNR (dB)\n(top: identical)")
    ax_s.plot(t, ssim, lw=0.7, color="black")
    ax_s.set_ylabel("SSIM")
    ax_s.set_xlabel("time (s)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; }} video {{ max-width: 100%; }}
img {{ max-width: 100%; cursor: crosshair; }} td, th {{ padding: 2px 8px; text-align: left; }}
tr.event {{ cursor: pointer; }} tr.event:hover {{ background: #eee; }}
.swatch {{ display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.3em; }}
</style></head><body>
<h1>{title}</h1>
<p>{summary}</p>
<video id="video" src="{video}" controls preload="metadata"></video>
<div><img id="timeline" src="timeline.png" alt="timeline: thumbnails, prompts, measures and events"></div>
{compare}
<h2>Events (click one to seek the video)</h2>
<table><tr><th>kind</th><th>start (s)</th><th>end (s)</th><th>score</th><th>details</th></tr>
{rows}
</table>
<script>
const video = document.getElementById("video");
function seek(t) {{ video.currentTime = t; video.scrollIntoView(); }}
for (const row of document.querySelectorAll("tr.event")) {{
  row.addEventListener("click", () => seek(parseFloat(row.dataset.t)));
}}
const axis = {axis};
document.getElementById("timeline").addEventListener("click", (ev) => {{
  const box = ev.target.getBoundingClientRect();
  const f = ((ev.clientX - box.left) / box.width - axis.x0) / (axis.x1 - axis.x0);
  if (f >= 0 && f <= 1) seek(f * axis.duration);
}});
</script>
</body></html>
"""


def render_html(
    path: Path,
    folder: Path,
    video: Path,
    events: list[dict[str, Any]],
    summary_line: str,
    axis: dict[str, float],
    *,
    title: str,
    compare: bool,
) -> None:
    """Write ``index.html`` (to ``path``, a temporary name; it is read from ``folder``): the video (linked by
    its path relative to the page), ``timeline.png`` under it
    (clicking it seeks to that time), ``compare.png`` when there is one, and the events (clicking one seeks
    to its start)."""
    rows = []
    for e in events:
        details = {k: v for k, v in e.items() if k not in ("kind", "start_s", "end_s", "score")}
        swatch = f'<span class="swatch" style="background:{EVENT_COLOURS[e["kind"]]}"></span>'
        rows.append(
            f'<tr class="event" data-t="{e["start_s"]}"><td>{swatch}{e["kind"]}</td><td>{e["start_s"]}</td>'
            f"<td>{e['end_s']}</td><td>{e['score']}</td>"
            f"<td>{html.escape(json.dumps(details, ensure_ascii=False))}</td></tr>"
        )
    src = quote(Path(os.path.relpath(video, folder)).as_posix())
    page = _PAGE.format(
        title=html.escape(title),
        summary=html.escape(summary_line),
        video=html.escape(src, quote=True),
        compare='<div><img src="compare.png" alt="comparison: PSNR and SSIM per frame"></div>'
        if compare
        else "",
        rows="\n".join(rows) or "<tr><td colspan=5>no events</td></tr>",
        axis=json.dumps(axis),
    )
    path.write_text(page, encoding="utf-8")
