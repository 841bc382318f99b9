"""Prompt-to-screen latency of the studio page: a real `longlive serve`, Debian's chromium (headless, through
chromedriver and Selenium) playing the live video, prompts typed into the page's prompt box.

    python benchmarks/studio_latency.py                        # tiny-random, CPU, 128x80, 10 switches
    python benchmarks/studio_latency.py --model M --device cuda --resolution 832x480
    python benchmarks/studio_latency.py --screenshot docs/images/studio.png   # also the README screenshot
    python benchmarks/studio_latency.py --url http://127.0.0.1:8000/        # a server already running

For each switch the page records (window.studioMetrics) the wall time its POST was sent and the wall time the
`<video>` first presented a frame at or after the switch's video time (requestVideoFrameCallback): the
prompt-to-screen latency. It includes the server's pacing buffer (`--ahead`, default 2 s of video: generation
runs at most that far ahead of what viewers are sent), the wait for the next block, the re-cache, the decode,
the H.264 encode and the WebSocket/MSE path. For each block the page also records the delay from its
`block_done` event arriving to its first frame being shown ("decode to screen"), which includes the same
pacing buffer; `--ahead 0` shows the transport alone (generation then runs as fast as it can, and the page
jumps to the live edge). Prints the median and maximum of both, and the server's own prompt-to-decoded-frame
latency (`latency_s` in the session's prompts) for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
PROMPTS = [
    "a lighthouse on a cliff at dusk, waves rolling in",
    "a storm gathers over the lighthouse, lightning on the horizon",
    "rain lashes the lighthouse, its beam sweeping the dark sea",
    "the storm clears, stars over a calm sea",
    "sunrise paints the lighthouse gold",
    "seagulls circle the lighthouse in the morning light",
    "a fishing boat passes the lighthouse",
    "fog rolls in and swallows the coast",
    "the lighthouse beam cuts through the fog",
    "night falls, the lighthouse alone under the moon",
    "snow falls softly on the lighthouse",
]


def start_server(args: argparse.Namespace, sessions: str) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-c", "from longlive_cli.cli import main; main()", "serve", "--port", "0"]
    cmd += ["--model", args.model, "--device", args.device, "--sessions-dir", sessions, "--ahead", args.ahead]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    found: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            match = re.search(r"longlive studio: (http://\S+)", line)
            if match and not found:
                found.append(match.group(1))
                ready.set()
            elif not found:
                sys.stderr.write(line)
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    ready.wait(args.load_timeout)
    if not found:
        proc.kill()
        raise SystemExit("longlive serve did not print its URL")
    return proc, found[0]


def open_browser(width: int, height: int) -> Any:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='studio-chromium-')}")
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_script_timeout(30)
    # The viewport (not the window) at the asked size: what the screenshot shows.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
    return driver


def wait(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def metrics(driver: Any) -> dict:
    return driver.execute_script("return window.studioMetrics")


def shown(driver: Any) -> int:
    """Switches whose first frame the page has shown; exits when the session ended before."""
    state = driver.find_element(By.ID, "state").text.lower()
    if state in ("finished", "interrupted", "failed"):
        raise SystemExit(
            f"the session ended ({state}) before the switches were done: use a longer --duration"
        )
    return sum(s["latencyS"] is not None for s in metrics(driver)["switches"])


def fill(driver: Any, element_id: str, text: str) -> None:
    driver.execute_script("document.getElementById(arguments[0]).value = arguments[1];", element_id, text)


def run(args: argparse.Namespace, url: str) -> None:
    driver = open_browser(1280, 800)
    try:
        driver.get(url)
        wait(lambda: driver.find_element(By.ID, "model").text.startswith(args.model), 30, "the page")
        fill(driver, "new-prompt", PROMPTS[0])
        fill(driver, "seed", "1")
        fill(driver, "duration", args.duration)
        if args.resolution:
            fill(driver, "resolution", args.resolution)
        driver.find_element(By.ID, "start").click()
        wait(
            lambda: driver.execute_script("return document.getElementById('video').currentTime") > 1.0,
            args.load_timeout,
            "the video to play",
        )
        for i in range(1, args.switches + 1):
            time.sleep(args.every)
            box = driver.find_element(By.ID, "prompt")
            box.send_keys(PROMPTS[i % len(PROMPTS)])
            box.send_keys(Keys.ENTER)
            wait(
                lambda i=i: shown(driver) >= i,
                30,
                f"switch {i} on screen",
            )
            if args.screenshot and i == min(4, args.switches):
                Path(args.screenshot).parent.mkdir(parents=True, exist_ok=True)
                time.sleep(0.5)  # the thumbnail of the last switch loaded
                driver.save_screenshot(args.screenshot)
                print(f"screenshot: {args.screenshot}")
        report(metrics(driver), url)
        driver.execute_script("document.getElementById('stop').click()")
    finally:
        driver.quit()


def stats(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"median {statistics.median(values):.3f} s, max {max(values):.3f} s over {len(values)}"


def report(data: dict, url: str) -> None:
    with urllib.request.urlopen(url.split("?")[0].rstrip("/") + "/api/session", timeout=10) as response:
        session = json.load(response)
    switches = [s for s in data["switches"] if s["latencyS"] is not None]
    blocks = [b["delayS"] for b in data["blocks"] if b["delayS"] is not None]
    server = [p["latency_s"] for p in session["prompts"] if p["block"] > 0 and p.get("latency_s") is not None]
    size = f"{session['width']}x{session['height']}"
    speed = f"generation {session['fps']:.1f} fps (video {session['video_fps']} fps)"
    shown = f"frames shown {data['frames']}, live-edge jumps {data['video']['jumps']}"
    print(f"session {session['id']}: {size}, {speed}, {shown}")
    print(f"prompt-to-screen (POST -> first frame shown): {stats([s['latencyS'] for s in switches])}")
    print(f"prompt-to-decoded-frame (server's latency_s):  {stats(server)}")
    print(f"decode-to-screen (block_done -> first frame):  {stats(blocks)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny-random")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--resolution", default=None, help="WxH; default: the model's native size")
    parser.add_argument("--ahead", default="2s", help="the server's pacing buffer (longlive serve --ahead)")
    parser.add_argument("--switches", type=int, default=10)
    parser.add_argument("--every", type=float, default=2.5, help="seconds between prompts")
    parser.add_argument(
        "--duration", default="240s", help="planned; the session is stopped after the switches"
    )
    parser.add_argument("--load-timeout", type=float, default=600, help="seconds for the model to load")
    parser.add_argument("--screenshot", default=None, help="save a PNG of the page after the 4th switch")
    parser.add_argument(
        "--url", default=None, help="drive a server already running there instead of starting one"
    )
    args = parser.parse_args()
    if not (Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()):
        raise SystemExit(
            "needs /usr/bin/chromium and /usr/bin/chromedriver (apt-get install chromium chromium-driver)"
        )
    if args.url:
        run(args, args.url)
        return
    with tempfile.TemporaryDirectory() as sessions:
        proc, url = start_server(args, sessions)
        try:
            run(args, url)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
