"""The kit's teeth: it fails every deliberately broken backend, on the clause it breaks.

Each broken backend runs against the suite module of its area only (in-process, through
pytester) so that the whole zoo stays fast; the memory backend runs against all of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from broken_backends import BROKEN

from conformance.clauses import CLAUSES
from conformance.plugin import SUITE_DIR

pytest_plugins = ["pytester"]

HERE = Path(__file__).parent.parent  # tests/, where the broken_backends package lives


def run_kit(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    pytester.syspathinsert(HERE)
    report = pytester.path / "kit-report.json"
    result = pytester.runpytest("--conformance-report", str(report), "-p", "no:randomly", *args)
    return result, json.loads(report.read_text())


def test_there_are_at_least_twenty_broken_backends() -> None:
    assert len(BROKEN) >= 20
    assert {broken.clause for broken in BROKEN.values()} <= set(CLAUSES)
    # A backend's area is the zoo module it is declared in: each must name a suite module.
    suites = {path.stem.removeprefix("test_") for path in SUITE_DIR.glob("test_*.py")}
    assert {broken.area for broken in BROKEN.values()} <= suites, sorted(suites)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_kit_fails_the_broken_backend_on_its_clause(pytester: pytest.Pytester, name: str) -> None:
    broken = BROKEN[name]
    backend = f"broken_backends:{name}"
    # A lock a cancelled call never released is found by a call that waits a quarter of the
    # test timeout: 10 s here rather than the default 60.
    timeout = ["--conformance-test-timeout", "40"] if broken.area == "lifecycle" else []
    result, report = run_kit(
        pytester, "--backend", backend, str(SUITE_DIR / f"test_{broken.area}.py"), *timeout
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    status = report["clauses"][broken.clause]["results"][backend]
    assert status["status"] == "failed", (name, status)
    # One defect, one root: at most two clauses charged as broken, the rest consequences.
    roots = [
        clause_id
        for clause_id, entry in report["clauses"].items()
        if entry["results"][backend]["status"] == "failed"
    ]
    assert len(roots) <= 2, roots
    # The failure itself names the clause (a section under the traceback, and the crash
    # message's prefix), and the end-of-run summary repeats it.
    result.stdout.fnmatch_lines(["*- contract clause broken -*", f"{broken.clause}: *"])
    result.stdout.fnmatch_lines([f"*BROKEN {broken.clause}: *"])
    reasons = [
        test["reason"]
        for test in report["tests"]
        if test["outcome"] == "failed" and broken.clause in test.get("broken", ())
    ]
    assert any(reason.startswith("[") and broken.clause in reason for reason in reasons), reasons


def test_memory_backend_passes_the_whole_kit(pytester: pytest.Pytester) -> None:
    result, report = run_kit(
        pytester, "--backend", "memory", "--backend-option", "max_record_bytes=2097152"
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert set(result.parseoutcomes()) <= {"passed", "skipped"}, "memory failed something"
    # The two skips allowed: memory shares only within its process, so KV-SHARED-2 cannot run,
    # and it keeps Python objects, not encoded records, so it has none to damage (KV-DAMAGE-1).
    allowed = ("shared_across_processes=False; KV-SHARED-2", "no plant_damaged hook")
    skips = {t["reason"] for t in report["tests"] if t["outcome"] == "skipped"}
    assert all(any(why in r for why in allowed) for r in skips), skips
    statuses = {
        cid: entry["results"]["memory"]["status"] for cid, entry in report["clauses"].items()
    }
    assert "failed" not in statuses.values()
    skipped = [cid for cid, status in statuses.items() if status == "skipped"]
    assert skipped == ["KV-SHARED-2", "KV-DAMAGE-1"]
    result.stdout.fnmatch_lines(["*pmcp-tasks conformance summary*", "backend memory (on *): *"])


def test_a_backend_that_isolates_damaged_records_passes_their_clause(
    pytester: pytest.Pytester,
) -> None:
    """KV-DAMAGE-1's tests fail ``damage_fails_listing`` (the zoo) but pass its correct base,
    which plants every kind but the index one (it has no index): no false verdict."""
    backend = "broken_backends:damage_aware"
    result, report = run_kit(pytester, "--backend", backend, str(SUITE_DIR / "test_damage.py"))
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 15, outcomes
    skips = {t["reason"] for t in report["tests"] if t["outcome"] == "skipped"}
    assert skips == {
        "DamageAware.plant_damaged says damage kind 'bad-index-member' cannot occur in this "
        "backend's storage; KV-DAMAGE-1 checks the kinds it accepts"
    }
    assert report["clauses"]["KV-DAMAGE-1"]["results"][backend]["status"] == "passed"


def test_a_many_clause_test_names_only_the_clause_its_failure_names(
    pytester: pytest.Pytester,
) -> None:
    """The state machine checks 15 clauses; a miscounting cleanup must break KV-CLEAN-1 alone."""
    backend = "broken_backends:cleanup_miscounts"
    result, report = run_kit(
        pytester, "--backend", backend, str(SUITE_DIR / "test_stateful.py"), "--hypothesis-seed=0"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    (test,) = report["tests"]
    assert len(test["clauses"]) > 1
    assert test["broken"] == ["KV-CLEAN-1"]
    statuses = {
        clause: report["clauses"][clause]["results"][backend]["status"]
        for clause in test["clauses"]
    }
    assert statuses.pop("KV-CLEAN-1") == "failed"
    assert "failed" not in statuses.values(), statuses
    result.stdout.fnmatch_lines(["*BROKEN KV-CLEAN-1: *"])
    assert "BROKEN KV-LIST-3" not in result.stdout.str()
