"""A real ``longlive serve`` for the browser tests (tests/test_studio_browser.py: Chromium through Selenium;
tests/test_studio_firefox.py: Firefox over WebDriver BiDi): a subprocess on tiny-random on the CPU, on a free
port, with empty caches and no network; and :func:`wait_until`, the bounded poll both use."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

URL_LINE = re.compile(r"longlive studio: (http://\S+)")


def server_env(caches: Path) -> dict[str, str]:
    """The server's (and ``generate``'s) environment: empty caches under ``caches``, offline (as conftest's
    isolated_caches)."""
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(caches / "hub"),
        "LONGLIVE_CACHE": str(caches / "longlive"),
    }


class Server:
    """A ``longlive serve`` subprocess on a free port; its standard error is collected on a thread."""

    def __init__(self, sessions: Path, env: dict[str, str], *extra: str) -> None:
        self.sessions = sessions
        self.lines: list[str] = []
        self.url: str | None = None
        self._found = threading.Event()
        cmd = [sys.executable, "-c", "from longlive_cli.cli import main; main()", "serve"]
        args = ["--model", "tiny-random", "--device", "cpu", "--port", "0", "--sessions-dir", str(sessions)]
        self.proc = subprocess.Popen(
            [*cmd, *args, *extra],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            match = URL_LINE.search(line)
            if match and self.url is None:
                self.url = match.group(1)
                self._found.set()
        self._found.set()  # the server ended: wake the waiter

    def wait_url(self, timeout: float) -> str:
        self._found.wait(timeout)
        assert self.url, f"longlive serve printed no URL in {timeout} s: {''.join(self.lines)[-2000:]}"
        return self.url

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(timeout=5)

    def get(self, path: str) -> tuple[int, Any]:
        """GET ``path`` (bounded); the JSON body, or the bytes when it is not JSON."""
        assert self.url
        try:
            with urllib.request.urlopen(self.url.rstrip("/") + path, timeout=10) as response:
                status, body, kind = response.status, response.read(), response.headers.get_content_type()
        except urllib.error.HTTPError as err:
            status, body, kind = err.code, err.read(), err.headers.get_content_type()
        return status, json.loads(body) if kind == "application/json" else body


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
