"""A failing browser test leaves a screenshot of its page behind, and a passing one does not."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import PROJECT_ROOT

INNER = """
def test_fails_on_a_page(page):
    page.set_content("<h1>the page when the test failed</h1>")
    assert False, "fails on purpose"


def test_passes_on_a_page(page):
    page.set_content("<h1>fine</h1>")
"""


def test_a_failing_browser_test_saves_a_screenshot(browser, tmp_path):
    """The fixtures run in a pytest of their own on a test that fails on purpose."""
    (tmp_path / "conftest.py").write_text("from tests.browser.conftest import *  # noqa: F403\n")
    (tmp_path / "test_inner.py").write_text(INNER)
    artifacts = tmp_path / "artifacts"
    env = {
        **os.environ,
        "HOUSING_TEST_ARTIFACTS": str(artifacts),
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), str(PROJECT_ROOT / "src")]),
    }
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 1, run.stdout[-3000:]
    assert "1 failed, 1 passed" in run.stdout, run.stdout[-3000:]
    shots = sorted(p.name for p in (artifacts / "browser").iterdir())
    assert shots == ["test_fails_on_a_page.png"]
    assert (artifacts / "browser" / shots[0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "screenshot of the failing page" in run.stdout
