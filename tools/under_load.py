"""The kit's own-test-file route, run again and again on a machine kept busy on every core.

    python -m tools.under_load                 # 20 runs, one busy loop per core
    python -m tools.under_load --runs 3 --busy 0 -- -k TestKeys

A backend author who subclasses ``BackendContract`` in a test file of their own runs the kit
without ``--backend`` and often on a loaded laptop or CI runner. That route once ran without the
kit's Hypothesis profiles, so a correct backend was reported broken one run in five under load.
This tool writes such an author's project in a temporary directory (one test file, no conftest,
nothing from this repository's test configuration), starts ``--busy`` processes that spin at
normal priority, runs pytest there ``--runs`` times in a row against the memory backend, and
stops the spinners. A correct backend must be green on every run: any red run is a false verdict.
Arguments after ``--`` go to each pytest run.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

AUTHOR_TEST_FILE = """
import pytest

from conformance import BackendContract
from {module} import {factory}


class TestAuthorsBackend(BackendContract):
    @pytest.fixture
    def backend_factory(self):
        return {factory}
"""
SUMMARY = re.compile(r"^=* ?(\d+ \w+.*) in [\d.]+s", re.MULTILINE)


@contextmanager
def busy(count: int) -> Iterator[None]:
    """``count`` processes spinning at normal priority, stopped (by their own ids) on exit."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(prog="python -m tools.under_load", description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--busy", type=int, default=os.cpu_count() or 2, help="spinners")
    parser.add_argument(
        "--factory",
        default="reference_backends.memory:kit_factory",
        help="MODULE:NAME of the backend factory the author's test file returns",
    )
    args = parser.parse_args(own)
    module, _, factory = args.factory.partition(":")
    if not module or not factory:
        parser.error(f"--factory must be MODULE:NAME, not {args.factory!r}")

    with tempfile.TemporaryDirectory(prefix="kit-author-") as project:
        test_file = Path(project) / "test_authors_backend.py"
        test_file.write_text(AUTHOR_TEST_FILE.format(module=module, factory=factory))
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
        print(
            f"{args.runs} runs of `python {' '.join(command[1:])}` on {args.factory}, "
            f"{args.busy} busy loops, in {project}",
            flush=True,
        )
        red = 0
        with busy(args.busy):
            for run in range(1, args.runs + 1):
                started = time.monotonic()
                done = subprocess.run(command, cwd=project, capture_output=True, text=True)
                took = time.monotonic() - started
                summary = SUMMARY.findall(done.stdout)
                said = summary[-1] if summary else f"pytest exit {done.returncode}"
                print(f"run {run:2d}: exit {done.returncode} in {took:5.1f}s: {said}", flush=True)
                if done.returncode != 0:
                    red += 1
                    print(done.stdout[-4000:] + done.stderr[-2000:], flush=True)
    print(f"{args.runs - red} of {args.runs} runs green")
    return 0 if red == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
