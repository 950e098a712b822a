"""The one family of errors that mean "the input was wrong", as opposed to a bug.

Whatever the user gave (a flag, a file, a task or entry name, an environment variable, a folder)
and got wrong is an :class:`InputError`, raised where the input is read. The CLI prints an
``InputError`` as one line and exits 2; anything else that goes wrong is a bug and keeps its
traceback (exit 1), so an internal error can never pass for the user's mistake.

``InputError`` is a ``ValueError`` (callers that catch ``ValueError`` keep working);
:class:`UnknownNameError` is also a ``KeyError``, for a name that is not there (a task, an entry).

Example::

    try:
        suite.subset(["no-such-task"])
    except InputError as exc:
        print(exc)      # no task 'no-such-task' in suite 'demo'; available: [...]
"""
from __future__ import annotations


class InputError(ValueError):
    """The input was wrong; the message says which input and why, in one line."""

    def __str__(self) -> str:  # KeyError's str() would quote the message
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class UnknownNameError(InputError, KeyError):
    """A name the input gave is not there (a task of a suite, a store entry, a job)."""
