"""The ``app`` command: serve the Streamlit app.

    ipt app                                         # http://127.0.0.1:8501
    ipt app --server.port 8600 --server.headless true

Every argument after ``app`` goes to ``streamlit run`` unchanged. Streamlit runs as a child process,
``python -m streamlit run <app.py> <arguments>`` with this interpreter and the current folder (so the
default store is ``./cache`` of the folder the command starts in, or ``$IPT_CACHE``): the core never
imports streamlit (an import-linter contract in pyproject.toml), and Streamlit owns its own process.

Which ``app.py``: the checkout's, at the repository root, when ``ipt_core`` runs from a checkout
(:func:`ipt_core.paths.is_checkout`); else the copy the wheel carries in ``ipt_app/site/`` (``setup.py``
puts ``app.py``, ``pages/*.py`` and ``.streamlit/config.toml`` there). Streamlit reads the
``.streamlit/config.toml`` beside the script as well as the working folder's, so either way the app
listens on 127.0.0.1 unless told otherwise.

Exit status: Streamlit's own; 2 with one line when streamlit is not installed or the app's files are missing.
"""
from __future__ import annotations

import argparse
import importlib.util
import signal
import subprocess
import sys
from pathlib import Path

from ipt_core.paths import PROJECT_ROOT, is_checkout

EXIT_BAD_INPUT = 2
INSTALLED_APP_DIR = ("ipt_app", "site")
"""Where the wheel carries the app, below site-packages (``setup.py``'s ``APP_DIR`` says the same)."""
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def register(sub) -> None:
    """Add ``app`` to the CLI's subparsers: ``-h`` is its own, every other argument goes to Streamlit."""
    p = sub.add_parser("app", help="serve the Streamlit app (arguments after 'app' go to streamlit run)",
                       description="Serve the Streamlit app: python -m streamlit run <app.py> [STREAMLIT_ARGS] "
                                   "in the current folder (default store ./cache there, or $IPT_CACHE).",
                       allow_abbrev=False,
                       epilog="e.g. ipt app --server.port 8600 --server.address 0.0.0.0 "
                              "(all of them: python -m streamlit run --help)")
    p.add_argument("streamlit_args", nargs=argparse.REMAINDER, metavar="STREAMLIT_ARGS",
                   help="passed to streamlit run unchanged, e.g. --server.port 8600")
    p.parse_known_args = _passing_unknown_options(p.parse_known_args)


def _passing_unknown_options(parse_known_args):
    """``parse_known_args`` that keeps the options it does not know (``--server.port``) as Streamlit's.

    argparse's REMAINDER does not take a first argument that looks like an option (bpo-17050): it is
    left over, and the CLI's ``parse_args`` refuses leftovers. The leftovers all come before the first
    plain argument (from there REMAINDER takes everything), so they go first, in their order.
    """
    def parse(args=None, namespace=None):
        ns, unknown = parse_known_args(args, namespace)
        ns.streamlit_args = list(unknown) + list(ns.streamlit_args or [])
        return ns, []

    return parse


def app_script() -> Path:
    """The ``app.py`` to serve: the checkout's, or the installed copy (see the module docstring)."""
    if is_checkout():
        return PROJECT_ROOT / "app.py"
    return PROJECT_ROOT.joinpath(*INSTALLED_APP_DIR, "app.py")


def streamlit_argv(script: Path, extra: list[str]) -> list[str]:
    """``python -m streamlit run <script> <extra>`` with this interpreter."""
    return [sys.executable, "-m", "streamlit", "run", str(script), *extra]


def cmd_app(args) -> int:
    """Run Streamlit on the app until it exits; a signal to this process is passed on to it."""
    if importlib.util.find_spec("streamlit") is None:  # looked up, not imported
        print("error: the app needs streamlit, which is not installed; install the app extra: "
              "pip install 'ipt-core[app]'", file=sys.stderr)
        return EXIT_BAD_INPUT
    script = app_script()
    if not script.is_file():
        print(f"error: the app's entry point {script} is missing; reinstall ipt-core "
              "(pip install 'ipt-core[app]') or run from a checkout", file=sys.stderr)
        return EXIT_BAD_INPUT
    extra = list(args.streamlit_args or [])
    if extra[:1] == ["--"]:
        extra = extra[1:]
    print(f"ipt app: streamlit run {script}", file=sys.stderr, flush=True)
    child: subprocess.Popen | None = None

    def forward(signum, _frame):  # Streamlit stops on SIGINT/SIGTERM; this process waits for it
        if child is not None:
            child.send_signal(signum)  # a no-op once the child has been waited for

    previous = {s: signal.signal(s, forward) for s in _FORWARDED}  # before the start: no orphan
    try:
        child = subprocess.Popen(streamlit_argv(script, extra))
        code = child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    # a child killed by a signal: exit as a shell reports it (128 + the signal)
    return 128 - code if code < 0 else code
