"""Section 5: wall time of the default conformance kit per backend, serial and with ``-n 2``.

Each run is ``python -m pytest --backend=NAME`` from an empty temporary directory, exactly
what a backend author types (the built-in names run on their embedded engines: fakeredis and
moto in-process), so the time includes interpreter and plugin start-up.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time

from benchmarks.report import KitRow
from benchmarks.workload import Settings

BACKENDS = ("memory", "redis", "dynamodb")
_TIMEOUT = 240.0
_SUMMARY = re.compile(r"=*\s*(\d+ \w+.*?) in [\d.]+s")


def run_kit(backend: str, workers: int) -> KitRow:
    command = [
        sys.executable,
        "-m",
        "pytest",
        f"--backend={backend}",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    if workers > 1:
        command += ["-n", str(workers)]
    with tempfile.TemporaryDirectory(prefix="pmcp-kit-") as empty:
        started = time.perf_counter()
        try:
            done = subprocess.run(
                command, cwd=empty, capture_output=True, text=True, timeout=_TIMEOUT
            )
        except subprocess.TimeoutExpired:
            return KitRow(backend, workers, time.perf_counter() - started, "timed out")
        elapsed = time.perf_counter() - started
    summaries = _SUMMARY.findall(done.stdout)
    outcome = summaries[-1] if summaries else f"exit status {done.returncode}"
    if done.returncode != 0:
        outcome = f"FAILED (exit {done.returncode}): {outcome}"
    return KitRow(backend, workers, elapsed, outcome)


def run(settings: Settings) -> list[KitRow]:
    """Every backend with 1 and 2 workers; ``--quick`` runs the memory kit once."""
    if settings.quick:
        return [run_kit("memory", 1)]
    return [run_kit(backend, workers) for backend in BACKENDS for workers in (1, 2)]
