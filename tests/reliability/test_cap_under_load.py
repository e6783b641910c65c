"""The per-owner cap under load and attack, on every backend (docs/domain.md, "The per-owner cap").

- No hot spot: one owner's 50 concurrent creates all succeed with only 2 CAS attempts per
  mutation (a record that every create rewrites made about half of them fail), and no key but
  the tasks' own is written more than a few times.
- It bounds storage: a ttl below ``min_ttl`` is refused, and an owner churning tasks as fast as
  the cap allows keeps at most N x (1 + L / (min_ttl + dead_task_grace)) task records when
  expired records are removed only every L seconds.
- Lost slot state is bounded: deleted slot records let the owner run at most one extra task
  per lost slot at a time, the same for every store, while the tasks that lost them live.
- Results and owners are bounded in size whatever the backend holds.
"""

from __future__ import annotations

import pytest
from reliability_support import fifty_creates_write_each_key_once, opened

from conformance.harness import BackendFactory, ManualClock
from pmcp_tasks import (
    GenericTaskStore,
    StoreConfig,
    TaskLimitExceeded,
    TaskValidationError,
)
from pmcp_tasks.cap import slot_prefix
from reference_backends.memory import InMemoryBackend

pytestmark = pytest.mark.anyio

OWNER = "alice"


def _clock() -> ManualClock:
    return ManualClock(start=1_800_000_000.0)


async def _creates_until_refused(store: GenericTaskStore, **options: float) -> int:
    created = 0
    while True:
        try:
            await store.create(OWNER, **options)
        except TaskLimitExceeded:
            return created
        created += 1


async def test_one_owners_concurrent_creates_do_not_contend(factory: BackendFactory) -> None:
    clock = _clock()
    async with opened(factory, clock, "cap") as backend:
        await fifty_creates_write_each_key_once(backend, clock)


async def test_a_ttl_below_the_minimum_is_refused(factory: BackendFactory) -> None:
    async with opened(factory, _clock(), "cap") as backend:
        store = GenericTaskStore(backend, StoreConfig(), _clock())
        with pytest.raises(TaskValidationError, match=r"1e-12 seconds is below .* minimum of 1"):
            await store.create(OWNER, ttl=1e-12)
        assert (await store.list(OWNER))[0] == []


async def test_churn_keeps_storage_within_the_documented_bound(
    backend: InMemoryBackend, clock: ManualClock
) -> None:
    """Memory removes expired records only on cleanup_expired, here once after L = 300 s, so
    every task created meanwhile is still stored then (with a 1 ms ttl and no grace, as before
    min_ttl and dead_task_grace, that was 5 x 300,000)."""
    config = StoreConfig(max_tasks_per_owner=5)
    store = GenericTaskStore(backend, config, clock)
    cap, lag = 5, 300.0
    created = 0
    for _ in range(int(lag)):  # one second at a time, creating whatever the cap allows
        created += await _creates_until_refused(store, ttl=config.min_ttl)
        clock.advance(1)
    bound = cap * (1 + lag / (config.min_ttl + config.dead_task_grace))
    assert cap < created <= bound  # every one of them is a task record stored right now
    assert await store.cleanup_expired() >= created  # they were: the cleanup removes them


async def test_lost_slots_cost_one_task_each_while_their_tasks_live(
    factory: BackendFactory,
) -> None:
    """Each lost slot lets one more task run at a time, never two, and only while the task
    that lost it lives: refusals read no task body, so they cannot find that task."""
    clock = _clock()
    async with opened(factory, clock, "cap") as backend:
        store = GenericTaskStore(backend, StoreConfig(max_tasks_per_owner=5), clock)
        kept = {(await store.create(OWNER, ttl=3600)).task_id for _ in range(5)}
        slots = [key for key, _ in await backend.list_by_prefix(slot_prefix(OWNER))]
        assert len(slots) == 5
        for key in slots[:2]:
            assert await backend.delete(key)
        assert await _creates_until_refused(store, ttl=10) == 2
        clock.advance(10 + store.config.dead_task_grace)  # the extra tasks and slots are gone
        assert await _creates_until_refused(store, ttl=10) == 2  # two again, not more
        listed = {t.task_id for t in (await store.list(OWNER))[0]}
        assert kept < listed
        assert len(listed) == 5 + 2
        clock.advance(3600)  # every task died: the owner has exactly its five slots back
        assert await _creates_until_refused(store, ttl=10) == 5


async def test_lost_slots_cost_the_same_for_every_store(
    factory: BackendFactory,
) -> None:
    """The count is in storage: another store (process, host) gets no more than the one
    that saw the slots go."""
    clock = _clock()
    async with opened(factory, clock, "cap") as backend:
        config = StoreConfig(max_tasks_per_owner=5)
        first, second = (
            GenericTaskStore(backend, config, clock),
            GenericTaskStore(backend, config, clock),
        )
        kept = {(await first.create(OWNER, ttl=3600)).task_id for _ in range(5)}
        for key, _ in (await backend.list_by_prefix(slot_prefix(OWNER)))[:2]:
            assert await backend.delete(key)
        assert await _creates_until_refused(first, ttl=10) == 2
        with pytest.raises(TaskLimitExceeded):
            await second.create(OWNER)
        clock.advance(10 + config.dead_task_grace)  # the extra tasks died, their slots lapsed
        assert await _creates_until_refused(second, ttl=10) == 2
        assert kept < {t.task_id for t in (await first.list(OWNER))[0]}
        clock.advance(3600)  # every task died: the owner has its five slots back
        assert await _creates_until_refused(second, ttl=10) == 5


async def test_a_lowered_cap_holds_once_reached(factory: BackendFactory) -> None:
    clock = _clock()
    async with opened(factory, clock, "cap") as backend:
        wide = GenericTaskStore(backend, StoreConfig(), clock)
        for _ in range(20):
            await wide.create(OWNER)
        narrow = GenericTaskStore(backend, StoreConfig(max_tasks_per_owner=3), clock)
        assert await _creates_until_refused(narrow) <= 3  # only slots 0..2 can still be free
        with pytest.raises(TaskLimitExceeded, match="already has 3 unfinished tasks"):
            await narrow.create(OWNER)


async def test_results_and_owners_are_bounded_on_every_backend(factory: BackendFactory) -> None:
    clock = _clock()
    async with opened(factory, clock, "cap") as backend:
        store = GenericTaskStore(backend, StoreConfig(), clock)
        with pytest.raises(TaskValidationError, match=r"owner is 2000000 bytes .* limit is 4096"):
            await store.create("o" * 2_000_000)
        task = await store.create(OWNER)
        big = {"chunks": ["x" * 60_000] * 20}  # 1.2 MB of JSON, each string within its limit
        with pytest.raises(TaskValidationError, match=r"result would take \d+ bytes .* 1048576"):
            await store.complete(OWNER, task.task_id, big)
        with pytest.raises(TaskValidationError, match=r"error would take \d+ bytes"):
            await store.fail(OWNER, task.task_id, error={"code": 1, "message": "m", "data": big})
        assert (await store.get(OWNER, task.task_id)) == task
