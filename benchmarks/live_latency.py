"""Prompt-to-frame latency of `longlive live`: a session driven through its standard input, a new prompt
every few blocks, the latency of each switch read from its JSON events.

    python benchmarks/live_latency.py                          # tiny-random, CPU, 128x80, 30 s, 8 switches
    python benchmarks/live_latency.py --model M --device cuda --resolution 832x480

Latency is wall seconds from the line arriving (read by the session) to the first decoded frame under the
new prompt. Prints the median and maximum over the switches and the session's generation FPS.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny-random")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--resolution", default=None)
    parser.add_argument("--duration", default="30s")
    parser.add_argument("--every", type=int, default=4, help="blocks between prompts")
    parser.add_argument("--switches", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        events = Path(tmp) / "events.jsonl"
        cmd = [
            sys.executable,
            "-c",
            "from longlive_cli.cli import main; main()",
            "live",
            "-o",
            f"{tmp}/s.mp4",
        ]
        cmd += ["--model", args.model, "--device", args.device, "--duration", args.duration, "--seed", "1"]
        cmd += ["--events", str(events), "-q"] + (
            ["--resolution", args.resolution] if args.resolution else []
        )
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
        assert proc.stdin is not None and proc.stderr is not None
        proc.stdin.write(b"scene 0: a panda walks through a bamboo forest\n")
        proc.stdin.flush()
        sent, seen = 0, 0
        while proc.poll() is None and sent < args.switches:
            lines = events.read_text().splitlines() if events.exists() else []
            done = [json.loads(x) for x in lines[:-1] if '"block_done"' in x]
            if len(done) > seen and done[-1]["block"] >= (sent + 1) * args.every:
                seen = len(done)
                sent += 1
                proc.stdin.write(f"scene {sent}: the panda sits and eats bamboo, light {sent}\n".encode())
                proc.stdin.flush()
            time.sleep(0.01)
        proc.stdin.close()
        stderr = proc.stderr.read().decode()
        if proc.wait() != 0:
            sys.exit(f"live failed:\n{stderr}")
        all_events = [json.loads(x) for x in events.read_text().splitlines()]
    shown = [e["latency_s"] for e in all_events if e["event"] == "prompt_shown"]
    summary = next(e for e in all_events if e["event"] == "session_summary")
    started = next(e for e in all_events if e["event"] == "generation_started")
    print(
        f"{args.model} on {args.device}, {args.resolution or 'native'}, {started['num_blocks']} blocks, "
        f"a prompt every {args.every} blocks"
    )
    print(f"{'switches':>8} {'median s':>9} {'max s':>7} {'min s':>7} {'gen fps':>8}")
    print(
        f"{len(shown):>8} {statistics.median(shown):>9.3f} {max(shown):>7.3f} {min(shown):>7.3f} "
        f"{summary['generation_fps']:>8.1f}"
    )


if __name__ == "__main__":
    main()
