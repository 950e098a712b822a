"""The command line that reproduces a result, as stored with it."""
from __future__ import annotations

import shlex
from typing import Sequence


def reproducible_command(prog: str, argv: Sequence[str]) -> str:
    """``prog`` + ``argv`` without this machine's store folders (``--cache``, ``--extra-store``) and
    ``--json``: a command another machine can run as it is.

    Example:
        >>> reproducible_command("python -m ipt_core", ["ipt", "--cache", "/x/y", "--json", "--cache=/z", "--d", "8"])
        'python -m ipt_core ipt --d 8'
    """
    shown, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("--cache", "--extra-store"):
            skip = True
        elif a == "--json" or a.startswith(("--cache=", "--extra-store=")):
            continue
        else:
            shown.append(a)
    return " ".join([prog, shlex.join(shown)]).strip()
