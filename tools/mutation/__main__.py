"""Mutation testing of the conformance kit: does the kit fail every broken reference backend?

    python -m tools.mutation                       # memory backend, 2 mutants at a time
    python -m tools.mutation --jobs 1 --only 12,40 # chosen mutants
    python -m tools.mutation --list                # the mutants, nothing run
    python -m tools.mutation --backend redis --module reference_backends/redis/backend.py

Each mutant is one module of the backend under test (``--module``, default
``reference_backends/memory.py``; ``--backend``, default ``memory``) with one change
(:mod:`tools.mutation.mutants`). The project's packages are copied once when the run starts, so a
working tree edited during a long run does not change the kit under it; each mutant then runs in a
copy of that snapshot with its module replaced, first on ``PYTHONPATH``. The kit runs as a backend
author would run it (``pytest --backend NAME``), stopping at the first failure: first with a size
limit where the factory takes one, so that the size clauses run too, then, for a mutant that
passed, without options (the default an author starts with, where a mutant that breaks the
unlimited case shows). A mutant is *killed* when the kit fails and *survives* when it passes. A
mutant the kit does not finish within ``--timeout`` seconds is *undecided*, listed apart and not
counted as killed: it may hang, but on a loaded machine a surviving mutant's two whole-kit runs can
take that long too (seen at a load average of 20), so only a rerun on a quieter machine tells. A
mutant whose run the kit itself ends without a verdict (a test past ``--test-timeout``, passed on
as the kit's ``--conformance-test-timeout``, or too slow) is *undecided* too: the author's run is
red, but no clause is charged, so it is not counted as killed. A
mutant the kit refuses to open (its usage error "could not be opened") is killed: the author is
told the backend is unusable. Any other exit status above 1 (a crash at import, an environment that
changed) is an *error*, listed apart and not counted as killed.
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
from datetime import datetime, timezone
from pathlib import Path

import pytest

import conformance
import pmcp_tasks
import reference_backends
from conformance.plugin import SUITE_DIR
from tools.mutation.mutants import Mutant, mutants

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [Path(package.__path__[0]) for package in (conformance, pmcp_tasks, reference_backends)]
"""Everything a kit run imports from this project: snapshotted together, mutated one file."""
SIZE_OPTION = frozenset({"memory", "redis"})
"""Reference factories that take ``max_record_bytes`` (DynamoDB's limit is fixed at 400 KB)."""


def kits_for(backend: str) -> list[list[str]]:
    """The kit runs each mutant must pass to survive, the second only for survivors of the first:
    with a size limit (the size clauses run) and without options (how most authors run it)."""
    plain = ["--backend", backend]
    if backend not in SIZE_OPTION:
        return [plain]
    return [[*plain, "--backend-option", "max_record_bytes=2097152"], plain]


REFUSED = "could not be opened"
"""The kit's usage error for a factory that raises: the backend is unusable, so killed."""


@dataclass(frozen=True, slots=True)
class Outcome:
    index: int
    line: int
    description: str
    status: str  # killed | survived | timeout | undecided | error (pytest could not run the kit)
    failed: str  # the first failing test, when killed


def snapshot(into: Path) -> None:
    """Copy the project's packages as they are now."""
    for package in PACKAGES:
        shutil.copytree(package, into / package.name, ignore=shutil.ignore_patterns("__pycache__"))


def run_mutant(
    mutant: Mutant, snap: Path, module: str, kits: Sequence[Sequence[str]], timeout: float
) -> Outcome:
    """Run the kits against one mutant in a throwaway copy of the snapshot, until one fails."""
    with tempfile.TemporaryDirectory(prefix="mutant-") as root:
        shutil.copytree(snap, root, dirs_exist_ok=True)
        (Path(root) / module).write_text(mutant.source)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
        }
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        report = Path(root) / "kit-report.json"
        for kit in kits:
            command = [sys.executable, "-m", "pytest", *kit, "-x", "-q", "-p", "no:cacheprovider"]
            command += ["--conformance-report", str(report)]
            try:
                done = subprocess.run(
                    command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout
                )
            except subprocess.TimeoutExpired:
                return Outcome(mutant.index, mutant.line, mutant.description, "timeout", "")
            outcome = _judge(mutant, done, _undecided(report))
            if outcome.status != "survived":
                return outcome
    return outcome


def _undecided(report: Path) -> str:
    """The kit's own "could not decide" of the run that wrote ``report``, when nothing failed
    otherwise: the first such test's reason, else ''."""
    try:
        tests = json.loads(report.read_text())["tests"]
    except (OSError, ValueError, KeyError):
        return ""
    outcomes = {test["outcome"] for test in tests}
    if "failed" in outcomes or "undecided" not in outcomes:
        return ""
    return next(
        f"{test['nodeid']} - {test.get('reason', '')}"
        for test in tests
        if test["outcome"] == "undecided"
    )


def _judge(mutant: Mutant, done: subprocess.CompletedProcess[str], undecided: str) -> Outcome:
    failed = next((line for line in done.stdout.splitlines() if line.startswith("FAILED")), "")
    if done.returncode == 0:
        status = "survived"
    elif done.returncode == 1 and undecided:
        status, failed = "undecided", undecided
    elif done.returncode == 1 or (
        done.returncode == pytest.ExitCode.USAGE_ERROR and REFUSED in done.stdout + done.stderr
    ):
        status = "killed"
        lines = (done.stdout + done.stderr).splitlines()
        failed = failed or next((line for line in lines if REFUSED in line), "")
    else:  # usage error, crash at import: the mutant, or the environment? Listed for a look.
        status = "error"
        said = (done.stderr.strip() or done.stdout.strip())[-300:]
        failed = failed or f"pytest exit {done.returncode}: {said}"
    return Outcome(mutant.index, mutant.line, mutant.description, status, failed)


def report_section(
    module: str, backend: str, outcomes: Sequence[Outcome], arguments: Sequence[str]
) -> str:
    """A dated report's section for one run: the score is measured, never typed, so that a
    report cannot drift from the run it describes. Why each survivor survives is the reader's
    analysis, added under the table by hand."""
    counts = {s: sum(o.status == s for o in outcomes) for s in _STATUSES}
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## `{module}` on `{backend}`, {when}",
        "",
        f"Command: `python -m tools.mutation {' '.join(arguments)}` at commit `{commit or '?'}`, "
        f"load average {os.getloadavg()[0]:.1f}.",
        "",
        f"**{counts['killed']} of {len(outcomes)} killed**; "
        + ", ".join(f"{n} {s}" for s, n in counts.items() if s != "killed" and n),
        "",
        "| mutant | line | change | outcome |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| #{o.index} | {o.line} | {_cell(o.description)} | {o.status} {_cell(o.failed)} |"
        for o in outcomes
        if o.status != "killed"
    ]
    return "\n".join(lines) + "\n\n"


_STATUSES = ("killed", "survived", "undecided", "timeout", "error")


def _cell(text: str) -> str:
    """Text that cannot break a Markdown table row."""
    return text.replace("|", "\\|").replace("\n", " ")


def _fast_first() -> list[str]:
    """Every kit module, the slow random ones last: with ``-x`` most mutants die early."""
    slow = ["test_races.py", "test_stateful.py"]
    quick = sorted(p.name for p in SUITE_DIR.glob("test_*.py") if p.name not in slow)
    return quick + slow


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutation", description=__doc__)
    parser.add_argument(
        "--module",
        default="reference_backends/memory.py",
        help="the file to mutate, as a path inside one of: "
        + ", ".join(package.name for package in PACKAGES),
    )
    parser.add_argument(
        "--backend",
        default="memory",
        help="the kit's --backend for every run (redis: fakeredis; dynamodb: moto in-process); "
        "the mutated module must be part of it",
    )
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--test-timeout",
        type=float,
        default=300.0,
        help="the kit's --conformance-test-timeout: seconds one kit test may take (a mutant "
        "that pages for ever ends as undecided instead of using up --timeout)",
    )
    parser.add_argument("--only", default="", help="comma-separated mutant indexes")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--where", default="", help="only mutants whose source contains this")
    parser.add_argument("--what", default="", help="only mutants whose description contains this")
    parser.add_argument("--suite", nargs="*", default=[], help="kit modules to run (default all)")
    parser.add_argument("--json", type=Path, help="write every outcome to this file")
    parser.add_argument(
        "--report",
        type=Path,
        help="append a dated Markdown section (command, commit, score, every mutant not killed) "
        "to this file, e.g. docs/reports/mutation-2026-12.md",
    )
    args = parser.parse_args(argv)
    args.arguments = list(sys.argv[1:] if argv is None else argv)

    roots = {package.name: package.parent for package in PACKAGES}
    package = Path(args.module).parts[0]
    if package not in roots:
        parser.error(f"--module {args.module!r} is not inside one of {', '.join(roots)}")
    original = (roots[package] / args.module).read_text()
    everything = list(mutants(original))
    chosen = {int(i) for i in args.only.split(",") if i}
    selected = [
        m
        for m in everything
        if (not chosen or m.index in chosen)
        and (not args.where or args.where in m.source)
        and args.what in m.description
    ]
    if not selected:
        parser.error(f"no mutant of {args.module} matches --only/--where/--what")
    if args.list:
        for mutant in selected:
            print(f"#{mutant.index:3d} line {mutant.line:4d}: {mutant.description}")
        return 0
    # By module name, not path: the kit's files then come from the snapshot, which is where the
    # subprocess imports ``conformance`` and its plugin from, never from a second copy.
    modules = (f"conformance.suite.{Path(name).stem}" for name in args.suite or _fast_first())
    suite = ["--pyargs", *modules]
    limit = ["--conformance-test-timeout", str(args.test_timeout)]
    kits = [[*kit, *limit, *suite] for kit in kits_for(args.backend)]

    with tempfile.TemporaryDirectory(prefix="mutation-snapshot-") as snap:
        snapshot(Path(snap))
        return _run_all(selected, Path(snap), original, kits, args)


def _run_all(
    selected: Sequence[Mutant],
    snap: Path,
    original: str,
    kits: Sequence[Sequence[str]],
    args: argparse.Namespace,
) -> int:
    # A kill only means something if the unchanged module passes the same run.
    unchanged = Mutant(-1, 0, "unchanged", original)
    baseline = run_mutant(unchanged, snap, args.module, kits, args.timeout)
    if baseline.status != "survived":
        print(f"the unchanged {args.module} does not pass the kit: {baseline}", file=sys.stderr)
        return 2

    def run(mutant: Mutant) -> Outcome:
        outcome = run_mutant(mutant, snap, args.module, kits, args.timeout)
        print(
            f"#{outcome.index:3d} line {outcome.line:4d} {outcome.status:8s} "
            f"{outcome.description}  {outcome.failed}",
            flush=True,
        )
        return outcome

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        outcomes = sorted(pool.map(run, selected), key=lambda o: (o.line, o.index))
    killed = [o for o in outcomes if o.status == "killed"]
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
    if args.report is not None:
        with args.report.open("a") as report:
            report.write(report_section(args.module, args.backend, outcomes, args.arguments))
    return 0 if len(killed) == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
