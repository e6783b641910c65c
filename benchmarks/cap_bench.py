"""Section 7: the per-owner cap on a real redis-server (``docs/domain.md``, "The per-owner cap").

Two comparisons, each timed ABBA in the same run (:mod:`benchmarks.timing`):

- **Hot spot.** 50 concurrent creates for one owner under cap 100, against 50 concurrent creates
  spread over 50 owners. Each pass uses fresh owners, so the one owner starts empty and ends at
  half its cap. The cap design has no record that all of one owner's creates rewrite, so the
  one-owner side should run at least half as fast, with no ``ConcurrentModification``.
- **Cost with many tasks.** Sequential creates for an owner that already holds 4,000 live
  tasks, against an owner holding 10, both under the same raised cap. A create's cost depends on
  the owner's fill fraction (random probes), not on its number of tasks; the cap is raised so
  that 4,000 tasks fill a quarter of it.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

from benchmarks.timing import Side, compare
from benchmarks.workload import Settings
from pmcp_tasks import ConcurrentModification, GenericTaskStore, StoreConfig, TaskLimitExceeded
from pmcp_tasks.backend import StorageBackend

CONCURRENT = 50
HOT_CAP = 100
LIVE = 4_000
FEW = 10
RAISED_CAPS = (16_000, 8_000)
"""4,000 live tasks fill a quarter (expected probes per create 1/(1 - 1/4) = 1.33), then half
(2 probes) of these: the second row shows how the cost follows the fill fraction."""


@dataclass(frozen=True)
class CapRow:
    """One comparison: the subject, its baseline, per-op medians, ratio, and failures seen."""

    subject: str
    baseline: str
    subject_ms: float
    baseline_ms: float
    ratio: float
    conflicts: int
    refused: int


class Creates:
    """Creates that count ``ConcurrentModification`` and ``TaskLimitExceeded``, not raise them."""

    def __init__(self, store: GenericTaskStore) -> None:
        self.store = store
        self.conflicts = 0
        self.refused = 0

    async def create(self, owner: str) -> None:
        try:
            await self.store.create(owner)
        except ConcurrentModification:
            self.conflicts += 1
        except TaskLimitExceeded:
            self.refused += 1


async def hot_spot(backend: StorageBackend, settings: Settings) -> CapRow:
    """50 concurrent creates for one owner vs for 50 owners, fresh owners every pass."""
    creates = Creates(GenericTaskStore(backend, StoreConfig(max_tasks_per_owner=HOT_CAP)))
    passes = itertools.count()
    owner = {"one": "", "many": ""}

    async def fresh_one(workers: int, per_worker: int) -> None:
        owner["one"] = f"hot-{next(passes)}"

    async def fresh_many(workers: int, per_worker: int) -> None:
        owner["many"] = f"spread-{next(passes)}"

    async def one(worker: int, i: int) -> None:
        await creates.create(owner["one"])

    async def many(worker: int, i: int) -> None:
        await creates.create(f"{owner['many']}-{worker}")

    versus = await compare(
        Side(one, fresh_one),
        Side(many, fresh_many),
        iterations=CONCURRENT,
        rounds=settings.rounds,
        workers=CONCURRENT,
    )
    return CapRow(
        f"{CONCURRENT} concurrent creates, 1 owner, cap {HOT_CAP}",
        f"{CONCURRENT} concurrent creates, {CONCURRENT} owners",
        versus.subject * 1000,
        versus.baseline * 1000,
        versus.ratio,
        creates.conflicts,
        creates.refused,
    )


async def _fill(creates: Creates, owner: str, count: int) -> None:
    for start in range(0, count, CONCURRENT):
        batch = min(CONCURRENT, count - start)
        await asyncio.gather(*(creates.create(owner) for _ in range(batch)))


async def many_tasks(backend: StorageBackend, settings: Settings, cap: int) -> CapRow:
    """Sequential creates with 4,000 live tasks vs with 10, same raised cap, same run."""
    creates = Creates(GenericTaskStore(backend, StoreConfig(max_tasks_per_owner=cap)))
    full_owner = f"full-{cap}"
    await _fill(creates, full_owner, LIVE)
    iterations = settings.iterations(200)
    passes = itertools.count()
    sparse_owner = [""]

    async def fresh_sparse(workers: int, per_worker: int) -> None:
        sparse_owner[0] = f"sparse-{cap}-{next(passes)}"
        await _fill(creates, sparse_owner[0], FEW)

    async def full(worker: int, i: int) -> None:
        await creates.create(full_owner)

    async def sparse(worker: int, i: int) -> None:
        await creates.create(sparse_owner[0])

    versus = await compare(
        Side(full), Side(sparse, fresh_sparse), iterations=iterations, rounds=settings.rounds
    )
    grown = LIVE + (settings.rounds + 1) * iterations
    return CapRow(
        f"create with {LIVE:,}..{grown:,} live tasks, cap {cap:,} "
        f"(fill {LIVE / cap:.2f}..{grown / cap:.2f})",
        f"create with {FEW}..{FEW + iterations} live tasks (a fresh owner each pass), same cap",
        versus.subject * 1000,
        versus.baseline * 1000,
        versus.ratio,
        creates.conflicts,
        creates.refused,
    )


async def run(settings: Settings, redis_url: str) -> list[CapRow]:
    from reference_backends.redis import RedisBackend

    backend = RedisBackend.from_url(redis_url, namespace="cap")
    try:
        rows = [await hot_spot(backend, settings)]
        for cap in RAISED_CAPS:
            rows.append(await many_tasks(backend, settings, cap))
        return rows
    finally:
        await backend.aclose()


def cap_table(rows: list[CapRow]) -> str:
    lines = [
        "| Subject | Baseline | Subject ms/op | Baseline ms/op | Ratio (median of rounds) "
        "| ConcurrentModification | TaskLimitExceeded |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.subject} | {r.baseline} | {r.subject_ms:.3f} | {r.baseline_ms:.3f} "
        f"| {r.ratio:.2f}x | {r.conflicts} | {r.refused} |"
        for r in rows
    ]
    return "\n".join(lines)
