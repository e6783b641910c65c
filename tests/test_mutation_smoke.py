"""The mutation tool must keep working: one mutant, one kit module, against the real kit.

The full run (every mutant of the memory backend against the whole kit) is slow and is not
part of the suite; docs/conformance.md gives its command and its latest score.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _mutation(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tools.mutation", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True)


def test_a_version_overflow_mutant_is_killed_and_the_real_module_passes(tmp_path: Path) -> None:
    report = tmp_path / "mutation.md"
    report.write_text("# Mutation testing\n\n")
    done = _mutation(
        *("--module", "pmcp_tasks/backend_base.py", "--jobs", "1", "--suite", "test_data.py"),
        *("--where", "if version > MAX_VERSION", "--report", str(report)),
    )
    # Exit 2 would mean the unchanged module failed test_data.py (then no kill means anything).
    assert done.returncode == 0, done.stdout + done.stderr
    assert "backend_base.py: 1 of 1 mutants killed (100.0%)" in done.stdout, done.stdout
    assert "killed   >= -> >" in done.stdout, done.stdout
    # The dated report's section is appended, with the measured score and the command.
    written = report.read_text()
    assert written.startswith("# Mutation testing\n\n## `pmcp_tasks/backend_base.py` on `memory`")
    assert "**1 of 1 killed**" in written, written
    assert "--where if version > MAX_VERSION" in written, written


def test_the_mutants_of_the_memory_backend_are_listed_once_each() -> None:
    listed = _mutation("--list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) >= 50, listed.stdout  # memory.py has about 60 mutation sites
    assert len({line.split(":", 1)[0] for line in lines}) == len(lines), "indexes repeat"


def test_forgotten_checks_and_wrappers_of_the_author_base_are_mutants() -> None:
    listed = _mutation("--module", "pmcp_tasks/backend_base.py", "--list")
    assert listed.returncode == 0, listed.stderr
    assert "skip `check_key(key)`" in listed.stdout, listed.stdout
    assert "await `self._get(key)` without `self._guard`" in listed.stdout, listed.stdout
