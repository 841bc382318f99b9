"""OSC for ``longlive serve --osc PORT``: stage tools (TouchDesigner, Resolume, a MIDI bridge) steer the live
session over UDP on 127.0.0.1 with python-osc.

Addresses (OSC 1.0 messages): ``/longlive/prompt "text"`` (the next prompt), ``/longlive/transition 2.0
"slerp"`` (the next prompt blends in over 2 s; 0: a hard switch), ``/longlive/cut`` (the next prompt starts a
new shot; LongLive 2.0 models), ``/longlive/pause``, ``/longlive/resume``, ``/longlive/stop``. A message the
studio refuses, or an unknown address, is logged once (per address and reason) and ignored.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ..errors import OutputError
from .studio import ApiError, Studio

__all__ = ["OscServer"]

log = logging.getLogger(__name__)


class OscServer:
    """A python-osc ``ThreadingOSCUDPServer`` on ``host:port`` (bound here, so a busy port is known before
    the model loads); :meth:`start` serves a studio on a daemon thread, :meth:`stop` ends it (no thread left
    blocked: ``shutdown`` then ``server_close``).

    Raises:
        OutputError: the port cannot be bound (busy, or not allowed).
    """

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        from pythonosc.dispatcher import Dispatcher
        from pythonosc.osc_server import ThreadingOSCUDPServer

        self.dispatcher = Dispatcher()
        self.studio: Studio | None = None
        self._said: set[tuple[str, str]] = set()
        for name in ("prompt", "transition", "cut", "pause", "resume", "stop"):
            self.dispatcher.map(f"/longlive/{name}", self._handle, name)
        self.dispatcher.set_default_handler(self._unknown)
        try:
            self.server = ThreadingOSCUDPServer((host, port), self.dispatcher)
        except OSError as err:
            raise OutputError(
                f"--osc {port}: cannot listen on UDP {host}:{port} ({err.strerror or err}); pick another port"
            ) from None
        self.port = self.server.server_address[1]
        self._thread: threading.Thread | None = None

    def start(self, studio: Studio) -> None:
        self.studio = studio
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, name="longlive-osc", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(2)
        self.server.server_close()

    def _once(self, address: str, reason: str) -> None:
        if (address, reason) not in self._said:
            self._said.add((address, reason))
            log.warning("OSC %s: %s; ignored (said once)", address, reason)

    def _unknown(self, address: str, *args: Any) -> None:
        self._once(address, "unknown address; use /longlive/prompt, transition, cut, pause, resume or stop")

    def _handle(self, address: str, fixed: list[Any], *args: Any) -> None:
        name = fixed[0]
        studio = self.studio
        if studio is None:
            return
        try:
            if name == "prompt":
                if len(args) != 1:
                    raise ApiError(400, 'give one string: /longlive/prompt "text"')
                studio.submit_prompt(args[0])
            elif name == "transition":
                if not 1 <= len(args) <= 2 or isinstance(args[0], str):
                    raise ApiError(400, 'give seconds and a blend: /longlive/transition 2.0 "slerp"')
                studio.set_next_transition(float(args[0]), args[1] if len(args) == 2 else "linear")
            elif args:
                raise ApiError(400, f"/longlive/{name} takes no arguments")
            elif name == "cut":
                studio.set_next_cut()
            elif name in ("pause", "resume"):
                studio.pause(name == "pause")
            else:
                studio.stop()
        except ApiError as err:
            self._once(address, err.message)
        except Exception as err:  # a bad message never takes the OSC thread down
            self._once(address, f"{type(err).__name__}: {err}")
