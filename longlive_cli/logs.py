"""One logging setup for the command line. Library code logs through :mod:`logging` (logger ``longlive_cli``
and its children) and never prints; the CLI calls :func:`setup_logging` once per command.

On a terminal the messages go through Rich's handler; otherwise (a pipe, a file, ``NO_COLOR``) as plain lines
on standard error: ``warning: ...`` / ``error: ...`` for those levels, the bare message for info. Third-party
log noise (torchao's optional-kernel import warnings, diffusers' and transformers' progress chatter) is
filtered here, in one place.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["quiet_noisy_imports", "quiet_progress_bars", "quiet_third_party", "setup_logging"]

_NOISY = ("torchao", "diffusers.quantizers.torchao.torchao_quantizer", "torch.utils._pytree")
_installed: logging.Handler | None = None


class _PlainHandler(logging.Handler):
    """Plain lines on whatever ``sys.stderr`` is at the time of the message."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            if record.levelno >= logging.ERROR:
                message = f"error: {message}"
            elif record.levelno >= logging.WARNING:
                message = f"warning: {message}"
            sys.stderr.write(message + "\n")
            sys.stderr.flush()
        except Exception:  # pragma: no cover - logging must never raise into the caller
            self.handleError(record)


def quiet_noisy_imports() -> None:
    """Silence the import-time warnings of torchao builds without every optional kernel (harmless)."""
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.ERROR)


def quiet_third_party() -> None:
    """Errors only from the third-party loggers that print harmless noise (for the command line)."""
    quiet_noisy_imports()
    for name in ("diffusers", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)


def setup_logging(*, quiet: bool = False, debug: bool = False) -> None:
    """Send ``longlive_cli``'s log to standard error: info and up (warnings and up with ``quiet``; debug and
    up with ``debug``), through Rich on a terminal, plain lines otherwise. Replaces an earlier setup."""
    global _installed
    logger = logging.getLogger("longlive_cli")
    if _installed is not None:
        logger.removeHandler(_installed)
    handler: logging.Handler
    if sys.stderr.isatty() and not os.environ.get("NO_COLOR"):
        from rich.console import Console
        from rich.logging import RichHandler

        handler = RichHandler(console=Console(stderr=True), show_time=False, show_path=False)
    else:
        handler = _PlainHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    _installed = handler
    quiet_third_party()
    if quiet:
        quiet_progress_bars()


def quiet_progress_bars() -> None:
    """No third-party progress bars (transformers' "Loading weights", Hub downloads) for ``--quiet``: the
    Hub's switch, read by transformers when imported, set in the environment and, for libraries already
    imported, turned off in place."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
