"""The app's first paint: seconds from a fresh ``streamlit run app.py`` to a finished page in Chromium.

For each round: start a new server (on a fresh, empty store: the shipped results only, the job
worker off), open the root in headless Chromium, and time until the Overview's script has finished
and no skeleton is left; then open every other page once and time it the same way. Prints a table
and appends it to ``--out`` (the README's bench/SPEED.md).

    python bench/first_paint.py --rounds 3
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


def serve(store: Path) -> tuple[subprocess.Popen, str, float]:
    """A fresh server; returns (process, url, seconds until its health check answered)."""
    env = dict(os.environ, IPT_CACHE=str(store), IPT_JOBS_AUTOSTART="0", PYTHONPATH=str(ROOT))
    port = _free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--label", default="")
    ap.add_argument("--out", default=str(ROOT / "bench" / "SPEED.md"))
    args = ap.parse_args()
    load0 = os.getloadavg()
    health, first, pages = [], [], {p: [] for p in PAGES}
    driver = browser()
    try:
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory(prefix="ipt-paint-") as store:
                proc, url, up = serve(Path(store))
                try:
                    health.append(up)
                    first.append(painted(driver, url + "/"))
                    for p in PAGES:
                        pages[p].append(painted(driver, f"{url}/{p}"))
                finally:
                    proc.terminate()
                    proc.wait(timeout=20)
    finally:
        driver.quit()
    load1 = os.getloadavg()
    med = lambda xs: f"{np.median(xs):.2f}"
    lines = [f"### First paint{' (' + args.label + ')' if args.label else ''}", "",
             f"`python bench/first_paint.py --rounds {args.rounds}`, {time.strftime('%Y-%m-%d %H:%M')}; load average "
             f"{load0[0]:.2f} before, {load1[0]:.2f} after; median of {args.rounds} fresh servers (empty store, shipped "
             "results only); seconds from the browser's request until the page's script finished.", "",
             "| page | seconds (median) | min | max |", "|---|---|---|---|",
             f"| server start (health check answers) | {med(health)} | {min(health):.2f} | {max(health):.2f} |",
             f"| **Overview, first paint on the fresh server** | **{med(first)}** | {min(first):.2f} | {max(first):.2f} |"]
    lines += [f"| {p} (first visit) | {med(v)} | {min(v):.2f} | {max(v):.2f} |" for p, v in pages.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "a") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
