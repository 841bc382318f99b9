"""`longlive serve --osc`: OSC messages over UDP on 127.0.0.1 steer the live session (issue 23)."""

from __future__ import annotations

import logging
import threading
import time

import pytest


@pytest.fixture(scope="module")
def osc_studio(tmp_path_factory):
    from longlive_cli.api import LongLive
    from longlive_cli.serve.osc import OscServer
    from longlive_cli.serve.studio import Studio

    ll = LongLive.from_pretrained("tiny-random", device="cpu")
    ll.load()
    ll.text_encoder(keep=True)
    studio = Studio(ll, sessions_dir=tmp_path_factory.mktemp("sessions"), ahead_s=0.25)
    osc = OscServer(0)
    osc.start(studio)
    yield studio, osc
    osc.stop()
    studio.shutdown(30)


def wait_until(pred, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_an_osc_message_switches_the_prompt_and_steers(osc_studio, caplog):
    from pythonosc.udp_client import SimpleUDPClient

    studio, osc = osc_studio
    caplog.set_level(logging.WARNING)
    client = SimpleUDPClient("127.0.0.1", osc.port)
    studio.start_session("a quiet harbour", resolution="64x48", duration="20s", seed=1)
    job = studio.session
    wait_until(lambda: job.blocks_done >= 1)
    client.send_message("/longlive/transition", [1.5, "slerp"])
    client.send_message("/longlive/nonsense", [1])
    client.send_message("/longlive/nonsense", [2])
    client.send_message("/longlive/prompt", [42])  # not a string: refused, said once
    client.send_message("/longlive/prompt", "a storm over the harbour")
    wait_until(lambda: len(job.records) == 2)
    switch = job.records[1]
    assert switch["text"] == "a storm over the harbour" and switch["block"] >= 2
    assert (switch["transition_s"], switch["blend"]) == (1.5, "slerp")
    client.send_message("/longlive/pause", [])
    wait_until(lambda: job.state == "paused")
    client.send_message("/longlive/resume", [])
    wait_until(lambda: job.state == "running")
    client.send_message("/longlive/cut", [])  # tiny-random has no shots: refused, said once
    client.send_message("/longlive/stop", [])
    job.thread.join(30)
    assert job.state == "finished" and job.blocks_done < job.num_blocks
    said = [r.getMessage() for r in caplog.records if "OSC" in r.getMessage()]
    assert sum("/longlive/nonsense" in m for m in said) == 1
    assert any("/longlive/prompt" in m for m in said) and any("/longlive/cut" in m for m in said)


def test_stopping_osc_leaves_no_thread_behind():
    from longlive_cli.errors import OutputError
    from longlive_cli.serve.osc import OscServer

    osc = OscServer(0)
    with pytest.raises(OutputError, match="--osc"):
        OscServer(osc.port)  # the port is taken: known before any model loads
    osc.start(None)  # type: ignore[arg-type]
    osc.stop()
    assert osc._thread is not None and not osc._thread.is_alive()
    assert osc._thread not in threading.enumerate()
