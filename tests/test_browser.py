"""The served app in headless Chromium: every page draws without an exception or an error box.

Serves ``streamlit run app.py`` on a free port with IPT_CACHE pointing at a store seeded with real
tiny prompt-tuning results (``python -m ipt_core tune ... --steps 2``) plus synthetic IPT, stability,
task-map and method-comparison entries, opens the root first (see DESIGN.md: a fresh server that is
deep-linked first shows Streamlit's legacy page menu), then every page, and saves a screenshot of
each to ``test-artifacts/screenshots/<page>.png``. On every page it measures each plotly chart as drawn
(``render_checks``: no two texts overlap, none is cut off, no legend over a plot, not empty), and on the
guided tour it opens every step's tab (a screenshot each, ``tour_<n>.png``) and checks its paragraph and
its figure. A second test serves the app on a fresh store (the shipped results only, job worker on),
queues the Recovery page's intrinsic-tuning form with its defaults and 2 steps, and waits until the
finished run shows on the page.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from render_checks import MEASURE_PAGE_JS, rendered_defects

REPO = Path(__file__).resolve().parent.parent
SHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PAGES = [("overview", ""), ("tour", "tour"), ("tasks", "tasks"), ("prompt_tuning", "prompt_tuning"),
         ("task_map", "task_map"), ("transfer", "transfer"), ("recovery", "recovery"), ("stability", "stability"),
         ("methods", "methods"), ("jobs", "jobs")]
TITLES = ["Overview", "Guided tour", "Tasks", "Prompt tuning", "Subspace and task map", "Which task helps which",
          "Recovery", "Stability", "Methods", "Jobs"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
                       reason=f"needs {CHROMIUM} and {CHROMEDRIVER} (Debian packages chromium, chromium-driver)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("selenium")
    root = tmp_path_factory.mktemp("browser_store")
    env = dict(os.environ, IPT_CACHE=str(root), IPT_JOBS_AUTOSTART="0", PYTHONPATH=str(REPO))
    tune = subprocess.run([sys.executable, "-m", "ipt_core", "tune", "--suite", "demo", "--tasks",
                           "sms_spam,movie_sentiment", "--steps", "2", "--eval-every", "1", "--prompt-kind", "shallow"],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert tune.returncode == 0, tune.stderr[-2000:]
    sys.path.insert(0, str(Path(__file__).parent))
    from test_app import seed_results

    seed_results(root, with_pt=False)
    proc, url, log = _serve(root, autostart=False)
    yield url
    _stop(proc, log)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1400,2000",
                 # a desktop's mouse: headless Chromium has no hover pointer, so plotly would show every chart's
                 # toolbar all the time (as on a touch screen), over the right end of a long title
                 "--blink-settings=primaryHoverType=2,availableHoverTypes=2,primaryPointerType=4,availablePointerTypes=4"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield driver
    driver.quit()


def wait_rendered(driver, timeout: float = 90) -> None:
    """Until the script has finished and no skeleton is left (checked too early, a page shows nothing)."""
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    done_since = None
    while time.time() < deadline:
        done = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stApp"][data-test-script-state="notRunning"]')
        skeleton = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSkeleton"]')
        if done and not skeleton:
            done_since = done_since or time.time()
            if time.time() - done_since > 0.8:  # stays finished (a rerun may follow the first paint)
                return
        else:
            done_since = None
        time.sleep(0.2)
    raise AssertionError(f"page {driver.current_url} did not finish rendering in {timeout} s")


def measure_charts(driver, timeout: float = 10) -> list[dict]:
    """:data:`render_checks.MEASURE_PAGE_JS` once every visible chart is drawn (Streamlit loads the chart
    component lazily, and plotly draws after the script run); a chart still not drawn stays ``ready: False``."""
    deadline = time.time() + timeout
    while True:
        charts = [m for m in driver.execute_script(MEASURE_PAGE_JS) if m["visible"]]
        if all(m["ready"] for m in charts) or time.time() > deadline:
            return charts
        time.sleep(0.2)


def chart_defects(driver, where: str) -> list[str]:
    """What is wrong with the visible charts as drawn, each line naming ``where``, the chart and its texts."""
    out = []
    for m in measure_charts(driver):
        chart = f"{where}: chart {m['index'] + 1} {m.get('title', '')[:60]!r}"
        if not m["ready"]:
            out.append(f"{chart}: not drawn")
            continue
        if not m["drawn"]:
            out.append(f"{chart}: empty ({m['traces']} traces, nothing drawn)")
        out += [f"{chart}: {d}" for d in rendered_defects(m)]
    return out


# what each step of the guided tour shows besides its paragraph (pages/tour.py; the served store has them all)
TOUR_STEPS = {1: "table", 2: "chart", 3: "chart", 4: "chart", 5: "chart", 6: "chart"}

TOUR_PANEL_JS = r"""
const p = [...document.querySelectorAll('[data-testid="stTabPanel"]')].filter(e => e.offsetParent !== null);
return p.map(e => ({
  heading: (e.querySelector('h3') || {textContent: ''}).textContent,
  paragraph: Math.max(0, ...[...e.querySelectorAll('[data-testid="stMarkdownContainer"] p')].map(x => x.textContent.length)),
  charts: e.querySelectorAll('[data-testid="stPlotlyChart"]').length,
  tables: e.querySelectorAll('[data-testid="stDataFrame"]').length,
  errors: [...e.querySelectorAll('[data-testid="stException"], [data-testid="stAlertContentError"]')]
    .map(x => x.textContent.slice(0, 300)),
}));
"""


def tour_steps(driver) -> list[str]:
    """On the guided tour page: open each step's tab; its heading, its paragraph, its figure (or table)
    drawn and readable, no error box; a screenshot of each (``tour_<n>.png``)."""
    from selenium.webdriver.common.by import By

    out = []
    tabs = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stTabs"] [data-testid="stTab"]')
    if len(tabs) != len(TOUR_STEPS):
        return [f"{len(tabs)} step tabs, not {len(TOUR_STEPS)}: {[t.text for t in tabs]}"]
    for n, tab in enumerate(tabs, 1):
        tab.click()  # the tabs switch in the browser (no rerun); plotly redraws a chart it drew hidden
        where = f"tour step {n} ({tab.text!r})"
        deadline = time.time() + 5
        while True:
            panels = driver.execute_script(TOUR_PANEL_JS)
            if (len(panels) == 1 and panels[0]["heading"].startswith(f"Step {n}:")) or time.time() > deadline:
                break
            time.sleep(0.1)
        problems = chart_defects(driver, where)
        driver.save_screenshot(str(SHOTS / f"tour_{n}.png"))
        if len(panels) != 1 or not panels[0]["heading"].startswith(f"Step {n}:"):
            out.append(f"{where}: its panel did not show: {panels}")
            continue
        p = panels[0]
        if p["errors"]:
            out.append(f"{where}: error box: {p['errors']}")
        if p["paragraph"] < 200:
            out.append(f"{where}: no paragraph to read (longest {p['paragraph']} characters)")
        if TOUR_STEPS[n] == "chart" and p["charts"] != 1:
            out.append(f"{where}: {p['charts']} figures, not 1")
        if TOUR_STEPS[n] == "table" and not p["tables"]:
            out.append(f"{where}: no table")
        out += problems
    return out


def test_every_page_renders_in_chromium(server, browser):
    from selenium.webdriver.common.by import By

    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.get(server + "/")  # the root first: it runs st.navigation, so the declared menu is used
    wait_rendered(browser)
    nav = browser.find_element(By.CSS_SELECTOR, '[data-testid="stSidebarNav"]').text
    for title in TITLES:
        assert title in nav, f"{title!r} missing from the menu: {nav!r}"
    problems, chart_problems, tour_problems = {}, [], ["the tour page was not visited"]
    with_charts = {"prompt_tuning", "task_map", "transfer", "recovery", "stability", "methods"}  # overview: on request
    for name, path in PAGES:
        browser.get(f"{server}/{path}")
        wait_rendered(browser)
        time.sleep(0.5)  # plotly draws just after the script run
        browser.save_screenshot(str(SHOTS / f"{name}.png"))
        exc = [e.text[:500] for e in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')]
        err = [e.text[:500] for e in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentError"]')]
        if exc or err:
            problems[name] = exc + err
        heading = browser.find_elements(By.CSS_SELECTOR, "h1")
        assert heading and heading[0].text.strip(), f"{name}: no page title"
        if name in with_charts:
            assert browser.find_elements(By.CSS_SELECTOR, '[data-testid="stPlotlyChart"]'), f"{name}: no chart"
        if name == "overview":
            assert "mean test accuracy" in browser.find_element(By.TAG_NAME, "body").text
        chart_problems += chart_defects(browser, name)
        if name == "tour":
            tour_problems = tour_steps(browser)
    report = [f"{name}: error box: {p}" for name, p in problems.items()] + chart_problems + tour_problems
    assert not report, "\n".join(report)
    shots = {n for n, _ in PAGES} | {f"tour_{n}" for n in TOUR_STEPS}
    assert {p.stem for p in SHOTS.glob("*.png")} >= shots  # a set: other tests add shots too


def _serve(root: Path, *, autostart: bool):
    """``streamlit run app.py`` on a free port with ``IPT_CACHE=root``; returns (process, url, log)."""
    env = dict(os.environ, IPT_CACHE=str(root), IPT_JOBS_AUTOSTART="1" if autostart else "0", PYTHONPATH=str(REPO))
    env.pop("IPT_SHIPPED_RESULTS", None)
    port = _free_port()
    log = open(root / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return proc, url, log
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            log.close()
            pytest.fail(f"streamlit did not start: {(root / 'streamlit.log').read_text()[-3000:]}")
        time.sleep(0.3)


def _retry_stale(read, tries: int = 10):
    """``read()``, again while a Streamlit rerun replaces the elements it holds (the polling fragment reruns)."""
    from selenium.common.exceptions import StaleElementReferenceException

    for attempt in range(tries):
        try:
            return read()
        except StaleElementReferenceException:
            if attempt == tries - 1:
                raise
            time.sleep(0.5)


def _stop(proc, log) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture
def fresh_server(tmp_path):
    """A served app on an empty store (the shipped demo results only), with the job worker on."""
    pytest.importorskip("selenium")
    proc, url, log = _serve(tmp_path, autostart=True)
    yield url, tmp_path
    _stop(proc, log)
    try:  # the worker the app started for this store (and only it)
        os.kill(int((tmp_path / "jobs" / "worker.pid").read_text().strip()), 15)
    except (OSError, ValueError):
        pass


def test_intrinsic_tuning_form_on_a_fresh_store_finishes_with_a_result(fresh_server, browser):
    """Issue 17: on a fresh clone the Recovery page's intrinsic-tuning form, with its defaults (the
    shipped demo subspace) and 2 steps, runs to the end and its result shows on the page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, root = fresh_server
    browser.get(url + "/")
    wait_rendered(browser)
    browser.get(url + "/recovery")
    wait_rendered(browser)
    steps = browser.find_element(By.CSS_SELECTOR, 'input[aria-label="IST steps"]')
    steps.send_keys(Keys.CONTROL, "a")
    steps.send_keys("2", Keys.ENTER)
    wait_rendered(browser)
    _retry_stale(lambda: [b for b in browser.find_elements(By.CSS_SELECTOR, "button")
                          if b.text.strip() == "Queue intrinsic tuning"][0].click())
    deadline = time.time() + 400
    while time.time() < deadline:  # the job panel polls; the page reruns when the job ends
        heads = _retry_stale(lambda: [h.text for h in browser.find_elements(By.CSS_SELECTOR, "h3")])
        if "Intrinsic tuning runs" in heads:
            break
        time.sleep(1.0)
    else:
        logs = sorted((root / "jobs").glob("*/log.txt"))
        raise AssertionError(f"no result on the Recovery page; job log: {logs[-1].read_text()[-2000:] if logs else None}")
    wait_rendered(browser)
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "recovery_after_ist.png"))
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentError"]')
    status = [json.loads(p.read_text())["status"] for p in (root / "jobs").glob("*/status.json")]
    assert status == ["done"]
