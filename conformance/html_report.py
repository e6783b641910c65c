"""The conformance report as one self-contained HTML page, for a person to look at.

It is rendered from the JSON report (:meth:`conformance.report.Results.to_json`) and from
nothing else, so the page and the JSON can never disagree: a verdict, a skip reason or a
window missing from the JSON is missing here too. The page needs no network: inline CSS, system
fonts, inline SVG, no script. It can be attached to a CI run or a pull request as it is.

Standard library only: the plugin imports this in every pytest run.
"""

from __future__ import annotations

from html import escape
from typing import Any

from conformance.timeline_svg import window_svg

# status -> (CSS class, cell text); every status conformance.report gives a clause
STATUS = {
    "passed": ("passed", "passed"),
    "failed": ("failed", "FAILED"),
    "consequence": ("consequence", "consequence"),
    "expected failure": ("expected", "expected failure"),
    "undecided": ("undecided", "undecided"),
    "skipped": ("skipped", "skipped"),
    "untested": ("untested", "untested"),
}

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
  max-width: 1400px; padding: 16px 24px; color: #1d2430; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px;
  border-bottom: 1px solid #d6dae1; } h3 { font-size: 15px; margin: 18px 0 6px; }
code, pre, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: 12px; }
pre { background: #f5f6f8; border: 1px solid #e0e3e8; padding: 8px; overflow-x: auto;
  white-space: pre-wrap; word-break: break-word; }
.badge { display: inline-block; font-weight: 600; padding: 3px 10px; border-radius: 4px;
  background: #2a7d3f; color: #fff; } .badge.red { background: #b3261e; }
table { border-collapse: collapse; } th, td { border: 1px solid #d6dae1; padding: 3px 8px;
  text-align: left; vertical-align: top; }
th { background: #eef0f3; position: sticky; top: 0; }
.meta td:first-child { font-weight: 600; }
.matrix td.rule { max-width: 620px; font-size: 12px; color: #3a4250; }
.matrix td.cell { white-space: nowrap; text-align: center; min-width: 90px; }
.cell.passed { background: #dff3e3; } .cell.failed { background: #f9d6d3; font-weight: 600; }
.cell.consequence { background: #fbeee0; }
.cell.skipped, .cell.expected, .cell.undecided { background: #fff3cd; }
.cell.untested { background: #f0f1f3; color: #7a808a; }
.cell .why { display: block; white-space: normal; font-size: 11px; max-width: 240px; }
.failure { border-left: 4px solid #b3261e; padding-left: 12px; margin-bottom: 24px; }
.timeline { display: block; margin: 6px 0; }
.timeline .lane-bg { fill: #fafbfc; stroke: #e0e3e8; }
.timeline .lane-name { font: 600 12px ui-monospace, "DejaVu Sans Mono", monospace;
  fill: #3a4250; }
.timeline .axis { font: 11px system-ui, sans-serif; fill: #7a808a; }
.timeline .op rect { fill: #7aa6d8; stroke: #2f5f98; }
.timeline .op.open rect { fill: #c9d9ec; stroke-dasharray: 4 3; }
.timeline .op .arrow { fill: none; stroke: #2f5f98; stroke-width: 2; }
.timeline .op.culprit rect { fill: #e05a4f; stroke: #8c1b13; stroke-width: 2; }
.timeline .op-label { font: 11px ui-monospace, "DejaVu Sans Mono", monospace; fill: #1d2430; }
.timeline .op.culprit .op-label { fill: #8c1b13; font-weight: 700; }
.ops td { font-size: 12px; } .ops tr.culprit td { background: #f9d6d3; font-weight: 600; }
.muted { color: #7a808a; }
"""


def render_html(report: dict[str, Any]) -> str:
    """The page for one JSON report."""
    failures = [test for test in report["tests"] if test["outcome"] == "failed"]
    anchors = {test["nodeid"]: f"failure-{number}" for number, test in enumerate(failures, 1)}
    body = [
        _header(report, bool(failures)),
        _matrix(report, anchors),
        _failures(report, failures, anchors),
        _exercised(report),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>pmcp-tasks conformance: {escape(report['summary'])}</title>"
        f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )


def _exercised(report: dict[str, Any]) -> str:
    """What each state-machine run reached: input classes and rules, with how often."""
    runs = [test for test in report["tests"] if test.get("exercised")]
    if not runs:
        return ""
    parts = ["<section><h2>What the state machine exercised</h2>"]
    for test in runs:
        rows = "".join(
            f"<tr><td>{escape(label)}</td><td>{count}</td></tr>"
            for label, count in test["exercised"].items()
        )
        parts.append(
            f"<h3>{escape(test['backend'])}</h3><table class='ops exercised' "
            f"data-backend='{escape(test['backend'])}'>"
            f"<tr><th>input class or rule</th><th>times</th></tr>{rows}</table>"
        )
    parts.append("</section>")
    return "".join(parts)


def _header(report: dict[str, Any], failed: bool) -> str:
    hypothesis = report.get("hypothesis") or {}
    hypothesis_text = (
        ", ".join(f"{key} {value}" for key, value in hypothesis.items()) if hypothesis else "-"
    )
    rows = [
        ("kit version", report.get("kit_version", "?")),
        ("date", report.get("date", "?")),
        ("python", f"{report.get('python', '?')} on {report.get('platform', '?')}"),
        ("hypothesis", hypothesis_text),
        ("pytest exit status", report.get("exit_status", "?")),
    ]
    options = {entry["name"]: entry["options"] for entry in report.get("selected", [])}
    backends = [
        "<tr><th>backend</th><th>options</th><th>declared capabilities</th></tr>",
        *(
            f"<tr><td class='mono'>{escape(name)}</td>"
            f"<td class='mono'>{_pairs(options.get(name) or {})}</td>"
            f"<td class='mono'>{_pairs(entry.get('capabilities'))}</td></tr>"
            for name, entry in report["backends"].items()
        ),
    ]
    return (
        "<header><h1>pmcp-tasks conformance report</h1>"
        f"<p><span class='badge{' red' if failed else ''}' id='summary'>"
        f"{escape(report['summary'])}</span> "
        "<span class='muted'>tests passed of those that ran, per backend</span></p>"
        "<table class='meta'>"
        + "".join(f"<tr><td>{escape(k)}</td><td>{escape(str(v))}</td></tr>" for k, v in rows)
        + "</table><h2>Backends</h2><table class='backends'>"
        + "".join(backends)
        + "</table></header>"
    )


def _pairs(values: dict[str, Any] | None) -> str:
    if values is None:
        return "<span class='muted'>unknown (no test opened the backend)</span>"
    if not values:
        return "<span class='muted'>-</span>"
    return escape(", ".join(f"{key}={value}" for key, value in values.items()))


def _matrix(report: dict[str, Any], anchors: dict[str, str]) -> str:
    backends = list(report["backends"])
    head = "<tr><th>clause</th><th>rule</th>" + "".join(
        f"<th class='mono'>{escape(name)}</th>" for name in backends
    )
    rows = [head + "</tr>"]
    for clause_id, entry in report["clauses"].items():
        cells = "".join(
            _cell(clause_id, backend, entry["results"][backend], anchors) for backend in backends
        )
        rows.append(
            f"<tr id='clause-{escape(clause_id)}'><td class='mono'>{escape(clause_id)}</td>"
            f"<td class='rule'>{escape(entry['rule'])}</td>{cells}</tr>"
        )
    return (
        "<section><h2>Clause matrix</h2><table class='matrix'>"
        + "".join(rows)
        + "</table></section>"
    )


def _cell(clause_id: str, backend: str, per: dict[str, Any], anchors: dict[str, str]) -> str:
    status = per["status"]
    css, text = STATUS[status]
    counts = ", ".join(
        f"{per[k]} {k}"
        for k in ("passed", "failed", "skipped", "xfailed", "undecided")
        if per.get(k)
    )
    if status == "consequence":
        content = f"{text} of {escape(', '.join(per['because']))}"
    elif status == "failed":
        links = " ".join(
            f"<a href='#{anchors[nodeid]}'>#{anchors[nodeid].rpartition('-')[2]}</a>"
            for nodeid in per["failures"]
        )
        content = f"{text} {links}"
    elif status in ("skipped", "expected failure", "undecided"):
        reasons = "; ".join(per.get("reasons", []))
        content = f"{text}<span class='why'>{escape(reasons)}</span>"
    else:
        content = text
    return (
        f"<td class='cell {css}' data-clause='{escape(clause_id)}' "
        f"data-backend='{escape(backend)}' data-status='{status}' title='{counts}'>{content}</td>"
    )


def _failures(
    report: dict[str, Any], failures: list[dict[str, Any]], anchors: dict[str, str]
) -> str:
    if not failures:
        return "<section><h2>Failures</h2><p>None.</p></section>"
    rules = {clause_id: entry["rule"] for clause_id, entry in report["clauses"].items()}
    parts = [f"<section><h2>Failures ({len(failures)})</h2>"]
    for number, test in enumerate(failures, 1):
        parts.append(_failure(number, test, anchors[test["nodeid"]], rules, report))
    parts.append("</section>")
    return "".join(parts)


def _failure(
    number: int,
    test: dict[str, Any],
    anchor: str,
    rules: dict[str, str],
    report: dict[str, Any],
) -> str:
    details = test.get("failure") or {}
    broken = test.get("broken") or test["clauses"]
    clauses = "".join(
        f"<li><a class='mono' href='#clause-{escape(c)}'>{escape(c)}</a>: "
        f"{escape(rules.get(c, ''))}</li>"
        for c in broken
    )
    parts = [
        f"<article class='failure' id='{anchor}'>",
        f"<h3>#{number} <span class='mono'>{escape(test['nodeid'])}</span></h3>",
        f"<p>backend <span class='mono'>{escape(test['backend'])}</span>; clause broken:</p>",
        f"<ul>{clauses}</ul>",
        "<h4>Message</h4>",
        f"<pre>{escape(details.get('message') or test.get('reason', ''))}</pre>",
    ]
    if details.get("check"):
        parts += ["<h4>Failed check</h4>", f"<pre>{escape(details['check'])}</pre>"]
    for index, window in enumerate(details.get("windows", []), 1):
        parts.append(_window(window, index))
    parts.append(_reproducer(details, report))
    parts.append("</article>")
    return "".join(parts)


def _window(window: dict[str, Any], index: int) -> str:
    states = " or ".join(window["start_states"])
    rows = "".join(
        f"<tr class='{'culprit' if op['culprit'] else ''}'><td class='mono'>"
        f"{escape(op['client'])}</td><td class='mono'>{escape(op['call'])}</td>"
        f"<td class='mono'>{escape(op['result'])}</td><td>{op['invoke']}</td>"
        f"<td>{'never' if op['complete'] is None else op['complete']}</td></tr>"
        for op in window["ops"]
    )
    return (
        f"<h4>Non-linearizable window {index}: key <span class='mono'>"
        f"{escape(window['key'])}</span></h4>"
        f"<p>State before the window: <span class='mono'>{escape(states)}</span>. No order of "
        "these operations, each taken at one instant between its call and its return, replays "
        "the contract; the red bar is the first result no order explains, a dashed open bar an "
        "operation that never returned.</p>"
        f"{window_svg(window)}"
        "<table class='ops'><tr><th>client</th><th>call</th><th>result</th><th>invoked</th>"
        f"<th>returned</th></tr>{rows}</table>"
    )


def _reproducer(details: dict[str, Any], report: dict[str, Any]) -> str:
    parts = ["<h4>Reproducer</h4>"]
    example = details.get("example") or []
    if example:
        parts.append(
            f"<p>Hypothesis' shrunk example:</p><pre>{escape(chr(10).join(example))}</pre>"
        )
    hypothesis = report.get("hypothesis") or {}
    seed = details.get("seed")
    if seed is None:
        seed = hypothesis.get("seed")
    if example:
        if seed is not None:
            how = f"seed {seed}"
        elif hypothesis.get("derandomize"):
            how = f"derandomized (profile {hypothesis.get('profile')}): every run draws the same"
        else:
            how = (
                "random; the rerun replays the failing example from Hypothesis' example "
                "database (.hypothesis/ in the directory of the run)"
            )
        parts.append(f"<p>Seed: {escape(how)}.</p>")
        if details.get("blob"):
            parts.append(
                "<p>Exact replay: decorate the test with "
                f"<code>{escape(details['blob'])}</code>.</p>"
            )
    if details.get("command"):
        parts.append(f"<p>Run just this test again:</p><pre>{escape(details['command'])}</pre>")
    return "".join(parts)
