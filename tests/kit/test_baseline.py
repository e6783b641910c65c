"""``--conformance-baseline`` and the JUnit XML properties (issue 11, point 9)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

HERE = Path(__file__).parent.parent  # tests/, where the broken_backends package lives
BROKEN_DELETE = "broken_backends:delete_always_true"


def test_listed_failures_are_expected_and_the_rest_still_fail(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert(HERE)
    baseline = pytester.path / "baseline.txt"
    baseline.write_text(
        f"# backend  clause  why\n{BROKEN_DELETE} KV-DEL-1 delete always says True\n"
    )
    report_path = pytester.path / "report.json"
    args = [f"--backend={BROKEN_DELETE}", "-k", "TestDelete", "-rx"]
    result = pytester.runpytest(
        *args, f"--conformance-baseline={baseline}", f"--conformance-report={report_path}"
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes["xfailed"] >= 2, outcomes  # delete again, delete of an absent key, ...
    assert "failed" not in outcomes, outcomes
    result.stdout.fnmatch_lines(
        [
            "  expected failure (baseline) KV-DEL-1",
            "XFAIL *test_delete_again_returns_false* - [[]KV-DEL-1[]] listed in *baseline.txt: "
            "KV-DEL-1: delete always says True",
        ]
    )
    assert "STALE" not in result.stdout.str()
    results = json.loads(report_path.read_text())["clauses"]["KV-DEL-1"]["results"]
    assert results[BROKEN_DELETE]["status"] == "expected failure"
    assert results[BROKEN_DELETE]["xfailed"] == outcomes["xfailed"]
    # Without the baseline the same run fails: the file is what made it green.
    assert pytester.runpytest(*args).ret == pytest.ExitCode.TESTS_FAILED
    # A failure of a clause the baseline does not list still fails.
    other = pytester.path / "other.txt"
    other.write_text(f"{BROKEN_DELETE} KV-LIVE-2 a clause this backend keeps\n")
    unlisted = pytester.runpytest(*args, f"--conformance-baseline={other}")
    assert unlisted.ret == pytest.ExitCode.TESTS_FAILED
    unlisted.stdout.fnmatch_lines(["*BROKEN KV-DEL-1: *"])


def test_a_listed_clause_that_passes_is_a_stale_entry(pytester: pytest.Pytester) -> None:
    baseline = pytester.path / "baseline.txt"
    baseline.write_text("memory KV-DEL-1 fixed since\n* KV-LIST-6 not reached by -k\n")
    result = pytester.runpytest(
        "--backend=memory", "-k", "test_delete", f"--conformance-baseline={baseline}"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["STALE baseline entry *baseline.txt:1: memory KV-DEL-1 now passes; remove the entry"]
    )
    assert "KV-LIST-6 now passes" not in result.stdout.str()
    assert "failed" not in result.parseoutcomes()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("memory\n", "*baseline.txt:1: expected 'BACKEND CLAUSE-ID [[]why[]]', got 'memory'"),
        ("memory KV-NOPE-9\n", "*baseline.txt:1: unknown clause 'KV-NOPE-9'*"),
    ],
)
def test_malformed_baseline_is_a_usage_error(
    pytester: pytest.Pytester, text: str, message: str
) -> None:
    baseline = pytester.path / "baseline.txt"
    baseline.write_text(text)
    result = pytester.runpytest("--backend=memory", f"--conformance-baseline={baseline}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --conformance-baseline {message}"])


def test_junit_xml_carries_each_tests_clause_ids(pytester: pytest.Pytester) -> None:
    xml_path = pytester.path / "junit.xml"
    result = pytester.runpytest(
        "--backend=memory",
        "-k",
        "test_second_client_sees_the_same_records",
        f"--junitxml={xml_path}",
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    (case,) = ET.parse(xml_path).getroot().iter("testcase")
    properties = [(p.get("name"), p.get("value")) for p in case.iter("property")]
    assert ("pmcp_clause", "KV-SHARED-1") in properties, properties
    assert ("pmcp_clause", "KV-CAP-1") in properties, properties
    assert ("kit_backend", "memory") in properties, properties
