"""The rows each section produces and their rendering as Markdown tables.

Markdown reads well in a terminal and pastes unchanged into ``docs/performance.md``, so the
benchmark prints nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.timing import Comparison


@dataclass(frozen=True)
class OpRow:
    """A backend operation against its raw-client baseline (sections 1-3)."""

    area: str
    operation: str
    subject_us: float
    baseline_us: float
    ratio: float
    target_ratio: float
    round_trips: float | None = None  # per operation, None where there is no network
    raw_round_trips: float | None = None

    @classmethod
    def measured(cls, area: str, operation: str, result: Comparison, target_ratio: float) -> OpRow:
        """The row of one comparison: microseconds per operation, and round trips where the
        sides count them."""
        return cls(
            area,
            operation,
            result.subject * 1e6,
            result.baseline * 1e6,
            result.ratio,
            target_ratio,
            result.subject_requests,
            result.baseline_requests,
        )

    @property
    def met(self) -> bool:
        trips_ok = self.round_trips is None or abs(self.round_trips - 1) < 1e-9
        return self.ratio <= self.target_ratio and trips_ok


@dataclass(frozen=True)
class StoreRow:
    """A GenericTaskStore operation against the backend calls it issues (section 4)."""

    backend: str
    operation: str
    store_us: float
    backend_us: float  # time spent inside backend calls, per store operation
    calls: float  # backend calls per store operation
    target_ratio: float

    @property
    def ratio(self) -> float:
        return self.store_us / self.backend_us

    @property
    def met(self) -> bool:
        return self.ratio <= self.target_ratio


@dataclass(frozen=True)
class ProfileRow:
    """Where a store operation's time goes under cProfile, as shares of its total."""

    backend: str
    operation: str
    encode: float
    decode: float
    parse: float  # building and checking the TaskRecord from the decoded document
    validation: float
    backend_calls: float

    @property
    def other(self) -> float:
        known = self.encode + self.decode + self.parse + self.validation + self.backend_calls
        return max(0.0, 1 - known)


@dataclass(frozen=True)
class KitRow:
    """Wall time of one run of the conformance kit (section 5)."""

    backend: str
    workers: int
    seconds: float
    outcome: str


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table with columns padded to their widest cell."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def _us(value: float) -> str:
    return f"{value:.1f}" if value < 1000 else f"{value:,.0f}"


def _trips(subject: float | None, raw: float | None) -> str:
    if subject is None:
        return "-"
    return f"{subject:.2f}" + ("" if raw is None else f" ({raw:.2f})")


def _mark(met: bool) -> str:
    return "yes" if met else "NO"


def op_table(rows: Sequence[OpRow]) -> str:
    return table(
        [
            "Area",
            "Operation",
            "Backend µs/op",
            "Raw µs/op",
            "Ratio",
            "Target",
            "Trips/op (raw)",
            "Met",
        ],
        [
            [
                r.area,
                r.operation,
                _us(r.subject_us),
                _us(r.baseline_us),
                f"{r.ratio:.2f}x",
                f"<= {r.target_ratio:.2f}x",
                _trips(r.round_trips, r.raw_round_trips),
                _mark(r.met),
            ]
            for r in rows
        ],
    )


def store_table(rows: Sequence[StoreRow]) -> str:
    return table(
        [
            "Backend",
            "Operation",
            "ops/s",
            "Store µs/op",
            "In backend µs/op",
            "Calls/op",
            "Store/backend",
            "Target",
            "Met",
        ],
        [
            [
                r.backend,
                r.operation,
                f"{1e6 / r.store_us:,.0f}",
                _us(r.store_us),
                _us(r.backend_us),
                f"{r.calls:.2f}",
                f"{r.ratio:.2f}x",
                f"<= {r.target_ratio:.2f}x",
                _mark(r.met),
            ]
            for r in rows
        ],
    )


def profile_table(rows: Sequence[ProfileRow]) -> str:
    def pct(share: float) -> str:
        return f"{100 * share:.0f}%"

    return table(
        [
            "Backend",
            "Operation",
            "JSON encode",
            "JSON decode",
            "Record checks",
            "Validation",
            "Backend",
            "Other",
        ],
        [
            [
                r.backend,
                r.operation,
                pct(r.encode),
                pct(r.decode),
                pct(r.parse),
                pct(r.validation),
                pct(r.backend_calls),
                pct(r.other),
            ]
            for r in rows
        ],
    )


def kit_table(rows: Sequence[KitRow]) -> str:
    return table(
        ["Backend", "Workers", "Wall s", "Outcome"],
        [
            [r.backend, "1" if r.workers <= 1 else f"-n {r.workers}", f"{r.seconds:.1f}", r.outcome]
            for r in rows
        ],
    )
