"""The reports show what the state machine exercised, so an author sees what was tried."""

from __future__ import annotations

import json
from html import escape

import pytest

pytest_plugins = ["pytester"]


def test_json_and_html_reports_count_the_input_classes_and_rules_reached(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest(
        "--backend=memory",
        "-k",
        "test_backend_matches_model",
        "--hypothesis-profile",
        "ci",
        "--conformance-report",
        "report.json",
        "--conformance-html",
        "report.html",
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    report = json.loads((pytester.path / "report.json").read_text())
    (test,) = report["tests"]
    exercised = test["exercised"]
    assert exercised["rule: every client closed and reopened"] > 0, exercised
    assert any(label.startswith("expires_at: ") for label in exercised), exercised
    assert all(type(count) is int and count > 0 for count in exercised.values())
    html = (pytester.path / "report.html").read_text()
    assert "What the state machine exercised" in html
    for label, count in exercised.items():
        assert f"<td>{escape(label)}</td><td>{count}</td>" in html, label
