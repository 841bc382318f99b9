"""Stop signals: the first SIGINT/SIGTERM asks the run to stop after the current block, the second aborts.

Every command that generates (``generate``, ``live``, ``serve``) runs its loop inside :class:`StopSignals`
and maps :attr:`StopSignals.exit_code` (130 for SIGINT, 143 for SIGTERM; :mod:`longlive_cli.errors`).
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from .errors import EXIT_SIGINT, EXIT_SIGTERM

__all__ = ["StopSignals", "command_started", "quiet_exit_until_a_command_starts"]

log = logging.getLogger(__name__)


def _interrupted_at_startup(signum: int, frame: Any) -> None:
    """Ctrl-C while the CLI starts (its imports, the command line read), before a command has started:
    nothing was made, so exit 130 quietly, as a stop does later (not a ``KeyboardInterrupt`` traceback from
    an import, nor Click's "Aborted!" and exit 1)."""
    raise SystemExit(EXIT_SIGINT)


def quiet_exit_until_a_command_starts() -> None:
    """Make Ctrl-C exit 130 quietly until :func:`command_started` (main thread only; else nothing)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _interrupted_at_startup)


def command_started() -> None:
    """A command starts: Python's own Ctrl-C (``KeyboardInterrupt``) is back, unless someone else has
    installed a handler since; a command that generates installs :class:`StopSignals` first thing."""
    main = threading.current_thread() is threading.main_thread()
    if main and signal.getsignal(signal.SIGINT) is _interrupted_at_startup:
        signal.signal(signal.SIGINT, signal.default_int_handler)


class StopSignals:
    """Turns the first SIGINT/SIGTERM into a polite stop request and the second into an abort.

    Use as a context manager around the generation loop; poll :meth:`requested` between blocks.
    The first signal only sets a flag (the current block finishes, the video so far is kept); a
    second one raises ``KeyboardInterrupt`` at once. Handlers are restored on exit. Outside the
    main thread (signals cannot be caught there) it does nothing.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return EXIT_SIGTERM if self.signum == signal.SIGTERM else EXIT_SIGINT

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        log.warning(
            "%s: finishing the current block and keeping the video so far; press Ctrl-C again to abort", name
        )

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
