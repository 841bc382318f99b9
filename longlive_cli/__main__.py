"""``python -m longlive_cli``: the ``longlive`` command."""

from .signals import run_cli

run_cli()
