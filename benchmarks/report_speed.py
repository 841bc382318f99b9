"""How long `longlive report` takes on a long video (issue 24's target: a 240 s 832x480 video in under 60 s
on 2 cores).

    python benchmarks/report_speed.py                          # 240 s, 832x480, 16 fps
    python benchmarks/report_speed.py --seconds 30 --size 416x240

The video is synthesized by the ffmpeg bundled with imageio-ffmpeg (``lavfi`` ``testsrc2``: moving test
pattern, H.264 CRF 18 yuv420p, as the project writes) into a temporary folder; its making is not timed.
Then :func:`longlive_cli.report` runs once on it (decode + scale by ffmpeg, measures, cut detection, events,
``timeline.png``, ``index.html``, ``report.json``) and the wall time, CPU time and the machine's load
average are printed. On a shared machine the load says how much of the 2 cores the run had.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path


def synthesize(path: Path, seconds: float, size: str, fps: int) -> None:
    import imageio_ffmpeg

    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-y", str(path),
        ],
        check=True,
        timeout=1800,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--size", default="832x480", help="WxH of the synthesized video")
    parser.add_argument("--fps", type=int, default=16)
    args = parser.parse_args()

    from longlive_cli import report

    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "long.mp4"
        started = time.perf_counter()
        synthesize(video, args.seconds, args.size, args.fps)
        made = time.perf_counter() - started
        print(f"synthesized {args.seconds:g} s {args.size} at {args.fps} fps in {made:.1f} s")
        load_before = os.getloadavg()
        cpu_before = _cpu_s()
        started = time.perf_counter()
        result = report(video, Path(folder) / "report")
        wall = time.perf_counter() - started
        cpu = _cpu_s() - cpu_before
        load_after = os.getloadavg()
    s = result["summary"]
    print(
        f"report: {wall:.1f} s wall, {cpu:.1f} s CPU (this process and its ffmpeg children), "
        f"{s['frames']} frames ({s['frames'] / wall:.0f} frames/s), events {s['events']}"
    )
    print(
        f"cores {os.cpu_count()}, load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}"
    )


def _cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    main()
