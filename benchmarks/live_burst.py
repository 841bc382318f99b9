"""A burst of prompt lines into `longlive live` (issue 20 item 5): how long the session takes and how many
prompt embeddings end up encoded and cached when N distinct lines arrive at once.

Runs `longlive live` on a model (default tiny-random, 64x48, CPU) with its embeddings cache in a temporary
folder, sends a first prompt, then N distinct lines in one write, and reports the session's wall time, the
time from the burst to the end of the first block after it, the number of `superseded` messages and of
embedding files cached. Before issue 20, every line was encoded and cached (5000 lines: 5000 files, the
first block 126 s late on the 1.3B model's encoder); now only the prompts that can be shown are.

    python benchmarks/live_burst.py                 # 5000 lines, tiny-random
    python benchmarks/live_burst.py --lines 20000 --duration 3s
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=5000)
    parser.add_argument("--model", default="tiny-random")
    parser.add_argument("--resolution", default="64x48")
    parser.add_argument("--duration", default="3s")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        events = folder / "events.jsonl"
        env = {**os.environ, "LONGLIVE_CACHE": str(folder / "cache"), "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "longlive_cli", "live", "--model", args.model, "--device", "cpu"]
        cmd += ["--resolution", args.resolution, "--duration", args.duration, "--seed", "1"]
        cmd += ["-o", str(folder / "s.mp4"), "--events", str(events)]
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert proc.stdin is not None and proc.stderr is not None
        proc.stdin.write(b"the first prompt\n")
        proc.stdin.flush()
        while not events.exists() or '"block_done"' not in events.read_text():
            if proc.poll() is not None:
                sys.exit(f"live ended early:\n{proc.stderr.read().decode()}")
            time.sleep(0.01)
        burst = time.monotonic()
        proc.stdin.write(b"".join(b"burst line %d\n" % i for i in range(args.lines)))
        proc.stdin.close()
        stderr = proc.stderr.read().decode()
        code = proc.wait()
        wall, after = time.monotonic() - start, time.monotonic() - burst
        done = [json.loads(x) for x in events.read_text().splitlines() if '"block_done"' in x]
        cached = len(list((folder / "cache").rglob("*.safetensors")))
    print(f"{args.model} {args.resolution} {args.duration}: {args.lines} lines in one write after block 0")
    print(f"  exit {code}, session wall {wall:.1f} s, burst to exit {after:.1f} s")
    print(f"  blocks {len(done)}, superseded messages {stderr.count('superseded before it was shown')}")
    print(f"  embeddings cached: {cached}")


if __name__ == "__main__":
    main()
