"""A non-linearizable window drawn as an SVG timeline, Porcupine-style.

One lane per client (a race worker), one bar per operation from its invocation to its return,
placed by event order as the terminal timeline is (the instants are logical, only their order
means anything). An operation whose outcome is unknown never returned: its bar runs open-ended
to the right edge. The culprit, the first result no order of the operations explains, is
marked. The input is a window as :meth:`conformance.linearizability.Window.to_dict` exports it,
which is what the JSON report holds.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

LANE_LABEL_WIDTH = 130
LANE_HEIGHT = 48
BAR_HEIGHT = 16
MIN_COLUMN = 64
CHAR_WIDTH = 6.6  # px per character of the 11px monospace labels
TOP = 24  # room for the axis caption


def lanes(window: dict[str, Any]) -> list[str]:
    """The window's clients in order of first appearance: one lane each."""
    found: list[str] = []
    for op in window["ops"]:
        if op["client"] not in found:
            found.append(op["client"])
    return found


def label(op: dict[str, Any]) -> str:
    return f"{op['call']} → {op['result']}"


def window_svg(window: dict[str, Any]) -> str:
    ops = window["ops"]
    names = lanes(window)
    instants = sorted(
        {op["invoke"] for op in ops} | {op["complete"] for op in ops if op["complete"] is not None}
    )
    column = {instant: index for index, instant in enumerate(instants)}
    columns = len(instants) + 1  # one more: where the open-ended bars run out
    width_per = _column_width(ops, column)
    label_ends = [_x(column[op["invoke"]], width_per) + len(label(op)) * CHAR_WIDTH for op in ops]
    width = math.ceil(max([_x(columns, width_per), *label_ends])) + 20
    height = TOP + len(names) * LANE_HEIGHT + 8
    out = [
        f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="timeline of {escape(window["key"])}">',
        f'<text class="axis" x="{LANE_LABEL_WIDTH}" y="14">event order (invocation to return)'
        " →</text>",
    ]
    for index, name in enumerate(names):
        y = TOP + index * LANE_HEIGHT
        out.append(
            f'<g class="lane" data-client="{escape(name)}">'
            f'<rect class="lane-bg" x="0" y="{y}" width="{width}" height="{LANE_HEIGHT}"/>'
            f'<text class="lane-name" x="8" y="{y + LANE_HEIGHT / 2 + 4}">{escape(name)}</text>'
            "</g>"
        )
    for op in ops:
        out.append(_bar(op, names.index(op["client"]), column, columns, width_per))
    out.append("</svg>")
    return "".join(out)


def _column_width(ops: list[dict[str, Any]], column: dict[float, int]) -> int:
    """Wide enough that a lane's labels do not run into the next operation's in that lane."""
    width = MIN_COLUMN
    last: dict[str, dict[str, Any]] = {}
    for op in sorted(ops, key=lambda op: op["invoke"]):
        previous = last.get(op["client"])
        if previous is not None:
            gap = column[op["invoke"]] - column[previous["invoke"]]
            width = max(width, math.ceil(len(label(previous)) * CHAR_WIDTH / gap) + 4)
        last[op["client"]] = op
    return width


def _x(column: int, width_per: int) -> int:
    return LANE_LABEL_WIDTH + column * width_per


def _bar(
    op: dict[str, Any], lane: int, column: dict[float, int], columns: int, width_per: int
) -> str:
    x0 = _x(column[op["invoke"]], width_per)
    open_ended = op["complete"] is None
    x1 = _x(columns if open_ended else column[op["complete"]], width_per)
    y = TOP + lane * LANE_HEIGHT + LANE_HEIGHT - BAR_HEIGHT - 6
    classes = "op" + (" open" if open_ended else "") + (" culprit" if op["culprit"] else "")
    returned = "never returned (outcome unknown)" if open_ended else f"returned {op['complete']}"
    hover = f"{op['client']}: {label(op)}; invoked {op['invoke']}, {returned}"
    if op["culprit"]:
        hover += "; the first result no order explains"
    parts = [
        f'<g class="{classes}" data-client="{escape(op["client"])}"><title>{escape(hover)}</title>',
        f'<rect x="{x0}" y="{y}" width="{max(x1 - x0, 6)}" height="{BAR_HEIGHT}" rx="3"/>',
    ]
    if open_ended:
        middle = y + BAR_HEIGHT / 2
        parts.append(
            f'<path class="arrow" d="M{x1 - 2},{y - 3} L{x1 + 8},{middle} L{x1 - 2},'
            f'{y + BAR_HEIGHT + 3}"/>'
        )
    mark = "✗ " if op["culprit"] else ""
    parts.append(
        f'<text class="op-label" x="{x0 + 2}" y="{y - 4}">{escape(mark + label(op))}</text>'
    )
    parts.append("</g>")
    return "".join(parts)
