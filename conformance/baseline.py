"""``--conformance-baseline FILE``: clauses a backend is known to break, so CI can stay green.

The practice of the official MCP conformance suite: a known failure is written down once; its
failures are then reported as expected (xfail, never as passing), and an entry whose clause now
passes fails the run as stale, so the file cannot quietly outlive the bug it records.

The file has one entry a line, ``BACKEND CLAUSE-ID [why]``, where ``BACKEND`` is the name the
run gives the backend (its ``--backend`` name, or the test class for a ``BackendContract``
subclass) or ``*`` for every backend; ``#`` starts a comment. Standard library and pytest only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.clauses import CLAUSES
from conformance.report import Results

_CLAUSE_ID = re.compile(r"[A-Z]+-[A-Z]+-\d+")
ANY_BACKEND = "*"


@dataclass(frozen=True)
class Entry:
    backend: str
    clause: str
    why: str
    line: int


@dataclass(frozen=True)
class Baseline:
    path: str
    entries: tuple[Entry, ...]

    @classmethod
    def load(cls, path: str) -> Baseline:
        """Read the file; a missing file or a malformed line is a usage error naming it."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise pytest.UsageError(
                f"--conformance-baseline {path!r} cannot be read: {exc.strerror or exc}"
            ) from None
        entries = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split(None, 2)
            if len(parts) < 2 or not _CLAUSE_ID.fullmatch(parts[1]):
                raise pytest.UsageError(
                    f"--conformance-baseline {path}:{number}: expected 'BACKEND CLAUSE-ID [why]', "
                    f"got {raw.strip()!r}"
                )
            if parts[1] not in CLAUSES:
                raise pytest.UsageError(
                    f"--conformance-baseline {path}:{number}: unknown clause {parts[1]!r} "
                    "(see docs/contract.md for the IDs)"
                )
            why = parts[2] if len(parts) == 3 else "(no reason given)"
            entries.append(Entry(parts[0], parts[1], why, number))
        return cls(path, tuple(entries))

    def _for(self, backend: str) -> list[Entry]:
        return [e for e in self.entries if e.backend in (backend, ANY_BACKEND)]

    def expected(self, backend: str, broken: tuple[str, ...]) -> str | None:
        """Why this failure was expected: every clause it breaks is listed for the backend."""
        listed = {e.clause: e.why for e in self._for(backend)}
        if not broken or any(clause not in listed for clause in broken):
            return None
        return "; ".join(f"{clause}: {listed[clause]}" for clause in broken)

    def stale(self, results: Results) -> list[str]:
        """An error line per entry whose clause passed every test of it that ran, and some ran.

        Clauses a run did not reach (``-k``, a capability skip) say nothing either way; a ``*``
        entry is stale only when no backend of the run breaks the clause any more.
        """
        lines = []
        for entry in self.entries:
            runs = [
                r
                for r in results.tests.values()
                if entry.backend in (r.backend, ANY_BACKEND) and entry.clause in r.clauses
            ]
            charged = [
                r
                for r in runs
                if r.outcome in ("failed", "xfailed", "undecided")
                and entry.clause in (r.broken or r.clauses)
            ]
            if not charged and any(r.outcome == "passed" for r in runs):
                lines.append(
                    f"STALE baseline entry {self.path}:{entry.line}: {entry.backend} "
                    f"{entry.clause} now passes; remove the entry"
                )
        return lines
