"""The browser client's own tests, run by Node's test runner under pytest."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from sessionclock import constants
from tests.conftest import unavailable

REPO_ROOT = Path(__file__).resolve().parent.parent
BROWSER_MODULE = REPO_ROOT / "src/sessionclock/web/static/sessionclock.js"


def test_node_suite_js_client_passes() -> None:
    """Every test in tests/js passes under `node --test`."""
    node = shutil.which("node")
    if node is None:
        unavailable("node", FileNotFoundError("node is not on PATH"))
        return

    try:
        result = subprocess.run(
            [node, "--test", "tests/js/"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"node --test ran longer than 120 s:\n{error.stdout!r}")

    if result.returncode != 0:
        pytest.fail(
            f"node --test exited with {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
        )


def test_browser_clock_schedule_matches_python_constants() -> None:
    """sessionclock.js samples the clock with the numbers of sessionclock.constants."""
    source = BROWSER_MODULE.read_text()
    exported = dict(re.findall(r"export const (CLOCK_\w+) = ([\d.]+);", source))

    expected = {
        name: getattr(constants, name)
        for name in dir(constants)
        if name.startswith("CLOCK_")
    }
    assert expected
    assert {name: float(value) for name, value in exported.items()} == {
        name: float(value) for name, value in expected.items()
    }
