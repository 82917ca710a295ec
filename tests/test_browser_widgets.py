"""The explorers in a real browser: JupyterLab on 127.0.0.1 (a free port, a token) and headless
Chromium driven by Playwright. Each notebook with an explorer is run as a reader runs it (Run All
Cells); then each explorer's first slider is moved with the keyboard, and its figure must change.
An explorer with a Run button (`lab_widgets`) is pressed, must draw its figure and say what it
found, and must draw another after a slider moved and Run is pressed again. No cell may show an
error, and every widget must render.

Skipped when Debian's `chromium` or Playwright for Python is missing (`.ci/run` installs both;
Playwright drives the system Chromium, it never downloads a browser). The notebooks run on copies
(JupyterLab saves what it runs); training runs go where the notebook tests put theirs
($TUTORIAL_RUNS, else the repository's runs/), so a run trained here is not trained again there.
Screenshots are written to the test's temporary folder (its path is printed).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
EXPLORER = re.compile(r"^widgets\.\w+_explorer\(", re.M)
# The notebooks with an explorer, found from their sources (a new explorer is tested at once).
WITH_EXPLORERS = [
    p.stem for p in sorted(NOTEBOOKS.glob("[0-9][0-9]*_*.py")) if EXPLORER.search(p.read_text())
]
RUN_EXPLORER = re.compile(r"^lab_widgets\.\w+_explorer\(", re.M)  # a Run button, not live sliders
# In the page a cell's text has no line breaks: its cell is found by the call alone, and a slider
# explorer's call must not be the end of a Run-button explorer's name.
EXPLORER_CELL = re.compile(r"(?<!lab_)widgets\.\w+_explorer\(")
RUN_EXPLORER_CELL = re.compile(r"lab_widgets\.\w+_explorer\(")
WITH_RUN_EXPLORERS = [
    p.stem for p in sorted(NOTEBOOKS.glob("[0-9][0-9]*_*.py")) if RUN_EXPLORER.search(p.read_text())
]
RUN_TIMEOUT_S = 420  # one notebook, Run All to the last cell
ERROR_TEXT = re.compile(r"Traceback|\b\w+Error\b|Error displaying widget|model not found")
SETTINGS = {  # JupyterLab user settings: every cell in the page, nothing saved, no pop-ups
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def _chromium() -> str | None:
    """$CHROMIUM when set (and only it), else Debian's `chromium` on PATH."""
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    if _chromium() is None:
        pytest.skip("no chromium: install Debian's (apt-get install -y chromium) or set $CHROMIUM")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=_chromium(),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory, browser):
    """A JupyterLab server over copies of the notebooks: (base URL, token, root folder)."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(NOTEBOOKS, root / "notebooks", ignore=shutil.ignore_patterns("*.py", ".*"))
    for name, values in SETTINGS.items():
        (root / "settings" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "settings" / name).write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, TUTORIAL_FAST="1", JUPYTER_CONFIG_DIR=str(root / "config"))
    env["TUTORIAL_RUNS"] = env.get("TUTORIAL_RUNS") or str(ROOT / "runs")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1"]
    command += [f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"]
    command += [f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={root / 'settings'}"]
    command += [f"--LabApp.workspaces_dir={root / 'workspaces'}", "--LabApp.news_url=None"]
    command += ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    log = (root / "lab.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(server, base, token, root / "lab.log")
        yield base, token, root
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _wait_for_server(server: subprocess.Popen, base: str, token: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited ({server.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"{base}/api/status", params={"token": token}, timeout=5).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(1)
    pytest.fail(f"JupyterLab did not answer in 120 s:\n{log.read_text()[-3000:]}")


def _run_all(page) -> None:
    """Accept a kernel dialog if one opens, then Run > Run All Cells, and wait for the last cell."""
    page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=120_000)
    for _ in range(3):
        dialog = page.locator(".jp-Dialog")
        try:
            dialog.wait_for(timeout=3_000)
        except Exception:  # no dialog: the kernel started on its own
            break
        dialog.locator(".jp-mod-accept").click()
    page.locator("#jp-main-statusbar").get_by_text("Idle").wait_for(timeout=120_000)
    page.click('.lm-MenuBar-itemLabel:text-is("Run")')
    page.click('.lm-Menu-itemLabel:text-is("Run All Cells")')
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
        if prompts and all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts):
            return
        page.wait_for_timeout(1000)
    pytest.fail(f"the notebook did not finish in {RUN_TIMEOUT_S} s")


def _errors(page) -> list[str]:
    outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
    return [text[:800] for text in outputs if ERROR_TEXT.search(text)]


def _move_first_slider(cell, shots: Path, label: str) -> tuple[str, str]:
    """Press → five times on the explorer's first slider; return its figure's src before and after."""
    figure = cell.locator(".jp-OutputArea-output img").first
    figure.wait_for(timeout=60_000)
    before = figure.get_attribute("src")
    readout = cell.locator(".widget-slider .widget-readout").first
    value = readout.inner_text()
    handle = cell.locator(".widget-slider .noUi-handle").first
    handle.scroll_into_view_if_needed()
    cell.screenshot(path=str(shots / f"{label}-before.png"))
    handle.focus()
    for _ in range(5):
        handle.press("ArrowRight")
    after = _settled_src(cell, before)
    cell.screenshot(path=str(shots / f"{label}-after.png"))
    assert readout.inner_text() != value, f"{label}: the slider did not move (still {value})"
    return before, after


def _settled_src(cell, before: str | None, timeout_s: float = 60) -> str | None:
    """The figure's src once it has changed from `before` and then stayed the same for 2 s (each
    key press redraws: the last redraw is the one to look at)."""
    figure = cell.locator(".jp-OutputArea-output img").first
    deadline = time.monotonic() + timeout_s
    src, stable_since = before, time.monotonic()
    while time.monotonic() < deadline:
        cell.page.wait_for_timeout(250)
        now = figure.get_attribute("src")
        if now != src:
            src, stable_since = now, time.monotonic()
        elif src != before and time.monotonic() - stable_since >= 2:
            break
    return src


@contextlib.contextmanager
def _notebook_run_in_lab(name, browser, lab, shots: Path, calls: re.Pattern, cell: re.Pattern):
    """Open `name` in JupyterLab, Run All, check for errors; yield its cells whose text matches
    `cell`, as many as `calls` finds in the notebook's source.
    On leaving: no error output, no error in the page, the kernels shut down."""
    base, token, _root = lab
    print(f"screenshots: {shots}")
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page_errors = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    try:
        page.goto(f"{base}/lab/tree/notebooks/{name}.ipynb?reset&token={token}")
        _run_all(page)
        page.screenshot(path=str(shots / "after-run.png"))
        assert not _errors(page), f"{name}: error outputs after Run All: {_errors(page)}"
        cells = page.locator(".jp-CodeCell").filter(
            has=page.locator(".jp-InputArea-editor", has_text=cell)
        )
        expected = len(calls.findall((NOTEBOOKS / f"{name}.py").read_text()))
        assert cells.count() == expected, f"{name}: {cells.count()} explorer cells, want {expected}"
        yield cells
        assert not _errors(page), f"{name}: error outputs after the widgets: {_errors(page)}"
        assert not page_errors, f"{name}: errors in the page: {page_errors[:3]}"
    finally:
        page.close()
        _shut_down_kernels(base, token)


@pytest.mark.timeout(RUN_TIMEOUT_S + 300)
@pytest.mark.parametrize("name", WITH_EXPLORERS)
def test_explorers_respond_in_a_browser(name, browser, lab, tmp_path_factory):
    shots = tmp_path_factory.mktemp(f"shots-{name}")
    with _notebook_run_in_lab(name, browser, lab, shots, EXPLORER, EXPLORER_CELL) as cells:
        for i in range(cells.count()):
            before, after = _move_first_slider(cells.nth(i), shots, f"explorer{i}")
            changed = after != before  # (not the two base64 images in the report)
            assert changed, f"{name}: explorer {i}'s figure did not change"


def _press_run(cell, before: str | None, label: str, shots: Path) -> str | None:
    """Press the explorer's Run button; wait until its status reports a finished run (a Dice) and
    its figure has settled; return the figure's src."""
    status = cell.locator(".widget-html").first
    old = status.inner_text().strip()
    cell.get_by_role("button", name="Run").click()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # "running...", "step N: Dice ...", then "Dice ..., N s"
        text = status.inner_text().strip()
        if text != old and text.startswith("Dice "):
            break
        cell.page.wait_for_timeout(250)
    else:
        pytest.fail(f"{label}: the explorer's status did not report a finished run: {text!r}")
    cell.locator(".jp-OutputArea-output img").first.wait_for(timeout=60_000)
    after = _settled_src(cell, before)
    cell.screenshot(path=str(shots / f"{label}.png"))
    return after


@pytest.mark.timeout(RUN_TIMEOUT_S + 300)
@pytest.mark.parametrize("name", WITH_RUN_EXPLORERS)
def test_run_button_explorers_draw_in_a_browser(name, browser, lab, tmp_path_factory):
    shots = tmp_path_factory.mktemp(f"shots-run-{name}")
    with _notebook_run_in_lab(name, browser, lab, shots, RUN_EXPLORER, RUN_EXPLORER_CELL) as cells:
        for i in range(cells.count()):
            cell = cells.nth(i)
            cell.scroll_into_view_if_needed()
            assert cell.locator(".jp-OutputArea-output img").count() == 0, "drawn before Run"
            first = _press_run(cell, None, f"explorer{i}-first-run", shots)
            assert first, f"{name}: explorer {i} drew no figure after Run"
            readout = cell.locator(".widget-slider .widget-readout").first
            value = readout.inner_text()
            cell.locator(".widget-slider .noUi-handle").first.focus()
            for _ in range(5):
                cell.locator(".widget-slider .noUi-handle").first.press("ArrowLeft")
            assert readout.inner_text() != value, f"{name}: the slider did not move"
            second = _press_run(cell, first, f"explorer{i}-second-run", shots)
            assert second != first, f"{name}: explorer {i}'s figure did not change on a new Run"


def _shut_down_kernels(base: str, token: str) -> None:
    params = {"token": token}
    for session in requests.get(f"{base}/api/sessions", params=params, timeout=10).json():
        requests.delete(f"{base}/api/sessions/{session['id']}", params=params, timeout=30)
