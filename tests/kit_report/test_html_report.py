"""The HTML report says what the JSON report says, and shows every failure's proof."""

from __future__ import annotations

import html
import re
import shlex
from collections import Counter

from conformance.html_report import render_html
from conformance.linearizability import UNKNOWN, Op, Window
from conformance.model import Record
from conformance.report import not_applicable
from conformance.timeline_svg import window_svg
from kit_report.kit_run import BACKENDS, BROKEN, KitRun, run_pytest
from kit_report.page import Page


def _failures(run: KitRun) -> list[dict]:  # type: ignore[type-arg]
    return [test for test in run.report["tests"] if test["outcome"] == "failed"]


def test_the_run_fails_the_broken_backend_only(kit_run: KitRun) -> None:
    assert kit_run.returncode == 1, kit_run.output
    assert "2 workers" in kit_run.output, kit_run.output
    assert {test["backend"] for test in _failures(kit_run)} == {BROKEN}


def test_html_and_json_agree_on_every_clause_verdict(kit_run: KitRun) -> None:
    page = Page(kit_run.html)
    expected = {
        (clause_id, backend): entry["results"][backend]["status"]
        for clause_id, entry in kit_run.report["clauses"].items()
        for backend in BACKENDS
    }
    assert page.cells == expected
    # The comparison covers every kind of verdict, not only one.
    assert set(expected.values()) == {"passed", "failed", "skipped", "untested"}


def test_failed_cells_link_to_their_failures_and_skipped_cells_say_why(kit_run: KitRun) -> None:
    page = Page(kit_run.html)
    for (clause_id, backend), status in page.cells.items():
        per = kit_run.report["clauses"][clause_id]["results"][backend]
        links = page.cell_links[(clause_id, backend)]
        assert len(links) == len(per["failures"])
        assert {link.removeprefix("#") for link in links} <= page.ids
        if status == "skipped":
            assert per["reasons"]
            assert all(reason in kit_run.html for reason in per["reasons"])
    sizes = kit_run.report["clauses"]["KV-SIZE-1"]["results"]["memory"]
    assert sizes["reasons"] == ["backend declares max_record_bytes=None; KV-SIZE-1 needs a limit"]


def test_every_window_is_drawn_one_lane_per_client_with_the_culprit_marked(
    kit_run: KitRun,
) -> None:
    windows = [w for test in _failures(kit_run) for w in test["failure"]["windows"]]
    assert windows, "the broken backend's race failures carry no window"
    timelines = Page(kit_run.html).timelines
    assert len(timelines) == len(windows)
    for window, timeline in zip(windows, timelines, strict=True):
        clients = list(dict.fromkeys(op["client"] for op in window["ops"]))
        assert timeline.lanes == clients
        assert [client for client, _ in timeline.bars] == [op["client"] for op in window["ops"]]
        marked = [client for client, classes in timeline.bars if "culprit" in classes.split()]
        assert marked == [op["client"] for op in window["ops"] if op["culprit"]]
        assert len(marked) == 1


def test_each_failure_has_its_message_example_blob_and_rerun_command(kit_run: KitRun) -> None:
    for test in _failures(kit_run):
        failure = test["failure"]
        assert failure["message"].startswith(("NotLinearizable: KV-", "AssertionError: KV-"))
        assert failure["message"] in html.unescape(kit_run.html)
        assert failure["example"]
        assert failure["example"][0].startswith("Failing test case")
        assert re.fullmatch(r"@reproduce_failure\('[\d.]+', b'.+'\)", failure["blob"])
        command = shlex.split(failure["command"])
        assert command[:3] == ["pytest", "--backend", BROKEN]
        assert "--hypothesis-profile" in command
        assert "ci" in command


def test_the_rerun_command_runs_just_that_test_and_it_fails_again(kit_run: KitRun) -> None:
    test = next(t for t in _failures(kit_run) if t["failure"]["windows"])
    command = shlex.split(test["failure"]["command"])
    rerun = run_pytest(kit_run.path, kit_run.env, *command[1:])
    output = rerun.stdout + rerun.stderr
    assert rerun.returncode == 1, output
    assert re.search(r"^=* ?1 failed in ", output, re.MULTILINE), output  # and nothing else ran
    assert "- contract clause broken -" in output
    for clause_id in test["broken"]:
        assert f"\n{clause_id}: " in output


def test_the_badge_counts_each_backends_tests(kit_run: KitRun) -> None:
    counts = {backend: Counter[str]() for backend in BACKENDS}
    for test in kit_run.report["tests"]:
        outcome = test["outcome"]
        if outcome == "skipped" and not_applicable(test["reason"]):
            outcome = "not applicable"  # a capability the backend does not declare
        counts[test["backend"]][outcome] += 1
    expected = ", ".join(
        f"{backend} {c['passed']}/{c['passed'] + c['failed']}"
        + (f" ({c['not applicable']} not applicable)" if c["not applicable"] else "")
        for backend, c in sorted(counts.items())  # no skip, xfailed or undecided here
    )
    assert any(c["not applicable"] for c in counts.values())
    assert counts[BROKEN]["failed"] > 0
    assert kit_run.report["summary"] == expected
    assert Page(kit_run.html).badge == expected
    assert f"conformance: {expected}" in kit_run.output


def test_the_page_loads_nothing_from_anywhere(kit_run: KitRun) -> None:
    page = Page(kit_run.html)
    assert page.external == []
    namespaces = ["http://www.w3.org/2000/svg"] * len(page.timelines)
    assert re.findall(r"https?://[^\s\"'<>]+", kit_run.html) == namespaces


def test_the_html_is_rendered_from_the_json_report_alone(kit_run: KitRun) -> None:
    rendered = render_html(kit_run.report)
    assert rendered == kit_run.html


def test_an_operation_that_never_returned_is_drawn_open_ended() -> None:
    written = Op("put", "p:k", 0, 3, 1, b"a", client="w0")
    lost = Op("put", "p:k", 1, None, UNKNOWN, b"b", client="w1")
    stale = Op("get", "p:k", 4, 5, Record(b"z", 9, None), client="w2")
    window = Window("p:k", (written, lost, stale), frozenset([None]), stale).to_dict()
    assert [op["complete"] for op in window["ops"]] == [3, None, 5]
    assert [op["culprit"] for op in window["ops"]] == [False, False, True]
    svg = window_svg(window)
    page = Page(svg)
    assert page.timelines[0].lanes == ["w0", "w1", "w2"]
    assert [classes for _, classes in page.timelines[0].bars] == ["op", "op open", "op culprit"]
    assert svg.count('class="arrow"') == 1
    assert "never returned (outcome unknown)" in svg
