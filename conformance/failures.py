"""What the reports keep of a failed kit test: its message, reproducer and history windows.

The plugin calls :func:`failure_property` where the exception is still at hand (in the pytest
process that ran the test, an xdist worker included) and ships the result as one JSON string in
the report's ``user_properties``, the only channel xdist carries from a worker to the
controller that writes the reports.

Standard library and pytest only: the plugin imports this in every pytest run.
"""

from __future__ import annotations

import ast
import json
import linecache
import re
import shlex
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conformance.linearizability import NotLinearizable

PROP_FAILURE = "kit_failure"  # on failed reports: JSON of :func:`failure_details`

_BLOB_RE = re.compile(r"@reproduce_failure\([^)]*\)")
_SEED_RE = re.compile(r"@seed\((\d+)\)")
_MESSAGE_LIMIT = 20_000  # characters; a runaway repr must not bloat every report
_KIT_DIR = Path(__file__).resolve().parent


def failure_property(
    item: pytest.Item, call: pytest.CallInfo[None], backend: str, suite_dir: Path
) -> tuple[str, str]:
    """The ``(PROP_FAILURE, json)`` user property of a failed phase of ``item``."""
    details = failure_details(call.excinfo.value if call.excinfo is not None else None)
    details["command"] = rerun_command(item, backend, suite_dir, bool(details["example"]))
    return PROP_FAILURE, json.dumps(details)


def failure_details(exc: BaseException | None) -> dict[str, Any]:
    """Message, the failed ``assert``, Hypothesis' notes (shrunk example, blob, seed) and
    windows of ``exc``.

    An exception group (Hypothesis found several distinct bugs) contributes each of its leaves.
    """
    leaves = _leaves(exc) if exc is not None else []
    notes = [str(note) for note in _notes(exc)] if exc is not None else []
    text = "\n".join(notes)
    blob = _BLOB_RE.search(text)
    seed = _SEED_RE.search(text)
    checks = (_failed_check(leaf) for leaf in leaves)
    return {
        "check": next((check for check in checks if check is not None), None),
        "message": "\n\n".join(f"{type(leaf).__name__}: {leaf}" for leaf in leaves)[
            :_MESSAGE_LIMIT
        ],
        "example": _example(notes),
        "blob": blob.group(0) if blob else None,
        "seed": int(seed.group(1)) if seed else None,
        "windows": [
            window.to_dict()
            for leaf in leaves
            if isinstance(leaf, NotLinearizable)
            for window in leaf.windows
        ],
    }


def _failed_check(exc: BaseException) -> str | None:
    """``path:line: statement`` of the kit's ``assert`` that raised ``exc``, else None.

    The rewritten assert's message shows the values it compared; the statement says which calls
    gave them, which a report without the traceback would otherwise not show.
    """
    tb = exc.__traceback__
    if not isinstance(exc, AssertionError) or tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    path, line = Path(tb.tb_frame.f_code.co_filename).resolve(), tb.tb_lineno
    if not path.is_relative_to(_KIT_DIR):
        return None
    source = "".join(linecache.getlines(str(path)))
    found = [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Assert) and node.lineno <= line <= (node.end_lineno or line)
    ]
    if not found:
        return None  # an AssertionError the kit raised itself: its message says it all
    node = found[-1]
    statement = textwrap.dedent(
        " " * node.col_offset + (ast.get_source_segment(source, node) or "")
    )
    return f"{path.relative_to(_KIT_DIR.parent)}:{node.lineno}: {statement}"


def _example(notes: list[str]) -> list[str]:
    """Hypothesis' notes that state the shrunk example (or steps), without its explanation of
    which lines only failing examples ran and without the blob (kept on its own)."""
    kept: list[str] = []
    explaining = False
    for note in notes:
        if note.startswith("Explanation:"):
            explaining = True
        elif not (explaining and note[:1].isspace()) and not _BLOB_RE.search(note):
            explaining = False
            kept.append(note)
    return kept


def _notes(exc: BaseException) -> list[object]:
    """The notes of ``exc`` and of everything nested in it: Hypothesis puts the example on a
    ``FlakyFailure`` itself, not on the failures it wraps."""
    found = list(getattr(exc, "__notes__", ()))
    for inner in getattr(exc, "exceptions", None) or ():
        found += _notes(inner)
    return found


def _leaves(exc: BaseException) -> list[BaseException]:
    inner = getattr(exc, "exceptions", None)
    if isinstance(inner, tuple) and inner:
        return [leaf for sub in inner for leaf in _leaves(sub)]
    return [exc]


def rerun_command(item: pytest.Item, backend: str, suite_dir: Path, hypothesis: bool) -> str:
    """The shell command that runs this one test again, with the run's kit options (and, for
    a Hypothesis test, its profile and seed, which decide the examples it draws)."""
    config = item.config
    args = ["pytest", "--backend", backend]
    for option in config.option.taskstore_backend_options or []:
        args += ["--backend-option", option]
    _, _, rest = item.nodeid.partition("::")
    if item.path.parent == suite_dir:
        # By module name: works from any directory, wherever the kit is installed.
        args += ["--pyargs", f"conformance.suite.{item.path.stem}::{rest}"]
    else:
        args.append(item.nodeid)
    if hypothesis and "hypothesis" in sys.modules:
        from conformance.profiles import kit_profile_name

        # The profile the test ran under, not the one in force once it has ended.
        args += ["--hypothesis-profile", kit_profile_name(config.getoption("hypothesis_profile"))]
        seed = config.getoption("hypothesis_seed", None)
        if seed is not None:
            args.append(f"--hypothesis-seed={seed}")
    return shlex.join([*args, "-p", "no:cacheprovider"])
