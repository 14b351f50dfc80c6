"""Real servers on 127.0.0.1 and Debian's Chromium driven by Playwright.

Chromium comes from the system (`apt-get install chromium`, as .ci/run does): Playwright
cannot download its own browser here. Under ``CI=true`` a missing browser fails the
tests; elsewhere they are skipped with what is missing. A test that fails leaves a
full-page screenshot in ``test-artifacts/browser/`` (git-ignored; ``HOUSING_TEST_ARTIFACTS``
moves it).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PROJECT_ROOT, free_port

# the serving tests' small real model behind a registry stand-in, and the API under uvicorn
from tests.delivery.conftest import api, closed_port, serve  # noqa: F401
from tests.serving.conftest import config, fitted_models, registry  # noqa: F401

CHROMIUM = Path(os.environ.get("HOUSING_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in a container
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("HOUSING_TEST_ARTIFACTS") or PROJECT_ROOT / "test-artifacts") / "browser"
UI_APP = PROJECT_ROOT / "src" / "housing" / "ui" / "app.py"
START_TIMEOUT_S = 60
TIMEOUT_MS = 30_000  # one page action or expectation; Streamlit's first render is the slowest
LOCAL = re.compile(r"^(https?|wss?)://127\.0\.0\.1(:\d+)?/|^(data|blob|about):")


def missing() -> str | None:
    """What the browser tests need and this machine lacks, or None."""
    try:
        import playwright.sync_api  # noqa: F401, PLC0415
    except ImportError:
        return "the playwright package (pip install -e '.[test]')"
    if not CHROMIUM.is_file():
        return f"Chromium at {CHROMIUM} (apt-get install chromium, as .ci/run does)"
    return None


@pytest.fixture(
    scope="package"
)  # stopped before other packages: its event loop would outlive the browser tests
def browser():
    lacking = missing()
    if lacking:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run under CI=true, but this machine lacks {lacking}")
        pytest.skip(f"browser tests need {lacking}")
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415

    expect.set_options(timeout=TIMEOUT_MS)  # its default, 5 s, is short for a busy 2-core machine
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test, for the screenshot fixture to read."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def screenshot_path(nodeid: str) -> Path:
    return ARTIFACTS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1]) + ".png")


@pytest.fixture
def page(browser, request):
    """A fresh page (its own context) that records every request it makes; on failure,
    a full-page screenshot goes to test-artifacts/browser/<test>.png."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.requests = []  # playwright Request objects: .url, .resource_type
    page.on("request", lambda request: page.requests.append(request))  # noqa: PLW0108 (playwright needs a Python function)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        path = screenshot_path(request.node.nodeid)
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot of the failing page: {path}")  # noqa: T201 (shown in the failure report)
    context.close()


def external(requests: list) -> list[tuple[str, str]]:
    """The requests meant to leave this machine (anything not to 127.0.0.1 or in-page),
    as (resource type, URL)."""
    return [(r.resource_type, r.url) for r in requests if not LOCAL.match(r.url)]


def wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"{url} was not up within {START_TIMEOUT_S} s"
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)


@contextlib.contextmanager
def background(command: list[str], health_url: str, log: Path, **kwargs) -> Iterator[None]:
    """A server process, up when its health URL answers 200, stopped afterwards."""
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, **kwargs)
    try:
        wait_until_up(health_url, process, log)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@contextlib.contextmanager
def streamlit_ui(api_url: str, tmp_path: Path) -> Iterator[str]:
    """`streamlit run src/housing/ui/app.py` from the project root (so .streamlit/config.toml
    applies), on a free port of 127.0.0.1, talking to ``api_url``."""
    port = free_port()
    env = {**os.environ, "HOUSING_API_URL": api_url, "HOUSING_API_TIMEOUT": "10"}
    env.pop("HOUSING_API_PUBLIC_URL", None)
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(UI_APP),
        "--server.address=127.0.0.1",
        f"--server.port={port}",
        "--server.headless=true",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
    ]
    url = f"http://127.0.0.1:{port}"
    with background(command, f"{url}/_stcore/health", tmp_path / "streamlit.log", cwd=PROJECT_ROOT, env=env):
        yield url


@pytest.fixture
def ui(api, tmp_path):  # noqa: F811 (the imported fixture)
    """The UI against the real API app (champion version 1)."""
    with streamlit_ui(api, tmp_path) as url:
        yield url


@contextlib.contextmanager
def static_site(folder: Path, tmp_path: Path) -> Iterator[str]:
    """``folder`` served by Python's http.server on a free port of 127.0.0.1."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "http.server",
        str(port),
        "--bind",
        "127.0.0.1",
        "--directory",
        str(folder),
    ]
    url = f"http://127.0.0.1:{port}"
    with background(command, f"{url}/", tmp_path / "http.log"):
        yield url
