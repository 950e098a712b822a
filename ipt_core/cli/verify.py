"""The ``verify`` command (cli.py calls :func:`register`): check a result store, and repair it on request.

    python -m ipt_core verify [--repair] [--json] [--cache DIR]
    python -m ipt_core verify --replay [--json] [--cache DIR]

Re-reads every entry and re-hashes its files (:meth:`ipt_core.store.Store.check`), and looks at the
temp folder. Without ``--repair`` nothing is changed. With it, corrupt entries are quarantined
(moved to ``<store>/corrupt/``, recorded there, recomputed when a job needs them) and temp items of
killed writers removed. Exit status: 0 the store is clean (or was repaired), 1 corrupt entries were
found and left in place (no ``--repair``); stale temp items alone are reported, not an error.

With ``--replay`` it checks instead that the results are today's: every command recorded in the
store is replayed read-only (:mod:`ipt_core.cli.replay`); exit 1 when a replay would have to compute
something or an entry is reached by no command (results of older code or defaults).
"""
from __future__ import annotations

import argparse
import json

EXIT_CORRUPT = 1


def register(sub) -> None:
    """Add ``verify`` to the CLI's subparsers (dispatched through ``args.func``)."""
    p = sub.add_parser("verify", help="check every entry of the result store (checksums, parse); --repair fixes it",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--repair", action="store_true",
                   help="quarantine corrupt entries (they are recomputed when needed) and remove stale temp items")
    p.add_argument("--replay", action="store_true",
                   help="replay every command recorded in the store read-only: are its results today's? (loads the model)")
    p.add_argument("--cache", default=None, help="result store folder (default $IPT_CACHE or ./cache)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    p.set_defaults(func=cmd_verify)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n} bytes"


def format_report(rep: dict) -> str:
    """The human summary of :meth:`Store.check`'s report."""
    n_bad = len(rep["corrupt"])
    stale = len(rep["tmp_stale"])
    lines = [f"store {rep['root']}: {rep['ok']} valid, {n_bad} corrupt, {rep['quarantined']} quarantined "
             f"(in corrupt/), temp leftovers: {stale} stale ({_mb(rep['tmp_stale_bytes'])}), "
             f"{len(rep['tmp_live'])} in use"]
    for c in rep["corrupt"]:
        lines.append(f"  {'quarantined' if rep['repaired'] else 'corrupt'}: {c['key']} ({c['reason']})")
    if rep["repaired"]:
        if n_bad or rep["tmp_removed"]:
            lines.append(f"repaired: {n_bad} corrupt entr{'y' if n_bad == 1 else 'ies'} quarantined (recomputed "
                         f"when needed), {rep['tmp_removed']} stale temp item(s) removed")
    elif n_bad or stale:
        lines.append("run again with --repair to quarantine the corrupt entries and remove the stale temp items")
    return "\n".join(lines)


def cmd_verify(args: argparse.Namespace) -> int:
    from ipt_core.store import Store

    if args.replay:
        from ipt_core.cli import replay

        if args.repair:
            from ipt_core.errors import InputError

            raise InputError("verify: --replay reads only; run --repair on its own")
        out = replay.replay_store(Store(args.cache).root)
        print(json.dumps(out.to_json()) if args.json else replay.format_report(out))
        return 0 if out.ok else EXIT_CORRUPT
    rep = Store(args.cache).check(repair=args.repair)
    if args.json:
        print(json.dumps(rep))
    else:
        print(format_report(rep))
    return EXIT_CORRUPT if rep["corrupt"] and not args.repair else 0
