"""A small WebDriver BiDi client for tests: drives Firefox over the WebSocket it opens itself, no geckodriver.

Firefox started with ``--remote-debugging-port=0`` prints ``WebDriver BiDi listening on ws://127.0.0.1:PORT``
on its standard error; commands go to ``<that address>/session`` as JSON ``{"id", "method", "params"}`` and
come back as ``{"type": "success" | "error", "id", ...}``, with events (``{"type": "event"}``) in between
(W3C WebDriver BiDi, https://w3c.github.io/webdriver-bidi/). Every wait here is bounded; :meth:`Firefox.close`
ends the session and kills the process.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

LISTENING = re.compile(r"WebDriver BiDi listening on (ws://\S+)")

# user.js of the throwaway profile: autoplay allowed (the studio's muted <video> plays on its own), and no
# telemetry, update, safe-browsing or other background connection that prefs can turn off.
PREFS: dict[str, bool | int | str] = {
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    "app.update.enabled": False,
    "app.update.auto": False,
    "app.normandy.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.page": 0,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.newtabpage.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.ping-centre.telemetry": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "extensions.update.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
}


class BidiError(RuntimeError):
    """Firefox answered a command with an error, a script threw, or it did not answer in time."""


class Firefox:
    """A headless Firefox with a fresh profile in ``profile``, driven over WebDriver BiDi.

    ``console`` collects the page's console and errors (``log.entryAdded`` events) as ``"level: text"``.
    Raises :class:`BidiError` when Firefox does not open its BiDi socket within ``timeout`` seconds.
    """

    def __init__(self, binary: str, profile: Path, timeout: float = 60) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        lines = [f"user_pref({json.dumps(k)}, {json.dumps(v)});" for k, v in PREFS.items()]
        (profile / "user.js").write_text("\n".join(lines) + "\n")
        self.console: list[str] = []
        self.stderr: list[str] = []
        self._ids = itertools.count(1)
        self._address: str | None = None
        self.context = ""  # the top-level browsing context (the tab), set once the session is up
        self._found = threading.Event()
        args = ["--headless", "--no-remote", "--profile", str(profile), "--remote-debugging-port=0"]
        self.proc = subprocess.Popen(
            [binary, *args, "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={"MOZ_CRASHREPORTER_DISABLE": "1", "PATH": "/usr/bin:/bin", "HOME": str(profile)},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.ws: ClientConnection | None = None
        self._stack = contextlib.ExitStack()  # the socket, closed by close()
        try:
            if not self._found.wait(timeout) or self._address is None:
                raise BidiError(f"Firefox opened no BiDi socket in {timeout} s: {self.log_tail()}")
            socket = connect(self._address + "/session", open_timeout=timeout, max_size=64 * 2**20)
            self.ws = self._stack.enter_context(socket)
            self.command("session.new", {"capabilities": {}})
            self.command("session.subscribe", {"events": ["log.entryAdded"]})
            self.context = self.command("browsingContext.getTree", {})["contexts"][0]["context"]
        except BaseException:
            self.close()
            raise

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            match = LISTENING.search(line)
            if match and self._address is None:
                self._address = match.group(1)
                self._found.set()
        self._found.set()  # Firefox ended: wake the waiter

    def log_tail(self) -> str:
        return "".join(self.stderr)[-2000:]

    def command(self, method: str, params: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        """Send one command and return its ``result``; events that arrive meanwhile are kept."""
        assert self.ws is not None
        ident = next(self._ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BidiError(f"{method}: no answer from Firefox in {timeout} s")
            try:
                message = json.loads(self.ws.recv(timeout=left))
            except TimeoutError:
                continue
            if message.get("type") == "event":
                if message.get("method") == "log.entryAdded":
                    entry = message["params"]
                    self.console.append(f"{entry.get('level')}: {entry.get('text')}")
            elif message.get("id") == ident:
                if message.get("type") == "error":
                    raise BidiError(f"{method}: {message.get('error')}: {message.get('message')}")
                result: dict[str, Any] = message["result"]
                return result

    def navigate(self, url: str) -> None:
        self.command("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    def evaluate(self, body: str, timeout: float = 30) -> Any:
        """Run ``body`` (the body of an async function) in the page; its return value, through JSON."""
        expression = f"(async () => {{ {body} }})().then((v) => JSON.stringify(v === undefined ? null : v))"
        params = {
            "expression": expression,
            "target": {"context": self.context},
            "awaitPromise": True,
            "resultOwnership": "none",
        }
        result = self.command("script.evaluate", params, timeout)
        if result.get("type") == "exception":
            details = result["exceptionDetails"]
            raise BidiError(f"script threw: {details.get('text')} (console: {self.console[-5:]})")
        return json.loads(result["result"]["value"])

    def screenshot(self, path: Path) -> Path:
        data = self.command("browsingContext.captureScreenshot", {"context": self.context})["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def version(self) -> str:
        """The browser's name and version, as ``session.status`` does not say it: from the user agent."""
        return str(self.evaluate("return navigator.userAgent;"))

    def close(self) -> None:
        """End the session (bounded), then the process (SIGTERM, then SIGKILL)."""
        if self.ws is not None:
            with contextlib.suppress(Exception):  # Firefox may be gone already; the process is killed below
                self.command("session.end", {}, timeout=5)
            self._stack.close()
            self.ws = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
