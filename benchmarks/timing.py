"""Paired, interleaved timing: the measurement every section of the benchmark shares.

A ratio between two numbers measured minutes apart on a shared machine says more about the
load than about the code. So each comparison times the subject and its baseline alternately
(ABBA order) in several rounds, takes the ratio within each round, and reports the median of
those ratios next to the median absolute times. The garbage collector is paused inside a timed
pass, as :mod:`timeit` does, so that a collection triggered by one side is not billed to it.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Op = Callable[[int, int], Awaitable[object]]
"""One operation: ``op(worker, i)``; ``worker`` picks the worker's own key, ``i`` counts calls."""

Setup = Callable[[int, int], Awaitable[None]]
"""Untimed preparation before a pass: ``setup(workers, per_worker)`` (e.g. records to delete)."""

Counter = Callable[[], int]
"""Requests sent so far by the client a side uses (a connection wrapper or an event hook)."""


@dataclass(frozen=True)
class Side:
    """What is timed on one side of a comparison."""

    op: Op
    setup: Setup | None = None
    requests: Counter | None = None


@dataclass(frozen=True)
class Pass:
    seconds: float  # per operation
    requests: float | None  # per operation, counted after the setup


@dataclass(frozen=True)
class Comparison:
    """Median seconds per operation of both sides, the median of per-round ratios, and the
    requests per operation over every timed pass (``None`` without a counter)."""

    subject: float
    baseline: float
    ratio: float
    subject_requests: float | None
    baseline_requests: float | None


async def timed_pass(side: Side, workers: int, per_worker: int) -> Pass:
    """Time ``workers`` concurrent tasks doing ``per_worker`` calls each."""
    if side.setup is not None:
        await side.setup(workers, per_worker)
    op = side.op
    sent = None if side.requests is None else side.requests()

    async def worker(index: int) -> None:
        for i in range(per_worker):
            await op(index, i)

    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        if workers == 1:
            await worker(0)
        else:
            await asyncio.gather(*(worker(index) for index in range(workers)))
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    calls = workers * per_worker
    if side.requests is None or sent is None:
        return Pass(elapsed / calls, None)
    return Pass(elapsed / calls, (side.requests() - sent) / calls)


async def compare(
    subject: Side, baseline: Side, *, iterations: int, rounds: int, workers: int = 1
) -> Comparison:
    """Time both sides alternately, ``rounds`` times, after one untimed warm-up pass each."""
    per_worker = max(1, iterations // workers)
    warm = max(1, per_worker // 10)
    await timed_pass(subject, workers, warm)
    await timed_pass(baseline, workers, warm)
    subjects: list[Pass] = []
    baselines: list[Pass] = []
    for round_ in range(rounds):
        if round_ % 2 == 0:
            subjects.append(await timed_pass(subject, workers, per_worker))
            baselines.append(await timed_pass(baseline, workers, per_worker))
        else:
            baselines.append(await timed_pass(baseline, workers, per_worker))
            subjects.append(await timed_pass(subject, workers, per_worker))
    ratios = [s.seconds / b.seconds for s, b in zip(subjects, baselines, strict=True)]
    return Comparison(
        statistics.median(p.seconds for p in subjects),
        statistics.median(p.seconds for p in baselines),
        statistics.median(ratios),
        _mean_requests(subjects),
        _mean_requests(baselines),
    )


def _mean_requests(passes: list[Pass]) -> float | None:
    counted = [p.requests for p in passes if p.requests is not None]
    return statistics.fmean(counted) if counted else None
