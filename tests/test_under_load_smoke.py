"""The under-load tool must keep giving verdicts: green for a correct backend, red for a
broken one (so that its "20 of 20 runs green" in docs/conformance.md could have said otherwise).

Short runs on one kit area, without spinners; the 20 runs under load are documented, not run
here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _under_load(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}  # broken_backends, for --factory
    command = [sys.executable, "-m", "tools.under_load", "--runs", "1", "--busy", "1", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)


def test_the_memory_backend_is_green_through_an_authors_test_file() -> None:
    done = _under_load("--", "-k", "delete")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 of 1 runs green" in done.stdout, done.stdout
    assert " passed" in done.stdout, done.stdout
    assert "failed" not in done.stdout, done.stdout


def test_a_broken_backend_is_red_and_its_failure_is_shown() -> None:
    done = _under_load("--factory", "broken_backends:delete_true_for_expired", "--", "-k", "delete")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "0 of 1 runs green" in done.stdout, done.stdout
    assert "KV-DEL-1" in done.stdout, done.stdout
