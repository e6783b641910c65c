"""One kit run against a backend that fails its races, shared by the HTML report's tests.

The run is split over two xdist workers, as a CI run would be, so every test here also checks
that the report's data (windows included) makes it from the workers to the controller.
"""

from __future__ import annotations

import json
import os

import pytest

from kit_report.kit_run import BACKENDS, TESTS, KitRun, run_pytest


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
