"""The ``longlive`` console script (``pyproject.toml`` ``[project.scripts]``) and ``python -m longlive_cli``.

A module of its own so that Ctrl-C is handled before the CLI's imports (Typer, Rich, the model registry: a
few hundred ms): :func:`run_cli` makes Ctrl-C exit 130 quietly until a command starts
(:func:`longlive_cli.signals.quiet_exit_until_a_command_starts`), then imports and runs the CLI.
"""

from __future__ import annotations

from .signals import quiet_exit_until_a_command_starts

__all__ = ["run_cli"]


def run_cli() -> None:
    """Run the ``longlive`` command line (``sys.argv``); Ctrl-C before a command starts exits 130 quietly."""
    quiet_exit_until_a_command_starts()
    from .cli import main

    main()
