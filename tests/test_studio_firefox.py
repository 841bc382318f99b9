"""The studio page (issue 23: "it must work in Chromium and Firefox") in Firefox: Debian's ``firefox-esr``,
headless, driven over WebDriver BiDi by ``tests/browsers.py`` (no geckodriver), against a real
``longlive serve`` subprocess on tiny-random on the CPU.

One server and one browser for the module; the tests run in file order: the page loads and can play the
server's codec through Media Source Extensions, then a session started from the page's form plays in the
``<video>`` and takes a prompt typed into ``#prompt`` + Enter, then the Stop button ends it and the storyboard
tab validates and renders an MP4 that Firefox plays. Skipped (with the reason) where Firefox or libavcodec is
missing.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browsers import Firefox
from studio_server import Server, server_env, wait_until

FIREFOX = shutil.which("firefox-esr") or shutil.which("firefox")
# Firefox on Linux decodes H.264 through the system's FFmpeg (libavcodec, loaded at run time): without it
# MediaSource.isTypeSupported of the studio's codec is false and the page says it cannot show the video.
AVCODEC = ctypes.util.find_library("avcodec")

pytestmark = pytest.mark.skipif(
    FIREFOX is None or AVCODEC is None,
    reason="needs Firefox (`firefox-esr` or `firefox` on PATH) and libavcodec (Firefox's H.264 decoder on "
    "Linux); `apt-get install firefox-esr libavcodec59` (.ci/run does it)",
)

WIDTH, HEIGHT = 64, 48
SEED = 7


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    env = server_env(tmp_path_factory.mktemp("caches"))
    srv = Server(tmp_path_factory.mktemp("sessions"), env)
    try:
        srv.wait_url(timeout=90)
        yield srv
    finally:
        srv.stop()
    assert "Traceback" not in "".join(srv.lines), "".join(srv.lines)[-3000:]


@pytest.fixture(scope="module")
def firefox(tmp_path_factory, server) -> Iterator[Firefox]:
    assert FIREFOX is not None
    browser = Firefox(FIREFOX, tmp_path_factory.mktemp("firefox-profile"))
    try:
        browser.navigate(server.wait_url(0))
        yield browser
    finally:
        browser.close()


def video_state(firefox: Firefox) -> dict[str, Any]:
    return firefox.evaluate(
        "const v = document.getElementById('video');"
        "return {t: v.currentTime, w: v.videoWidth, h: v.videoHeight, paused: v.paused,"
        " error: v.error && v.error.message, metrics: window.studioMetrics.video};"
    )


def test_the_page_loads_and_firefox_can_play_the_servers_codec(firefox, server):
    assert "Firefox/" in firefox.version()
    model = wait_until(
        lambda: (
            (t := firefox.evaluate("return document.getElementById('model').textContent;"))
            and "tiny-random" in t
            and t
        ),
        20,
        "the health line",
    )
    assert "cpu" in model
    # The codec the server names before any session (media.py's default) is one Firefox's MSE takes; the
    # exact one of a session (from its avcC) is checked by the page itself in the next test.
    mime = 'video/mp4; codecs="avc1.42E01E"'
    assert firefox.evaluate(f"return MediaSource.isTypeSupported({json.dumps(mime)});") is True
    # Every resource came from the server alone.
    urls = firefox.evaluate("return performance.getEntriesByType('resource').map((e) => e.name);")
    origin = server.url.rstrip("/").split("?")[0]
    assert urls and all(url.startswith(origin) for url in urls), urls


def test_a_session_from_the_page_plays_and_takes_a_typed_prompt(firefox, server, tmp_path):
    form = {"new-prompt": "a lighthouse at dusk", "seed": str(SEED), "resolution": f"{WIDTH}x{HEIGHT}"}
    form["duration"] = "10s"
    firefox.evaluate(
        f"for (const [id, value] of Object.entries({json.dumps(form)})) {{"
        " const e = document.getElementById(id); e.value = value;"
        " e.dispatchEvent(new Event('input', {bubbles: true})); }"
        "document.getElementById('start').click();"
    )
    session = wait_until(lambda: (r := server.get("/api/session"))[0] == 200 and r[1], 20, "the session")
    assert session["width"] == WIDTH and session["seed"] == SEED

    # The codec the server names in the session's `init` message (WS /api/video, read as the page reads it)
    # is one Firefox's Media Source Extensions take.
    init = firefox.evaluate(
        "const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/api/video');"
        "try { return await new Promise((resolve, reject) => {"
        " setTimeout(() => reject(new Error('no init message in 10 s')), 10000);"
        " ws.onerror = () => reject(new Error('WS /api/video failed'));"
        " ws.onmessage = (e) => { if (typeof e.data !== 'string') return; const m = JSON.parse(e.data);"
        "  if (m.type === 'init') resolve({mime: m.mime, ok: MediaSource.isTypeSupported(m.mime)}); };"
        "}); } finally { ws.close(); }"
    )
    print(f"firefox: the session's init: {init}")
    assert init["mime"].startswith('video/mp4; codecs="avc1.') and init["ok"] is True, init

    # The page took that codec too (no "cannot play" overlay); the video plays: its clock passes 2 s, at
    # the session's width.
    started = time.monotonic()
    state = wait_until(lambda: (s := video_state(firefox))["t"] > 2.0 and s, 30, "the <video> past 2 s")
    print(f"firefox: video past 2 s {time.monotonic() - started:.1f} s after the session started: {state}")
    assert state["metrics"]["unsupported"] is None and state["metrics"]["inits"] >= 1, state
    assert state["metrics"]["appended"] > 0 and not state["metrics"]["errors"], state
    assert (state["w"], state["h"]) == (WIDTH, HEIGHT) and state["error"] is None, state

    # A prompt typed into #prompt + Enter (the keydown the page listens for): the server reports it at a
    # block, and the box is emptied.
    text = "a storm rolls in over the lighthouse"
    firefox.evaluate(
        "const box = document.getElementById('prompt');"
        f"box.value = {json.dumps(text)}; box.dispatchEvent(new Event('input', {{bubbles: true}}));"
        "box.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', code: 'Enter', bubbles: true,"
        " cancelable: true}));"
    )

    def switched() -> dict | None:
        prompts = server.get("/api/session")[1]["prompts"]
        return next((p for p in prompts if p["text"] == text), None)

    prompt = wait_until(switched, 20, "the typed prompt in GET /api/session")
    assert prompt["block"] > 0 and prompt["at_s"] > 0
    assert firefox.evaluate("return document.getElementById('prompt').value;") == ""
    # The video kept playing after the switch, and the page saw no media error.
    later = wait_until(lambda: (s := video_state(firefox))["t"] > state["t"] and s, 10, "playback to go on")
    assert later["error"] is None and not later["metrics"]["errors"], later
    shot = firefox.screenshot(tmp_path / "studio-firefox.png")
    assert shot.stat().st_size > 0
    artifacts = os.environ.get("LONGLIVE_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artifacts) / shot.name)
    errors = [line for line in firefox.console if line.startswith("error")]
    assert not errors, errors


STORYBOARD = """\
fps: 16
duration: 3s
resolution: 64x48
seed: 3
prompts:
  - at: 0s
    text: a red fox in the snow
  - at: 1.5s
    text: the fox runs into the forest
"""


def test_stop_then_the_storyboard_tab_validates_and_renders_a_playable_mp4(firefox, server):
    # The page's Stop button ends the session.
    firefox.evaluate("document.getElementById('stop').click();")
    wait_until(
        lambda: server.get("/api/session")[1].get("state") not in ("starting", "running", "paused"),
        30,
        "the session to stop",
    )
    firefox.evaluate("document.getElementById('tab-storyboard').click();")

    def validate(text: str) -> None:
        firefox.evaluate(
            f"const e = document.getElementById('storyboard-text'); e.value = {json.dumps(text)};"
            "e.dispatchEvent(new Event('input', {bubbles: true}));"
            "document.getElementById('validate').click();"
        )

    plan = "const p = document.getElementById('plan'); return [p.textContent, p.className];"
    validate(STORYBOARD.replace("at: 1.5s", "at: 9s"))
    _text, kind = wait_until(
        lambda: (r := firefox.evaluate(plan)) and "line 8, column 5" in r[0] and r,
        10,
        "the error with its line",
    )
    assert "error" in kind
    validate(STORYBOARD)
    wait_until(lambda: "blocks" in (t := firefox.evaluate(plan)[0]) and "line" not in t, 10, "the plan")

    # The render plays in Firefox's own <video> (a whole MP4, not Media Source Extensions).
    firefox.evaluate("document.getElementById('render').click();")
    rendered = (
        "const v = document.getElementById('render-video');"
        "return !v.hidden && v.readyState >= 1 && v.duration > 0"
        " ? [v.duration, v.videoWidth, v.videoHeight] : null;"
    )
    duration, width, height = wait_until(lambda: firefox.evaluate(rendered), 40, "the rendered video")
    assert abs(duration - 45 / 16) < 0.2 and (width, height) == (64, 48)  # 3 s -> 45 frames at 16 fps
    errors = [line for line in firefox.console if line.startswith("error")]
    assert not errors, errors
