"""`longlive serve` (issue 23): the API over one tiny-random model on the CPU (one app for the module, through
FastAPI's TestClient), the live video over a WebSocket, render jobs, and one real `longlive serve` process
stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import imageio_ffmpeg
import pytest
import torch

from longlive_cli.latents import read_latents
from longlive_cli.serve.media import VIEWER_QUEUE_FRAGMENTS, Viewer, read_box

CMD = [sys.executable, "-c", "from longlive_cli.cli import main; main()"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
WS = "ws://127.0.0.1"
SESSION = {"prompt": "a lighthouse at dusk", "resolution": "64x48", "seed": 5}


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from longlive_cli.api import LongLive
    from longlive_cli.serve.studio import Studio

    ll = LongLive.from_pretrained("tiny-random", device="cpu")
    ll.load()
    ll.text_encoder(keep=True)
    studio = Studio(ll, sessions_dir=tmp_path_factory.mktemp("sessions"), save_latents=True, ahead_s=0)
    yield studio
    studio.shutdown(30)


@pytest.fixture(scope="module")
def client(studio):
    from fastapi.testclient import TestClient

    from longlive_cli.serve.app import create_app

    with TestClient(create_app(studio), base_url="http://127.0.0.1") as client:
        yield client


@pytest.fixture
def paced(studio):
    """Sessions paced to real time (0.25 s of video ahead), so that a test can steer them."""
    studio.ahead_s = 0.25
    yield studio
    studio.ahead_s = 0


def wait_for(client, pred, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session = client.get("/api/session").json()
        if pred(session):
            return session
        time.sleep(0.05)
    raise AssertionError(f"timed out: {session}")


def ended(client) -> dict:
    return wait_for(client, lambda s: s["state"] in ("finished", "interrupted", "failed"))


def stop_any(client) -> None:
    if client.get("/api/session").status_code == 200:
        client.post("/api/session/stop")
        ended(client)


def decoded_frames(path: Path) -> tuple[int, str]:
    """Frames ffmpeg decodes from ``path`` and its stream line (``... 64x48 ...``)."""
    run = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    frames = [line for line in run.stderr.replace("\r", "\n").splitlines() if line.startswith("frame=")]
    stream = next(line for line in run.stderr.splitlines() if "Video:" in line)
    return int(frames[-1].split("=")[1].split()[0]), stream


def test_health_names_the_model_and_what_it_can_do(client):
    health = client.get("/api/health").json()
    assert health["ok"] and health["model"] == "tiny-random" and health["device"] == "cpu"
    assert health["architecture"] == "longlive-1.0" and health["fps"] == 16
    assert health["block_seconds"] == 0.75 and health["native_resolution"] == "128x80"
    assert health["shots"] is False and health["image"] is False and health["transitions"] is True
    assert health["blends"] == ["linear", "slerp"] and health["max_prompt_chars"] == 10000


def test_no_session_yet_is_404_and_steering_is_409(studio):
    from fastapi.testclient import TestClient

    from longlive_cli.serve.app import create_app
    from longlive_cli.serve.studio import Studio

    fresh = Studio(studio.ll, sessions_dir=studio.sessions_dir)
    with TestClient(create_app(fresh), base_url="http://127.0.0.1") as c:
        r = c.get("/api/session")
        assert r.status_code == 404 and "POST /api/session" in r.json()["error"]
        for path in ("pause", "resume", "stop"):
            assert c.post(f"/api/session/{path}").status_code == 409
        assert c.post("/api/session/prompt", json={"text": "x"}).status_code == 409


def test_a_session_takes_prompts_at_blocks_pauses_and_its_storyboard_reproduces_the_latents(
    client, studio, paced, tmp_path
):
    stop_any(client)
    r = client.post("/api/session", json=SESSION | {"duration": "4s"})
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["state"] in ("starting", "running") and first["width"] == 64 and first["seed"] == 5
    assert client.post("/api/session", json=SESSION).status_code == 409
    wait_for(client, lambda s: s["blocks_done"] >= 1)
    r = client.post("/api/session/prompt", json={"text": "a lighthouse in a storm", "transition": "1s"})
    assert r.status_code == 202 and r.json() == {"queued": "a lighthouse in a storm"}
    paused = client.post("/api/session/pause").json()
    assert paused["state"] == "paused"
    held = wait_for(client, lambda s: s["ahead_s"] == 0)["blocks_done"]
    time.sleep(0.6)
    assert client.get("/api/session").json()["blocks_done"] <= held + 1  # the block in flight at most
    assert client.post("/api/session/resume").json()["state"] == "running"
    done = ended(client)
    n = done["num_blocks"]
    assert done["state"] == "finished" and done["blocks_done"] == n == 5
    prompts = done["prompts"]
    assert [p["text"] for p in prompts] == ["a lighthouse at dusk", "a lighthouse in a storm"]
    switch = prompts[1]
    assert switch["block"] >= 2 and switch["transition_s"] == 1.0 and switch["latency_s"] > 0
    assert switch["at_s"] == pytest.approx((9 + 12 * (switch["block"] - 1)) / 16)
    thumb = client.get(switch["thumbnail"])
    assert thumb.headers["content-type"] == "image/jpeg" and thumb.content[:2] == b"\xff\xd8"
    # The session storyboard reproduces the session's latents with `longlive generate`, bit for bit.
    story = client.get("/api/session/storyboard")
    assert story.headers["content-type"].startswith("text/yaml") and "a lighthouse in a storm" in story.text
    (tmp_path / "s.yaml").write_text(story.text)
    folder = studio.sessions_dir / done["id"]
    args = ["generate", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "g.mp4"), "--model", "tiny-random"]
    args += ["--device", "cpu", "-q", "--save-latents", str(tmp_path / "g.safetensors")]
    gen = subprocess.run([*CMD, *args], capture_output=True, text=True, env=ENV, timeout=120)
    assert gen.returncode == 0, gen.stderr
    live, made = read_latents(folder / "latents.safetensors")[0], read_latents(tmp_path / "g.safetensors")[0]
    assert live.shape[1] == n * 3 and torch.equal(live, made)
    recording = client.get("/api/session/recording")
    assert recording.headers["content-type"] == "video/mp4"
    (tmp_path / "r.mp4").write_bytes(recording.content)
    assert decoded_frames(tmp_path / "r.mp4")[0] == 9 + 12 * (n - 1)
    assert decoded_frames(folder / "live.mp4")[0] == 9 + 12 * (n - 1)  # the viewers' fMP4: every frame
    assert client.get(f"/api/sessions/{done['id']}/storyboard").text == story.text


def test_stop_ends_the_session_and_later_steering_is_409(client, paced):
    stop_any(client)
    assert client.post("/api/session", json=SESSION | {"duration": "20s"}).status_code == 201
    wait_for(client, lambda s: s["blocks_done"] >= 1)
    assert client.post("/api/session/stop").status_code == 200
    done = ended(client)
    assert done["state"] == "finished" and done["blocks_done"] < done["num_blocks"]
    assert client.post("/api/session/prompt", json={"text": "late"}).status_code == 409
    assert client.post("/api/session/pause").status_code == 409
    assert "stopped at" in client.get("/api/session/storyboard").text


def test_bad_fields_are_400_naming_the_field(client, paced):
    stop_any(client)
    cases = [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 10001}, "prompt"),
        ({"prompt": "a\x07b"}, "prompt"),
        ({"prompt": "a", "seed": "5"}, "seed"),
        ({"prompt": "a", "seed": -1}, "seed"),
        ({"prompt": "a", "resolution": "64 by 48"}, "resolution"),
        ({"prompt": "a", "resolution": "65x48"}, "resolution"),
        ({"prompt": "a", "duration": "1000h"}, "duration"),
        ({"prompt": "a", "image": "data:image/png;base64,AAAA"}, "image"),
        ({"prompt": "a", "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        r = client.post("/api/session", json=body)
        assert r.status_code == 400 and r.json()["field"] == field, (body, r.text)
        assert r.json()["error"]
    assert client.post("/api/session", json=SESSION | {"duration": "3s"}).status_code == 201
    for body, field in [
        ({"text": " "}, "text"),
        ({"text": "a", "transition": "10s"}, "transition"),
        ({"text": "a", "transition": "soon"}, "transition"),
        ({"text": "a", "blend": "cubic"}, "blend"),
        ({"text": "a", "cut": True}, "cut"),
        ({"text": "a", "cut": "yes"}, "cut"),
    ]:
        r = client.post("/api/session/prompt", json=body)
        assert r.status_code == 400 and r.json()["field"] == field, (body, r.text)
    stop_any(client)


def fragments_of(messages: list) -> tuple[dict, bytes, list[bytes]]:
    """The init message, the init segment and the fragments of one video in ``messages``."""
    start = next(i for i, m in enumerate(messages) if isinstance(m, dict) and m["type"] == "init")
    init, segment = messages[start], messages[start + 1]
    fragments = []
    for m in messages[start + 2 :]:
        if isinstance(m, dict):
            break
        fragments.append(m)
    return init, segment, fragments


def receive_all(ws, until_idle: int) -> list:
    """Messages until the ``until_idle``-th ``idle``."""
    messages, idles = [], 0
    while idles < until_idle:
        m = ws.receive()
        messages.append(json.loads(m["text"]) if m.get("text") is not None else m["bytes"])
        idles += isinstance(messages[-1], dict) and messages[-1]["type"] == "idle"
    return messages


def test_video_websocket_sends_init_then_a_playable_fragmented_mp4(client, tmp_path):
    stop_any(client)
    with client.websocket_connect(WS + "/api/video") as ws:
        assert json.loads(ws.receive_text()) == {"type": "idle"}
        session = client.post("/api/session", json=SESSION | {"duration": "3s"}).json()
        messages = receive_all(ws, 1)
    init, segment, fragments = fragments_of(messages)
    assert init["session"] == session["id"] and (init["width"], init["height"]) == (64, 48)
    assert init["fps"] == 16 and init["mime"].startswith('video/mp4; codecs="avc1.42')
    kinds = [box[0] for box in _boxes(segment)]
    assert kinds[:2] == [b"ftyp", b"moov"]
    for message in fragments:  # whole fragments: moof + mdat, one or several
        kinds = [box[0] for box in _boxes(message)]
        assert kinds == [b"moof", b"mdat"] * (len(kinds) // 2) and kinds
    (tmp_path / "ws.mp4").write_bytes(segment + b"".join(fragments))
    frames, stream = decoded_frames(tmp_path / "ws.mp4")
    assert frames == ended(client)["video_s"] * 16 == 9 + 12 * 3 and "64x48" in stream


def _boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    import io

    stream, out = io.BytesIO(data), []
    while (box := read_box(stream)) is not None:
        out.append(box)
    return out


def test_a_late_viewer_gets_the_init_segment_first_and_the_recording_plays_while_it_runs(
    client, paced, tmp_path
):
    stop_any(client)
    client.post("/api/session", json=SESSION | {"duration": "20s"})
    wait_for(client, lambda s: s["blocks_done"] >= 2)
    with client.websocket_connect(WS + "/api/video") as ws:
        init = json.loads(ws.receive_text())
        segment, fragment = ws.receive_bytes(), ws.receive_bytes()
        assert init["type"] == "init" and segment[4:8] == b"ftyp" and fragment[4:8] == b"moof"
        assert client.get("/api/session").json()["viewers"] == 1
    running = client.get("/api/session/recording")
    assert client.get("/api/session").json()["state"] == "running"
    (tmp_path / "part.mp4").write_bytes(running.content)
    assert decoded_frames(tmp_path / "part.mp4")[0] >= 9
    stop_any(client)


def test_events_websocket_sends_the_session_and_the_pipeline_events(client):
    stop_any(client)
    with client.websocket_connect(WS + "/api/events") as ws:
        assert json.loads(ws.receive_text())["event"] == "session"  # the last session, at once
        client.post("/api/session", json=SESSION | {"duration": "2s"})
        seen = []
        while not seen or seen[-1]["event"] != "session_summary":
            seen.append(json.loads(ws.receive_text()))
    kinds = [e["event"] for e in seen]
    assert "generation_started" in kinds and "block_done" in kinds and "finished" in kinds
    assert "session" in kinds and "prompt_received" in kinds
    done = [e for e in seen if e["event"] == "block_done"]
    assert [e["block"] for e in done] == list(range(done[-1]["num_blocks"]))


def test_a_viewer_that_never_reads_does_not_slow_generation_nor_grow_without_bound(client, studio):
    stop_any(client)
    loop = asyncio.new_event_loop()
    try:
        idle = studio.video.join(loop)  # joined, never read
        client.post("/api/session", json=SESSION | {"duration": "30s"})
        done = ended(client)
        assert done["blocks_done"] == done["num_blocks"]
        frames = done["video_s"] * 16
        assert len(idle._queue) <= VIEWER_QUEUE_FRAGMENTS + 3 < frames
        assert idle.dropped >= frames - VIEWER_QUEUE_FRAGMENTS - 2
        studio.video.leave(idle)
    finally:
        loop.close()


def test_a_slow_viewer_loses_fragments_up_to_the_next_keyframe():
    loop = asyncio.new_event_loop()
    try:
        viewer = Viewer(loop)
        viewer.put_fragment(b"p" * 10, keyframe=False)
        assert viewer.dropped == 1  # a viewer starts at a keyframe
        for _ in range(VIEWER_QUEUE_FRAGMENTS):
            viewer.put_fragment(b"k", keyframe=True)
        viewer.put_fragment(b"p", keyframe=False)  # over the bound: the queue goes, then a keyframe is due
        assert len(viewer._queue) == 0 and viewer.need_keyframe
        viewer.put_fragment(b"p", keyframe=False)
        viewer.put_fragment(b"K", keyframe=True)
        assert list(viewer._queue) == [b"K"] and viewer.dropped == 1 + VIEWER_QUEUE_FRAGMENTS + 2
    finally:
        loop.close()


def test_render_job_plans_renders_and_serves_the_video(client, tmp_path):
    stop_any(client)
    story = (
        "resolution: 64x48\nduration: 2s\nprompts:\n  - {at: 0, text: a red kite}\n  - {at: 1s, text: rain}\n"
    )
    checked = client.post("/api/validate", json={"storyboard": story}).json()
    assert checked["ok"] and checked["num_blocks"] == 3 and "rain" in checked["plan"]
    bad = client.post("/api/validate", json={"storyboard": "duration: 2s\nprompts:\n  - {at: 5s, text: x}\n"})
    assert bad.json()["ok"] is False and bad.json()["line"] == 3 and bad.json()["column"]
    r = client.post("/api/render", json={"storyboard": story, "seed": 3})
    assert r.status_code == 202 and r.json()["state"] == "running"
    job = r.json()["id"]
    deadline = time.monotonic() + 60
    while (state := client.get(f"/api/render/{job}").json())["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert state["state"] == "finished" and state["blocks_done"] == 3 and state["video"]
    (tmp_path / "v.mp4").write_bytes(client.get(state["video"]).content)
    assert decoded_frames(tmp_path / "v.mp4")[0] == 9 + 12 * 2
    assert client.post("/api/render", json={"storyboard": "prompts: [}"}).status_code == 400


def test_render_is_409_while_a_session_runs(client, paced):
    stop_any(client)
    client.post("/api/session", json=SESSION | {"duration": "20s"})
    story = "duration: 2s\nprompts:\n  - {at: 0, text: a}\n"
    r = client.post("/api/render", json={"storyboard": story})
    assert r.status_code == 409 and "session" in r.json()["error"]
    stop_any(client)


def test_docs_are_served_without_any_cdn(client):
    page = client.get("/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    assert "https://" not in page.replace("https://swagger.io", "")
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/health", "/api/session", "/api/session/prompt", "/api/render"} <= set(paths)


# --------------------------------------------------------------------------- the real command
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One `longlive serve --port 0 --ahead 0` for the tests below (the last one stops it with SIGTERM)."""
    sessions = tmp_path_factory.mktemp("served")
    args = ["serve", "--model", "tiny-random", "--device", "cpu", "--port", "0", "--ahead", "0"]
    proc = subprocess.Popen(
        [*CMD, *args, "--sessions-dir", str(sessions)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=ENV,
        text=True,
    )
    assert proc.stderr is not None
    url, said = None, []
    for line in proc.stderr:
        said.append(line)
        if line.startswith("longlive studio: "):
            url = line.split(": ", 1)[1].strip()
            break
    assert url is not None, f"serve exited {proc.poll()}: {''.join(said)}"
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    yield proc, url, sessions, stderr
    if proc.poll() is None:
        proc.kill()
        proc.wait()


class WsViewer(threading.Thread):
    """A `/api/video` client on a real socket that keeps every message."""

    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        super().__init__(daemon=True)
        self.ws = connect(url.replace("http://", "ws://") + "api/video", open_timeout=20, max_size=None)
        self.ws.__enter__()
        self.messages: list = []

    def run(self) -> None:
        with contextlib.suppress(Exception):
            for message in self.ws:
                self.messages.append(json.loads(message) if isinstance(message, str) else message)

    def kill(self) -> None:
        """Gone without a goodbye (a closed tab, a dead process)."""
        self.ws.socket.close()


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("VmRSS:")).split()[1]) / 1024


def test_twenty_viewers_do_not_stop_generation_and_killed_viewers_rejoin_with_a_valid_stream(
    served, tmp_path
):
    proc, url, _, _ = served
    viewers = [WsViewer(url) for _ in range(20)]
    for v in viewers:
        v.start()
    from websockets.sync.client import connect

    stalled = [connect(url.replace("http://", "ws://") + "api/video", max_queue=1) for _ in range(2)]
    for ws in stalled:
        ws.__enter__()  # connected, never read: its socket fills, then the server drops its fragments
    before = rss_mib(proc.pid)
    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.post("/api/session", json=SESSION | {"duration": "240s"}).status_code == 201
        deadline, peak = time.monotonic() + 2.5, before
        while time.monotonic() < deadline:
            peak = max(peak, rss_mib(proc.pid))
            time.sleep(0.1)
        for v in viewers[:5]:
            v.kill()
        rejoined = [WsViewer(url) for _ in range(5)]
        for v in rejoined:
            v.start()
        first = http.get("/api/session").json()
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            peak = max(peak, rss_mib(proc.pid))
            time.sleep(0.1)
        later = http.get("/api/session").json()
        assert later["state"] == "running" and later["blocks_done"] > first["blocks_done"] >= 2
        assert later["viewers"] == 22
        http.post("/api/session/stop")
        deadline = time.monotonic() + 30
        while http.get("/api/session").json()["state"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert peak - before < 200, (before, peak)  # bounded: no per-viewer backlog grows with the session
    time.sleep(0.5)
    for i, v in enumerate([*viewers[5:], *rejoined]):
        init, segment, fragments = fragments_of(v.messages)
        assert init["width"] == 64 and isinstance(segment, bytes)
        (tmp_path / f"v{i}.mp4").write_bytes(segment + b"".join(fragments))
        frames, stream = decoded_frames(tmp_path / f"v{i}.mp4")
        assert frames >= 1 and "64x48" in stream
    for v in [*viewers[5:], *rejoined]:
        v.ws.close()
    for ws in stalled:
        ws.socket.close()


def test_serve_process_runs_a_session_and_sigterm_keeps_a_playable_recording(served):
    proc, url, sessions, stderr = served
    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.get("/api/health").json()["ok"]
        session = http.post("/api/session", json=SESSION | {"duration": "240s"}).json()
        deadline = time.monotonic() + 60
        while http.get("/api/session").json()["blocks_done"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    time.sleep(0.2)
    assert "Traceback" not in "".join(stderr)
    folder = sessions / session["id"]
    assert "stopped at" in (folder / "session.yaml").read_text()
    assert decoded_frames(folder / "recording.partial.mp4")[0] >= 9 + 12
    assert decoded_frames(folder / "live.mp4")[0] >= 9


def test_serve_refuses_before_loading(tmp_path):
    import socket

    other = subprocess.run(
        [*CMD, "serve", "--host", "0.0.0.0"], capture_output=True, text=True, env=ENV, timeout=60
    )
    assert other.returncode == 2 and "LONGLIVE_TOKEN" in other.stderr and "Traceback" not in other.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = subprocess.run(
            [*CMD, "serve", "--model", "tiny-random", "--port", str(port), "--sessions-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=60,
        )
    assert run.returncode == 4 and "in use" in run.stderr and "--port" in run.stderr
    (tmp_path / "file").write_text("")
    run = subprocess.run(
        [*CMD, "serve", "--model", "tiny-random", "--sessions-dir", str(tmp_path / "file")],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    assert run.returncode == 4 and "--sessions-dir" in run.stderr


def test_help_imports_neither_torch_nor_fastapi():
    code = (
        "import sys\nfrom longlive_cli.cli import main\n"
        "for argv in (['longlive', '--help'], ['longlive', 'serve', '--help']):\n"
        "    sys.argv = argv\n    try:\n        main()\n    except SystemExit:\n        pass\n"
        "print('HEAVY', sorted(m for m in ('torch', 'fastapi', 'uvicorn', 'pythonosc') if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert "--sessions-dir" in run.stdout and "--osc" in run.stdout and "serve" in run.stdout
    assert run.stdout.strip().splitlines()[-1] == "HEAVY []"


def test_live_schedule_submit_takes_the_transition_and_cut_with_the_prompt():
    from longlive_cli.live import LiveSchedule

    schedule = LiveSchedule(None, 10, lambda: False)
    schedule.submit("first")
    assert schedule.wait_for_first(timeout=1) == "first"
    schedule.next_transition = (0.75, "linear")  # a `:transition` typed by someone else
    schedule.submit("second", transition=(1.5, "slerp"), cut=True)
    assert schedule.next_transition == (0.75, "linear") and not schedule.next_cut
    assert schedule.segment_for_block(1) == 1 and schedule.is_cut(1)
    assert schedule.transition_of(1) == (1.5, "slerp") and schedule.transition(1).method == "slerp"
    schedule.submit("third")  # no transition given: the one `:transition` asked for
    assert schedule.next_transition is None
    assert schedule.segment_for_block(3) == 2 and schedule.transition_of(2) == (0.75, "linear")
    schedule.close()
