"""One kit run against a backend that fails its races, shared by the HTML report's tests.

The run is split over two xdist workers, as a CI run would be, so every test here also checks
that the report's data (windows included) makes it from the workers to the controller.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).parent.parent  # where broken_backends.py lives
BROKEN = "broken_backends:cas_read_await_write"
BACKENDS = ("memory", BROKEN)


@dataclass(frozen=True)
class KitRun:
    """A finished kit run: its directory, terminal output and both reports."""

    path: Path
    env: dict[str, str]
    output: str
    returncode: int
    report: dict[str, Any]
    html: str


def run_pytest(path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="session")
def kit_run(tmp_path_factory: pytest.TempPathFactory) -> KitRun:
    path = tmp_path_factory.mktemp("kit-run")
    paths = [str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    done = run_pytest(
        path,
        env,
        "--backend",
        ",".join(BACKENDS),
        "--hypothesis-profile",
        "ci",
        "-n",
        "2",
        "-p",
        "no:cacheprovider",
        "--conformance-report",
        "report.json",
        "--conformance-html",
        "report.html",
        # races (the windows) and sizes (skips with a reason), to keep the run short
        "--pyargs",
        "conformance.suite.test_races",
        "conformance.suite.test_sizes",
    )
    output = done.stdout + done.stderr
    assert (path / "report.html").exists(), output
    return KitRun(
        path=path,
        env=env,
        output=output,
        returncode=done.returncode,
        report=json.loads((path / "report.json").read_text()),
        html=(path / "report.html").read_text(),
    )
