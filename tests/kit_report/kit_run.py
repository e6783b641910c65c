"""The kit run the HTML report's tests look at, and how they run pytest."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TESTS = Path(__file__).parent.parent  # where the broken_backends package lives
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
