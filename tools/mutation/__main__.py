"""Mutation testing of the conformance kit: does the kit fail every broken reference backend?

    python -m tools.mutation                       # memory backend, 2 mutants at a time
    python -m tools.mutation --jobs 1 --only 12,40 # chosen mutants
    python -m tools.mutation --list                # the mutants, nothing run

Each mutant is ``reference_backends/memory.py`` with one change (:mod:`tools.mutation.mutants`).
It runs in a copy of the ``reference_backends`` package, first on ``PYTHONPATH``, so the kit
imports the mutant instead of the real module; the kit then runs as a backend author would run
it (``pytest --backend memory``, with a size limit so the size clauses run too), stopping at
the first failure. A mutant is *killed* when the kit fails, *survives* when it passes, and a
mutant the kit does not finish within ``--timeout`` seconds counts as killed (a hang is
something a backend author would notice too) but is listed apart. When pytest cannot run at all
(exit status above 1: the mutant breaks the factory, or the environment changed under the run)
the mutant is an *error*, listed apart and not counted as killed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import reference_backends
from conformance.plugin import SUITE_DIR
from tools.mutation.mutants import Mutant, mutants

PACKAGE = Path(reference_backends.__file__).parent
KIT = ["--backend", "memory", "--backend-option", "max_record_bytes=2097152"]


@dataclass(frozen=True, slots=True)
class Outcome:
    index: int
    line: int
    description: str
    status: str  # killed | survived | timeout | error (pytest could not run the kit)
    failed: str  # the first failing test, when killed


def run_mutant(mutant: Mutant, module: str, kit: Sequence[str], timeout: float) -> Outcome:
    """Run the kit against one mutant in a throwaway copy of the package."""
    with tempfile.TemporaryDirectory(prefix="mutant-") as root:
        copy = Path(root) / PACKAGE.name
        shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
        (copy / module).write_text(mutant.source)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
        }
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        command = [sys.executable, "-m", "pytest", *kit, "-x", "-q", "-p", "no:cacheprovider"]
        try:
            done = subprocess.run(
                command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return Outcome(mutant.index, mutant.line, mutant.description, "timeout", "")
    failed = next((line for line in done.stdout.splitlines() if line.startswith("FAILED")), "")
    if done.returncode == 0:
        status = "survived"
    elif done.returncode == 1:
        status = "killed"
    else:  # usage error, crash at import: the mutant, or the environment? Listed for a look.
        status = "error"
        said = (done.stderr.strip() or done.stdout.strip())[-300:]
        failed = failed or f"pytest exit {done.returncode}: {said}"
    return Outcome(mutant.index, mutant.line, mutant.description, status, failed)


def _fast_first() -> list[str]:
    """Every kit module, the slow random ones last: with ``-x`` most mutants die early."""
    slow = ["test_races.py", "test_stateful.py"]
    quick = sorted(p.name for p in SUITE_DIR.glob("test_*.py") if p.name not in slow)
    return quick + slow


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutation", description=__doc__)
    parser.add_argument("--module", default="memory.py", help="file in reference_backends/")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--only", default="", help="comma-separated mutant indexes")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--where", default="", help="only mutants whose source contains this")
    parser.add_argument("--suite", nargs="*", default=[], help="kit modules to run (default all)")
    parser.add_argument("--json", type=Path, help="write every outcome to this file")
    args = parser.parse_args(argv)

    original = (PACKAGE / args.module).read_text()
    everything = list(mutants(original))
    chosen = {int(i) for i in args.only.split(",") if i}
    selected = [
        m
        for m in everything
        if (not chosen or m.index in chosen) and (not args.where or args.where in m.source)
    ]
    if args.list:
        for mutant in selected:
            print(f"#{mutant.index:3d} line {mutant.line:4d}: {mutant.description}")
        return 0
    # By module name, not path: the kit's files then come from wherever the subprocess imports
    # ``conformance`` (an installed wheel under tox), never from a second copy beside it.
    modules = (f"conformance.suite.{Path(name).stem}" for name in args.suite or _fast_first())
    kit = [*KIT, "--pyargs", *modules]

    # A kill only means something if the unchanged module passes the same run.
    baseline = run_mutant(Mutant(-1, 0, "unchanged", original), args.module, kit, args.timeout)
    if baseline.status != "survived":
        print(f"the unchanged {args.module} does not pass the kit: {baseline}", file=sys.stderr)
        return 2

    def run(mutant: Mutant) -> Outcome:
        outcome = run_mutant(mutant, args.module, kit, args.timeout)
        print(
            f"#{outcome.index:3d} line {outcome.line:4d} {outcome.status:8s} "
            f"{outcome.description}  {outcome.failed}",
            flush=True,
        )
        return outcome

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        outcomes = sorted(pool.map(run, selected), key=lambda o: (o.line, o.index))
    killed = [o for o in outcomes if o.status in ("killed", "timeout")]
    print(
        f"\n{args.module}: {len(killed)} of {len(outcomes)} mutants killed "
        f"({100 * len(killed) / max(1, len(outcomes)):.1f}%)"
    )
    for outcome in outcomes:
        if outcome.status != "killed":
            print(
                f"  {outcome.status}: #{outcome.index} line {outcome.line}: {outcome.description}"
            )
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=2) + "\n")
    return 0 if len(killed) == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
