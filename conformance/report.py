"""What a kit run tells its reader: per-area summary table and the JSON conformance report.

Results arrive as pytest reports, and everything the kit needs travels in each report's
``user_properties`` (backend, area, clause IDs, declared capabilities), because that is what
pytest-xdist ships from its workers to the controller that prints the summary.

Standard library and pytest only: the plugin imports this in every pytest run.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest

from conformance.clauses import CLAUSES, root_causes
from conformance.failures import PROP_FAILURE
from conformance.verdicts import HINTS

# Keys of the user properties the kit attaches to every clause-tagged test item.
PROP_BACKEND = "kit_backend"
PROP_AREA = "kit_area"
PROP_CLAUSES = "kit_clauses"
PROP_CAPABILITIES = "kit_capabilities"
PROP_BROKEN = "kit_broken"  # on failed reports: the clauses the failure names
PROP_UNDECIDED = "kit_undecided"  # on failed reports: why the kit could not decide (its kind)
PROP_EXPECTED = "kit_expected_failure"  # on xfailed reports: the baseline-listed clauses
PROP_CLAUSE = "pmcp_clause"  # one per clause ID of the test, for JUnit XML readers
PROP_EXERCISED = "kit_exercised"  # the state machine's counts of input classes and rules

_RANK = {"passed": 0, "skipped": 1, "xfailed": 2, "undecided": 3, "failed": 4}


@dataclass
class TestResult:
    """The outcome of one kit test (worst of its setup, call and teardown phases)."""

    nodeid: str
    backend: str
    area: str
    clauses: tuple[str, ...]
    outcome: str = "passed"
    reason: str = ""
    broken: tuple[str, ...] = ()
    undecided: str = ""  # why the kit could not decide: a key of verdicts.HINTS
    failure: dict[str, Any] | None = None  # see conformance.failures.failure_details
    exercised: dict[str, int] = field(default_factory=dict)  # input classes and rules reached


@dataclass
class Results:
    """Accumulates kit results over a run; renders the summary table and the JSON report."""

    tests: dict[str, TestResult] = field(default_factory=dict)
    capabilities: dict[str, dict[str, Any]] = field(default_factory=dict)
    engines: dict[str, str] = field(default_factory=dict)  # what each backend runs on

    def record(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        if PROP_CLAUSES not in props:
            return
        backend = str(props.get(PROP_BACKEND, "?"))
        if PROP_CAPABILITIES in props:
            self.capabilities[backend] = json.loads(str(props[PROP_CAPABILITIES]))
        result = self.tests.setdefault(
            report.nodeid,
            TestResult(
                nodeid=report.nodeid,
                backend=backend,
                area=str(props.get(PROP_AREA, "other")),
                clauses=tuple(str(props[PROP_CLAUSES]).split(",")),
            ),
        )
        if PROP_EXERCISED in props:
            result.exercised = json.loads(str(props[PROP_EXERCISED]))
        # Passing setup and teardown phases say nothing; otherwise the worst phase wins.
        outcome = _outcome(report, props)
        if (report.when == "call" or not report.passed) and _RANK[outcome] >= _RANK[result.outcome]:
            result.outcome = outcome
            result.reason = _reason(report)
            if PROP_BROKEN in props:
                result.broken = tuple(str(props[PROP_BROKEN]).split(","))
            if PROP_UNDECIDED in props:
                result.undecided = str(props[PROP_UNDECIDED])
            if PROP_FAILURE in props:
                result.failure = json.loads(str(props[PROP_FAILURE]))

    def summary_lines(self) -> list[str]:
        lines: list[str] = []
        by_backend: dict[str, list[TestResult]] = defaultdict(list)
        for result in self.tests.values():
            by_backend[result.backend].append(result)
        for backend, results in sorted(by_backend.items()):
            engine = self.engines.get(backend)
            named = f"backend {backend}" + (f" (on {engine})" if engine else "")
            lines.append(f"{named}: {_capabilities_text(self.capabilities.get(backend))}")
            lines.extend(_area_table(results))
            lines.extend(_skipped_lines(results))
            lines.extend(_failed_lines(results))
            lines.append("")
        lines.append(f"conformance: {self.badge()}")
        return lines

    def badge(self) -> str:
        """One line per run for a CI badge: tests passed of those that ran, per backend."""
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for result in self.tests.values():
            counts[result.backend][_kind(result)] += 1
        parts = []
        for backend, count in sorted(counts.items()):
            others = ", ".join(f"{count[k]} {k}" for k in _BADGED if count[k])
            ran = count["passed"] + count["failed"]
            parts.append(f"{backend} {count['passed']}/{ran}" + (f" ({others})" if others else ""))
        return ", ".join(parts)

    def to_json(self, meta: dict[str, Any]) -> dict[str, Any]:
        backends = sorted({r.backend for r in self.tests.values()})
        clauses: dict[str, Any] = {}
        for clause_id, clause in CLAUSES.items():
            clauses[clause_id] = {"area": clause.area, "rule": clause.rule, "results": {}}
        for result in self.tests.values():
            for clause_id in _counted_clauses(result):
                entry = clauses.setdefault(
                    clause_id, {"area": result.area, "rule": "", "results": {}}
                )
                _count(entry["results"].setdefault(result.backend, _no_results()), result)
        for backend in backends:
            _set_statuses(clauses, backend)
        return {
            **meta,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "summary": self.badge(),
            "backends": {name: {"capabilities": self.capabilities.get(name)} for name in backends},
            "clauses": clauses,
            "tests": [_test_json(r) for r in self.tests.values()],
        }


def _skipped_lines(results: list[TestResult]) -> list[str]:
    skipped = Counter(r.reason for r in results if r.outcome == "skipped")
    return [
        f"  {'not applicable' if not_applicable(reason) else 'skipped'} x{count}: {reason}"
        for reason, count in sorted(skipped.items())
    ]


def _failed_lines(results: list[TestResult]) -> list[str]:
    """Broken clauses first, then their echoes, the baseline's expected failures and what the
    kit could not decide."""
    failed = {c for r in results if r.outcome == "failed" for c in (r.broken or r.clauses)}
    echoes = {c: root_causes(c, failed) for c in failed}
    lines = [f"  BROKEN {c}: {_rule(c)}" for c in sorted(failed) if not echoes[c]]
    lines += [f"  {consequence(c, echoes[c])}" for c in sorted(failed) if echoes[c]]
    return lines + _unbroken_lines(results)


def _rule(clause_id: str) -> str:
    return CLAUSES[clause_id].rule if clause_id in CLAUSES else "(not in table)"


def _unbroken_lines(results: list[TestResult]) -> list[str]:
    """Failures that charge no clause: the baseline's expected ones, and the undecided."""
    lines: list[str] = []
    expected = sorted({c for r in results if r.outcome == "xfailed" for c in r.broken})
    lines.extend(f"  expected failure (baseline) {clause_id}" for clause_id in expected)
    undecided = Counter(r.undecided for r in results if r.outcome == "undecided")
    for kind, count in sorted(undecided.items()):
        lines.append(f"  kit could not decide: {kind} x{count} (no clause charged): {HINTS[kind]}")
    return lines


def _counted_clauses(result: TestResult) -> tuple[str, ...]:
    """The clauses a test's outcome counts for: all it is tagged with, and any other its
    failure's diagnosis charges; a failure counts only for the clauses it charges."""
    extra = tuple(c for c in result.broken if c not in result.clauses)
    if result.outcome in ("failed", "xfailed") and result.broken:
        return tuple(c for c in result.clauses + extra if c in result.broken)
    return result.clauses + extra


def _count(per: dict[str, Any], result: TestResult) -> None:
    per[result.outcome] += 1
    if result.outcome == "failed":
        per["failures"].append(result.nodeid)
    if result.outcome in _EXPLAINED and result.reason not in per["reasons"]:
        per["reasons"].append(result.reason)


def _set_statuses(clauses: dict[str, Any], backend: str) -> None:
    """Each clause's status for ``backend``; a failure that follows from another broken clause
    is its consequence."""
    failed = set()
    for clause_id, entry in clauses.items():
        per = entry["results"].setdefault(backend, _no_results())
        per["status"] = _clause_status(per)
        if per["status"] == "failed":
            failed.add(clause_id)
    for clause_id in failed:
        causes = root_causes(clause_id, failed)
        if causes:
            per = clauses[clause_id]["results"][backend]
            per["status"], per["because"] = "consequence", list(causes)


def _test_json(result: TestResult) -> dict[str, Any]:
    optional = {
        "broken": list(result.broken),
        "reason": result.reason,
        "failure": result.failure,
        "exercised": result.exercised,
    }
    return {
        "nodeid": result.nodeid,
        "backend": result.backend,
        "area": result.area,
        "clauses": list(result.clauses),
        "outcome": result.outcome,
        **{key: value for key, value in optional.items() if value},
    }


def consequence(clause_id: str, causes: tuple[str, ...]) -> str:
    """How the report names a failure that probably follows from a more basic one."""
    verb = "is" if len(causes) == 1 else "are"
    return (
        f"consequence: {clause_id} failed, probably because {', '.join(causes)} {verb} broken "
        "(fix that first; not counted as broken)"
    )


_EXPLAINED = ("skipped", "xfailed", "undecided")  # outcomes whose reasons a clause's entry lists
_BADGED = ("not applicable", "skipped", "xfailed", "undecided")  # counted apart in the badge
_HEADINGS = {"not applicable": "n/a"}  # the area table's column headings

_NOT_APPLICABLE = ("backend declares ", "the factory gives no ")


def not_applicable(reason: str) -> bool:
    """A skip that says the backend has nothing for the test to check (a capability it does
    not declare, a hook its factory does not offer, a damage its storage cannot hold), as
    opposed to a test that could not run: the kit's requirement skips say which."""
    return reason.startswith(_NOT_APPLICABLE) or "cannot occur in this backend's storage" in reason


def _kind(result: TestResult) -> str:
    if result.outcome == "skipped" and not_applicable(result.reason):
        return "not applicable"
    return result.outcome


def _no_results() -> dict[str, Any]:
    return {**dict.fromkeys(_RANK, 0), "failures": [], "reasons": []}


def _clause_status(per: dict[str, Any]) -> str:
    if per["failed"]:
        return "failed"
    if per["xfailed"]:
        return "expected failure"
    if per["passed"]:
        return "passed"
    if per["undecided"]:
        return "undecided"
    return "skipped" if per["skipped"] else "untested"


def _outcome(report: pytest.TestReport, props: dict[str, Any]) -> str:
    if report.skipped and PROP_EXPECTED in props:
        return "xfailed"
    if report.failed and PROP_UNDECIDED in props:
        return "undecided"
    return report.outcome


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    if report.failed:
        crash = getattr(longrepr, "reprcrash", None)
        message = getattr(crash, "message", None)
        return str(message if message is not None else longrepr).splitlines()[0][:300]
    return ""


def _capabilities_text(capabilities: dict[str, Any] | None) -> str:
    if capabilities is None:
        return "(capabilities unknown: no test opened the backend)"
    return ", ".join(f"{key}={value}" for key, value in capabilities.items())


def _area_table(results: list[TestResult]) -> list[str]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for result in results:
        counts[result.area][_kind(result)] += 1
    total: Counter[str] = Counter()
    columns = ["passed", "failed", "skipped"]
    extra = ("not applicable", "xfailed", "undecided")
    columns += [k for k in extra if any(c[k] for c in counts.values())]
    rows: list[tuple[str, ...]] = [("area", *(_HEADINGS.get(k, k) for k in columns))]
    for area in sorted(counts):
        total.update(counts[area])
        rows.append((area, *(str(counts[area][k]) for k in columns)))
    rows.append(("total", *(str(total[k]) for k in columns)))
    width = max(len(row[0]) for row in rows)
    return [
        "  " + row[0].ljust(width) + "".join(cell.rjust(10) for cell in row[1:]) for row in rows
    ]
