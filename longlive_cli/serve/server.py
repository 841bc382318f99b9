"""Running ``longlive serve``: the checks before loading (host and token, the port, the sessions folder), then
uvicorn on a socket bound here, with the project's stop signals.

Uvicorn's ``Server`` runs on a thread (it installs no signal handler off the main thread); the main thread
holds :class:`~longlive_cli.signals.StopSignals` and, at the first SIGINT/SIGTERM, ends the running session as
``longlive live`` does (a playable partial recording, the session storyboard kept), then stops uvicorn.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InputError, OutputError

__all__ = ["bind", "check_host", "check_sessions_dir", "serve_forever", "studio_url"]

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_host(host: str, token: str | None) -> None:
    """Any host but loopback needs a token.

    Raises:
        InputError: ``host`` is not loopback and ``token`` is None (exit 2; the message says how to set one).
    """
    if host not in LOOPBACK and not token:
        raise InputError(
            f"--host {host} lets other machines in: give a token with --token T or LONGLIVE_TOKEN=T "
            "(e.g. LONGLIVE_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe())')), "
            "or keep the default --host 127.0.0.1"
        )
    if token is not None and (not token.isprintable() or not token.isascii() or " " in token or ";" in token):
        raise InputError("--token: printable ASCII without spaces or ';' (it goes in a header and a cookie)")


def check_sessions_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) when missing and check that files can be written in it.

    Raises:
        OutputError: it is not a folder, cannot be created or is not writable (exit 4).
    """
    path = path.expanduser().absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".longlive-check-"):
            pass
    except FileExistsError:
        raise OutputError(f"--sessions-dir {path} is not a folder; give a folder") from None
    except OSError as err:
        raise OutputError(
            f"--sessions-dir {path}: cannot write there ({err.strerror or err}); give a writable folder"
        ) from None
    return path


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: a free port), bound before the model loads.

    Raises:
        OutputError: the port is busy or not allowed (exit 4).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as err:
        sock.close()
        why = "the port is in use" if err.errno == errno.EADDRINUSE else (err.strerror or str(err))
        raise OutputError(
            f"cannot listen on {host}:{port}: {why}; pick another --port (or --port 0 for a free one)"
        ) from None
    sock.set_inheritable(True)
    return sock


def studio_url(host: str, port: int, token: str | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve_forever(
    app: Any,
    sock: socket.socket,
    *,
    studio: Any,
    stop: Any,
    on_listening: Callable[[int], None],
    osc: Any = None,
) -> int:
    """Serve ``app`` on ``sock`` until SIGINT/SIGTERM (``stop``: a :class:`StopSignals` entered) or until
    uvicorn stops on its own; the exit code (130/143 after a signal, 1 when uvicorn failed).

    A second signal while the session ends raises ``KeyboardInterrupt`` (the caller aborts)."""
    import uvicorn

    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="off",
        ws="websockets-sansio",
        ws_max_size=65536,  # clients send nothing the server needs: a larger message closes the socket
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="longlive-http", daemon=True
    )
    thread.start()
    told = False
    try:
        while thread.is_alive() and not stop.requested():
            if server.started and not told:
                told = True
                on_listening(sock.getsockname()[1])
            time.sleep(0.05)
        studio.shutdown()
    finally:
        server.should_exit = True
        if osc is not None:
            osc.stop()
        thread.join(10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(5)
        with contextlib.suppress(OSError):
            sock.close()
    if stop.requested():
        return int(stop.exit_code)
    return 1


def token_from_env(token: str | None) -> str | None:
    return token or os.environ.get("LONGLIVE_TOKEN") or None
