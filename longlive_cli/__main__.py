"""``python -m longlive_cli``: the ``longlive`` command."""

from .cli import main

main()
