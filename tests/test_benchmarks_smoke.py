"""The benchmark command must keep working: one quick run of the in-memory section.

Nothing here is timed: the assertions are about the table being produced, not its numbers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_memory_benchmark_prints_its_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "memory"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("| Area") and "Ratio" in line for line in lines), done.stdout
    rows = [line for line in lines if line.startswith("| memory ")]
    operations = [row.split("|")[2].strip() for row in rows]
    assert operations == ["get", "put", "cas", "delete", "list page"]
    for row in rows:
        ratio = row.split("|")[5].strip()
        assert ratio.endswith("x"), row
        assert float(ratio[:-1]) > 0, row
