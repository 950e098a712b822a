"""The app's first paint: seconds from a fresh ``streamlit run app.py`` to a finished page in Chromium.

For each round: start a new server (on a fresh, empty store: the shipped results only, the job
worker off), open the root in headless Chromium, and time until the Overview's script has finished
and no skeleton is left; then open every other page once and time it the same way. Prints a table
and appends it to ``--out`` (the README's bench/SPEED.md). ``--before DIR``: another checkout (e.g.
``git worktree add /tmp/before COMMIT``) served in alternate rounds, so before and after are measured
side by side in one run, under the same load.

    python bench/first_paint.py --rounds 3
    python bench/first_paint.py --rounds 3 --before /tmp/before
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PAGES = ["tasks", "prompt_tuning", "task_map", "recovery", "stability", "methods", "jobs"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(store: Path, repo: Path = ROOT) -> tuple[subprocess.Popen, str, float]:
    """A fresh server of ``repo``'s app; returns (process, url, seconds until its health check answered)."""
    env = dict(os.environ, IPT_CACHE=str(store), IPT_JOBS_AUTOSTART="0", PYTHONPATH=str(repo))
    port = _free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return proc, url, time.perf_counter() - t0
        except OSError:
            pass
        if proc.poll() is not None:
            raise SystemExit("streamlit exited before answering its health check")
        time.sleep(0.05)


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,2000"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def painted(driver, url: str, timeout: float = 120) -> float:
    """Seconds from ``get(url)`` until the script has finished and no skeleton is left (and stays so
    for 0.5 s; the 0.5 s is not counted)."""
    from selenium.webdriver.common.by import By

    t0 = time.perf_counter()
    driver.get(url)
    done_at = None
    while time.perf_counter() - t0 < timeout:
        done = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stApp"][data-test-script-state="notRunning"]')
        skeleton = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSkeleton"]')
        title = driver.find_elements(By.CSS_SELECTOR, "h1")
        if done and not skeleton and title:
            done_at = done_at or time.perf_counter()
            if time.perf_counter() - done_at > 0.5:
                return done_at - t0
        else:
            done_at = None
        time.sleep(0.05)
    raise SystemExit(f"{url} did not finish in {timeout} s")


def measure(driver, repo: Path, rounds: int) -> tuple[list, list, dict]:
    health, first, pages = [], [], {p: [] for p in PAGES}
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="ipt-paint-") as store:
            proc, url, up = serve(Path(store), repo)
            try:
                health.append(up)
                first.append(painted(driver, url + "/"))
                for p in PAGES:
                    pages[p].append(painted(driver, f"{url}/{p}"))
            finally:
                proc.terminate()
                proc.wait(timeout=20)
    return health, first, pages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--label", default="")
    ap.add_argument("--before", default=None, help="another checkout, measured in alternate rounds")
    ap.add_argument("--out", default=str(ROOT / "bench" / "SPEED.md"))
    args = ap.parse_args()
    load0 = os.getloadavg()
    repos = {"after": ROOT} | ({"before": Path(args.before).resolve()} if args.before else {})
    got = {k: ([], [], {p: [] for p in PAGES}) for k in repos}
    driver = browser()
    try:
        for _ in range(args.rounds):
            for name, repo in repos.items():  # alternate: both see the same load
                h, f, pg = measure(driver, repo, 1)
                got[name][0].extend(h)
                got[name][1].extend(f)
                for p in PAGES:
                    got[name][2][p].extend(pg[p])
    finally:
        driver.quit()
    load1 = os.getloadavg()
    med = lambda xs: float(np.median(xs))  # noqa: E731
    cell = lambda xs: f"{med(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"  # noqa: E731
    names = list(repos)[::-1]  # before first
    head = " | ".join(f"{n}: median (min-max) s" for n in names) + (" | before / after" if args.before else "")
    lines = [f"### First paint{' (' + args.label + ')' if args.label else ''}", "",
             f"`python bench/first_paint.py --rounds {args.rounds}{' --before ' + str(args.before) if args.before else ''}`, "
             f"{time.strftime('%Y-%m-%d %H:%M')}; load average {load0[0]:.2f} before, {load1[0]:.2f} after; "
             f"{args.rounds} fresh servers each{', alternating' if args.before else ''} (empty store, shipped results "
             "only); seconds from the browser's request until the page's script finished and no skeleton was left.", "",
             f"| page | {head} |", "|---|" + "---|" * (len(names) + bool(args.before))]

    def row(label, pick):
        vals = [pick(got[n]) for n in names]
        ratio = f" | {med(vals[0]) / med(vals[1]):.1f}x" if args.before else ""
        return f"| {label} | " + " | ".join(cell(v) for v in vals) + ratio + " |"

    lines.append(row("server start (health check answers)", lambda g: g[0]))
    lines.append(row("**Overview, first paint on the fresh server**", lambda g: g[1]))
    lines += [row(f"{p} (first visit)", lambda g, p=p: g[2][p]) for p in PAGES]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "a") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
