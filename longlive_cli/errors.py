"""One error family and one exit-code table for the library and every command.

Every error a user can cause or meet is a :class:`LongLiveError` whose ``str()`` is the whole message
(what was wrong, where, what to do) and whose class gives the exit code:

==========================  ====  =====================================================================
class                       exit  meaning
==========================  ====  =====================================================================
:class:`GenerationError`    1     generation failed at run time
:class:`InputError`         2     bad input: storyboard, command-line value, live line
:class:`ModelError`         3     model or weights unavailable: unknown ``--model``, bad spec file,
                                  missing or unreadable weights, unreachable Hub
:class:`OutputError`        4     output cannot be written: exists without ``--force``, folder missing,
                                  not writable, no space
==========================  ====  =====================================================================

Batch runs add 5 (some storyboards done, some failed); a stop by Ctrl-C exits 130, by SIGTERM 143.
Torch-free.
"""

from __future__ import annotations

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILURE",
    "EXIT_MODEL",
    "EXIT_OK",
    "EXIT_OUTPUT",
    "EXIT_PARTIAL",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "GenerationError",
    "InputError",
    "LongLiveError",
    "ModelError",
    "OutputError",
    "exit_code_for",
]

EXIT_OK = 0
EXIT_FAILURE = 1  # generation failed at run time
EXIT_BAD_INPUT = 2  # storyboard or command-line arguments unusable
EXIT_MODEL = 3  # model or weights unavailable
EXIT_OUTPUT = 4  # output cannot be written (exists, folder missing, disk)
EXIT_PARTIAL = 5  # some storyboards done, some failed
EXIT_SIGINT = 130  # 128 + SIGINT
EXIT_SIGTERM = 143  # 128 + SIGTERM


class LongLiveError(Exception):
    """Base of every error the library reports to a person; ``exit_code`` is the command's exit status."""

    exit_code: int = EXIT_FAILURE


class GenerationError(LongLiveError, RuntimeError):
    """Generation failed at run time (exit 1)."""

    exit_code = EXIT_FAILURE


class InputError(LongLiveError, ValueError):
    """A storyboard, argument or other input the tool cannot use (exit 2)."""

    exit_code = EXIT_BAD_INPUT


class ModelError(LongLiveError, RuntimeError):
    """The chosen model, its spec file or its weights cannot be had or read (exit 3)."""

    exit_code = EXIT_MODEL


class OutputError(LongLiveError):
    """An output file or folder cannot be written (exit 4)."""

    exit_code = EXIT_OUTPUT


def exit_code_for(err: BaseException) -> int:
    """The exit code for ``err``: its class's for a :class:`LongLiveError`, 1 (failure) for anything else."""
    return err.exit_code if isinstance(err, LongLiveError) else EXIT_FAILURE
