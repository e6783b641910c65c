"""One pager against concurrent writers: what docs/domain.md promises paging keeps.

Every task whose create returned before the first page was requested is listed exactly once
(none of them expires during the run), no task is listed twice, pages come in key order, and
nothing is listed that no writer created. Tasks created meanwhile may or may not appear:
"never skips" cannot hold without a sequencer.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from pmcp_tasks import GenericTaskStore

WRITERS = 20
BEFORE = 2
"""Creates each writer completes before the pager starts."""
DURING = 6
"""Creates each writer makes at most once the pager runs (so that the pager catches up)."""


@dataclass
class PagingRun:
    before: set[str] = field(default_factory=set)
    during: set[str] = field(default_factory=set)
    seen: list[str] = field(default_factory=list)


async def _yield(rng: random.Random) -> None:
    for _ in range(rng.randrange(4)):
        await asyncio.sleep(0)


async def page_while_creating(store: GenericTaskStore, owner: str, seed: int) -> PagingRun:
    """Run ``WRITERS`` writers and one pager (pages of 1-4) on ``owner``."""
    rng = random.Random(seed)
    run = PagingRun()
    started = asyncio.Event()
    done = asyncio.Event()
    warmed = 0
    warm = asyncio.Event()

    async def writer(n: int) -> None:
        nonlocal warmed
        local = random.Random(seed * 1000 + n)
        made = 0
        while not done.is_set() and made < BEFORE + DURING:
            await _yield(local)
            task = await store.create(owner)
            (run.during if started.is_set() else run.before).add(task.task_id)
            made += 1
            if made == BEFORE:
                warmed += 1
                if warmed == WRITERS:
                    warm.set()
            if made >= BEFORE and not started.is_set():
                await started.wait()

    async def pager() -> None:
        await warm.wait()
        started.set()
        cursor: str | None = None
        while True:
            page, cursor = await store.list(owner, cursor=cursor, limit=rng.randint(1, 4))
            run.seen += [task.task_id for task in page]
            if cursor is None:
                break
            await _yield(rng)
        done.set()

    await asyncio.gather(pager(), *(writer(n) for n in range(WRITERS)))
    return run


def check(run: PagingRun) -> None:
    """The guarantee of docs/domain.md, "What paging guarantees while tasks are created"."""
    assert len(run.before) == WRITERS * BEFORE
    listed = set(run.seen)
    assert run.before <= listed, f"skipped {len(run.before - listed)} tasks created before paging"
    assert len(run.seen) == len(listed), "a task was listed twice"
    assert run.seen == sorted(run.seen), "pages out of key order"
    assert listed <= run.before | run.during, "listed a task nobody created"
