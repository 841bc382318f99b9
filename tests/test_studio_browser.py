"""The studio page (issue 23) in a real browser: Debian's chromium driven by Selenium 4 through
chromedriver, against a real ``longlive serve`` subprocess on tiny-random on the CPU.

One server and one browser for the module. The tests run in file order: the page loads offline, a session
started from the page plays in the ``<video>`` and takes a prompt typed into ``#prompt``, its storyboard
downloaded from the page regenerates its latents bit for bit, and the storyboard tab validates and renders.
Skipped (with the reason) where chromium, chromedriver or selenium is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver); "
    "`apt-get install chromium chromium-driver` (.ci/run does it)",
)
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the `test` extra)")

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from studio_server import Server, server_env, wait_until  # noqa: E402

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--window-size=1280,800",
]
WIDTH, HEIGHT = 64, 48
SEED = 11


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    return server_env(tmp_path_factory.mktemp("caches"))


@pytest.fixture(scope="module")
def server(tmp_path_factory, env) -> Iterator[Server]:
    sessions = tmp_path_factory.mktemp("sessions")
    srv = Server(sessions, env, "--save-latents")
    try:
        srv.wait_url(timeout=90)
        yield srv
    finally:
        srv.stop()
    assert "Traceback" not in "".join(srv.lines), "".join(srv.lines)[-3000:]


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(tmp_path_factory, server, downloads) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(str(CHROMEDRIVER))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    try:
        driver.get(server.wait_url(0))
        yield driver
    finally:
        driver.quit()


def js(driver, script: str, *args: Any) -> Any:
    return driver.execute_script(script, *args)


def save_screenshot(driver, tmp_path: Path, name: str) -> Path:
    """The page as a PNG in ``tmp_path``, copied to ``$LONGLIVE_TEST_ARTIFACTS`` when that is set."""
    path = tmp_path / name
    assert driver.save_screenshot(str(path)) and path.stat().st_size > 0
    artifacts = os.environ.get("LONGLIVE_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(artifacts) / name)
    return path


def set_text(driver, element_id: str, text: str) -> None:
    """Replace a text field's value as a paste would (an `input` event follows)."""
    js(
        driver,
        "const e = document.getElementById(arguments[0]); e.value = arguments[1];"
        "e.dispatchEvent(new Event('input', {bubbles: true}));",
        element_id,
        text,
    )


def test_the_page_loads_from_the_server_alone(browser, server):
    def health_line() -> str | None:  # "connecting…" until /api/health has answered
        text = browser.find_element(By.ID, "model").text
        return text if "tiny-random" in text else None

    model = wait_until(health_line, 20, "the health line")
    assert "cpu" in model
    # Every resource the page loaded came from the server itself: no CDN, no external fetch.
    urls = js(browser, "return performance.getEntriesByType('resource').map(e => e.name)")
    origin = server.url.rstrip("/").split("?")[0]
    assert urls and all(url.startswith(origin) for url in urls), urls
    for element_id in ("prompt", "video", "timeline", "state", "fps", "new-session", "tab-storyboard"):
        assert browser.find_element(By.ID, element_id)
    # tiny-random is a 1.0 model: no shots, so no cut toggle.
    assert not browser.find_element(By.ID, "cut").is_displayed()


def test_a_session_from_the_page_plays_takes_a_typed_prompt_and_reproduces(
    browser, server, downloads, env, tmp_path
):
    set_text(browser, "new-prompt", "a lighthouse at dusk")
    set_text(browser, "seed", str(SEED))
    set_text(browser, "resolution", f"{WIDTH}x{HEIGHT}")
    set_text(browser, "duration", "10s")
    browser.find_element(By.ID, "start").click()
    session = wait_until(lambda: (r := server.get("/api/session"))[0] == 200 and r[1], 20, "the session")
    assert session["width"] == WIDTH and session["seed"] == SEED

    # The video plays: its clock passes 2 s, at the session's width.
    video = "const v = document.getElementById('video'); return [v.currentTime, v.videoWidth, v.videoHeight];"
    wait_until(lambda: js(browser, video)[0] > 2.0, 30, "the <video> to play past 2 s")
    assert js(browser, video)[1:] == [WIDTH, HEIGHT]

    # A prompt typed into #prompt + Enter: the server reports it at a block, the timeline shows it there.
    text = "a storm rolls in over the lighthouse"
    box = browser.find_element(By.ID, "prompt")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)

    def switched() -> dict | None:
        prompts = server.get("/api/session")[1]["prompts"]
        return next((p for p in prompts if p["text"] == text), None)

    prompt = wait_until(switched, 20, "the typed prompt in GET /api/session")
    assert prompt["block"] > 0 and prompt["at_s"] > 0
    assert browser.find_element(By.ID, "prompt").get_attribute("value") == ""
    item = wait_until(
        lambda: browser.find_elements(
            By.CSS_SELECTOR, f"#timeline li.switch[data-block='{prompt['block']}']"
        ),
        10,
        "the switch in the timeline",
    )[0]
    assert text in item.text
    # The page measured the prompt-to-screen latency once the new prompt's first frame was shown.
    switch = wait_until(
        lambda: [s for s in js(browser, "return window.studioMetrics.switches") if s["latencyS"] is not None],
        15,
        "the switch's frame on screen",
    )[0]
    assert switch["block"] == prompt["block"] and 0 < switch["latencyS"] < 15
    # ...and, per block, the delay from its block_done event to its first frame on screen.
    delays = [
        b["delayS"] for b in js(browser, "return window.studioMetrics.blocks") if b["delayS"] is not None
    ]
    assert delays and all(d < 10 for d in delays)
    # The switch's thumbnail loads from the server, at most 160 px wide.
    thumb = wait_until(
        lambda: js(
            browser,
            "const i = document.querySelector(arguments[0]); return i && i.complete && i.naturalWidth;",
            f"#timeline li.switch[data-block='{prompt['block']}'] img",
        ),
        10,
        "the switch's thumbnail",
    )
    assert 0 < thumb <= 160
    # The recording link serves the MP4 made so far, while the session runs.
    head = js(
        browser,
        "return fetch(document.getElementById('download-video').href)"
        ".then(r => r.arrayBuffer()).then(b => Array.from(new Uint8Array(b.slice(4, 8))));",
    )
    assert bytes(head) == b"ftyp"
    save_screenshot(browser, tmp_path, "studio.png")

    # A reload rejoins the running session: its timeline at once, its video from the latest keyframe.
    browser.refresh()
    wait_until(
        lambda: browser.find_elements(
            By.CSS_SELECTOR, f"#timeline li.switch[data-block='{prompt['block']}']"
        ),
        10,
        "the timeline after a reload",
    )
    wait_until(lambda: js(browser, video)[0] > prompt["at_s"], 10, "the video after a reload")

    # The session ends (10 s planned); its storyboard, downloaded by the page, regenerates its latents.
    final = wait_until(
        lambda: (s := server.get("/api/session")[1])["state"] in ("finished", "interrupted", "failed") and s,
        40,
        "the session to finish",
    )
    assert final["state"] == "finished", final
    browser.find_element(By.ID, "download-storyboard").click()
    yaml_files = wait_until(
        lambda: [p for p in downloads.glob("*.yaml") if p.stat().st_size > 0], 15, "the storyboard download"
    )
    assert text in yaml_files[0].read_text()
    generated = tmp_path / "generated.safetensors"
    cmd = [sys.executable, "-c", "from longlive_cli.cli import main; main()", "generate", str(yaml_files[0])]
    out = ["-o", str(tmp_path / "g.mp4"), "--save-latents", str(generated)]
    run = subprocess.run(
        [*cmd, *out, "--model", "tiny-random", "--device", "cpu", "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr

    import torch

    from longlive_cli.latents import read_latents

    session_latents = read_latents(server.sessions / final["id"] / "latents.safetensors")[0]
    assert torch.equal(session_latents, read_latents(generated)[0])


STORYBOARD = f"""seed: 3
duration: 3s
resolution: {WIDTH}x{HEIGHT}
prompts:
  - at: 0s
    text: a red fox in the snow
  - at: 1.5s
    text: the fox runs into the forest
"""


def test_the_storyboard_tab_validates_and_renders(browser, server):
    wait_until(
        lambda: server.get("/api/session")[1].get("state") not in ("starting", "running", "paused"),
        30,
        "no running session",
    )
    browser.find_element(By.ID, "tab-storyboard").click()
    assert browser.find_element(By.ID, "storyboard-text").is_displayed()
    assert not browser.find_element(By.ID, "video").is_displayed()

    # A bad storyboard: the error, with its line.
    set_text(browser, "storyboard-text", STORYBOARD.replace("at: 1.5s", "at: 9s"))
    browser.find_element(By.ID, "validate").click()
    plan = browser.find_element(By.ID, "plan")
    wait_until(lambda: "line 7, column 5" in plan.text, 10, "the error with its line and column (`at: 9s`)")
    assert "error" in (plan.get_attribute("class") or "")

    # A good one: the plan, then a render with progress and a playable result.
    set_text(browser, "storyboard-text", STORYBOARD)
    browser.find_element(By.ID, "validate").click()
    wait_until(lambda: "blocks" in plan.text and "line" not in plan.text, 10, "the plan")
    assert "the fox runs into the forest" in plan.text
    browser.find_element(By.ID, "render").click()
    rendered = (
        "const v = document.getElementById('render-video');"
        "return !v.hidden && v.readyState >= 1 && v.duration > 0 ? v.duration : 0;"
    )
    duration = wait_until(lambda: js(browser, rendered), 40, "the rendered video")
    assert abs(duration - 45 / 16) < 0.2  # 3 s -> 12 latent frames -> 45 video frames at 16 fps
    progress = js(browser, "const p = document.getElementById('render-progress'); return [p.value, p.max];")
    assert progress[0] == progress[1] > 0
    link = browser.find_element(By.ID, "render-download").get_attribute("href")
    status, body = server.get(link.split(server.url.rstrip("/").split("?")[0], 1)[1])
    assert status == 200 and body[4:8] == b"ftyp"
    with contextlib.suppress(Exception):
        browser.find_element(By.ID, "tab-live").click()
