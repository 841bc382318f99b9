"""`longlive serve` under load (issue 23): generation FPS and server memory with N `/api/video` viewers
against none, on loopback.

Starts `longlive serve --port 0 --ahead 0` (tiny-random on the CPU by default), then for each viewer count:
connects that many WebSocket viewers (each reads everything, as a page does), starts a session, lets it run
`--seconds` wall seconds, stops it, and reads the session's generation FPS (frames per wall second) from
`GET /api/session`; the server's resident memory (VmRSS, sampled every 0.2 s) gives its peak. Prints a table.

    python benchmarks/serve_load.py --viewers 0 20 --seconds 30
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from websockets.sync.client import connect


class Viewer(threading.Thread):
    """One `/api/video` client reading every message (counts bytes and fragments)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.ws = connect(url.replace("http://", "ws://") + "api/video", open_timeout=30, max_size=None)
        self.ws.__enter__()
        self.bytes = self.fragments = 0
        self.stopped = False

    def run(self) -> None:
        try:
            while not self.stopped:
                message = self.ws.recv(timeout=1.0)
                if isinstance(message, bytes):
                    self.bytes += len(message)
                    self.fragments += 1
        except TimeoutError:
            if not self.stopped:
                self.run()
        except Exception:  # the connection closed
            pass

    def stop(self) -> None:
        self.stopped = True
        self.ws.close()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_server(model: str, sessions: Path, resolution: str) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "longlive_cli", "serve", "--model", model, "--device", "cpu", "--port", "0"]
    cmd += ["--ahead", "0", "--sessions-dir", str(sessions), "-q"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("longlive studio: "):
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
            return proc, line.split(": ", 1)[1].strip()
    raise SystemExit(f"longlive serve exited {proc.wait()}")


def measure(url: str, pid: int, viewers: int, seconds: float, resolution: str) -> dict:
    clients = [Viewer(url) for _ in range(viewers)]
    for c in clients:
        c.start()
    peak, before = 0.0, rss_mib(pid)
    with httpx.Client(base_url=url, timeout=30) as http:
        r = http.post("/api/session", json={"prompt": "a city at night", "resolution": resolution, "seed": 1})
        r.raise_for_status()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            peak = max(peak, rss_mib(pid))
            time.sleep(0.2)
        http.post("/api/session/stop")
        ends = ("finished", "interrupted", "failed")
        while (session := http.get("/api/session").json())["state"] not in ends:
            peak = max(peak, rss_mib(pid))
            time.sleep(0.1)
    time.sleep(1.0)  # the last fragments reach the viewers
    for c in clients:
        c.stop()
    received = [c.bytes for c in clients]
    return {
        "viewers": viewers,
        "fps": session["fps"],
        "video_s": session["video_s"],
        "rss_before": before,
        "rss_peak": peak,
        "viewer_mib": (sum(received) / len(received) / 2**20) if received else 0.0,
        "viewer_fragments": min((c.fragments for c in clients), default=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random")
    parser.add_argument("--resolution", default="128x80")
    parser.add_argument("--viewers", type=int, nargs="+", default=[0, 20])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(args.model, Path(tmp), args.resolution)
        try:
            rows = [measure(url, proc.pid, n, args.seconds, args.resolution) for n in args.viewers]
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    if args.json:
        print(json.dumps(rows))
        return
    print(f"longlive serve, {args.model} at {args.resolution} on the CPU, --ahead 0, {args.seconds:g} s each")
    print(
        f"{'viewers':>7} {'gen fps':>8} {'video s':>8} {'RSS before':>11} {'RSS peak':>9} {'MiB/viewer':>10}"
    )
    for r in rows:
        print(
            f"{r['viewers']:>7} {r['fps']:>8.1f} {r['video_s']:>8.1f} {r['rss_before']:>9.0f} M "
            f"{r['rss_peak']:>7.0f} M {r['viewer_mib']:>10.2f}"
        )
    if len(rows) >= 2 and rows[0]["fps"]:
        ratio = rows[-1]["fps"] / rows[0]["fps"]
        print(f"generation FPS with {rows[-1]['viewers']} viewers: {ratio:.1%} of none")


if __name__ == "__main__":
    main()
