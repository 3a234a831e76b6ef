"""The browser client's own tests, run by Node's test runner under pytest."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import unavailable

REPO_ROOT = Path(__file__).resolve().parent.parent


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
