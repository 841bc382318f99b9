"""``python -m longlive_cli``: the ``longlive`` command."""

from .entry import run_cli

run_cli()
