"""A create refused at the cap reads the owner's slots, not the owner's task bodies.

Every refusal used to list all of the owner's tasks to count them: with 100 tasks of 1 MB,
each refused create made Redis send 100 MB, and a client at its cap could repeat that at will.
A finished task now gives its slot back, so a refusal reads only the slot records and asks
whether each slot's task exists with a write that never applies, the first refusal as much
as any later one. Bytes and times on Redis are in docs/reports/store-faults-2026-12.md
(``python -m benchmarks.cap_bench``). Run on every backend.
"""

from __future__ import annotations

import pytest
from reliability_support import opened

from conformance.faults import FaultyBackend
from conformance.harness import BackendFactory, ManualClock
from pmcp_tasks import GenericTaskStore, StoreConfig, TaskLimitExceeded
from pmcp_tasks.keys import partition_prefix, task_key

pytestmark = pytest.mark.anyio

CAP = 5
OWNER = "alice"
BODY = {"a": "x" * 50_000, "b": "y" * 50_000}


def _task_bytes_read(recorder: FaultyBackend, since: int) -> int:
    """Bytes of the owner's task records that reads returned after log entry ``since``."""
    prefix = partition_prefix(OWNER)
    total = 0
    for call in recorder.log[since:]:
        if call.method == "get" and call.result is not None and call.key.startswith(prefix):
            total += len(call.result.data)
        if call.method == "list_by_prefix" and call.result:
            total += sum(len(r.data) for key, r in call.result if key.startswith(prefix))
    return total


async def test_every_refusal_reads_no_task_body(factory: BackendFactory) -> None:
    """The first refusal too, young tasks or old, and after a task finished."""
    clock = ManualClock(start=1_800_000_000.0)
    async with opened(factory, clock, "refusal") as backend:
        recorder = FaultyBackend(backend)
        store = GenericTaskStore(recorder, StoreConfig(max_tasks_per_owner=CAP), clock)
        made = [await store.create(OWNER, variables=BODY) for _ in range(CAP)]
        await _refused_reading_no_body(store, recorder)  # every task young
        clock.advance(store.config.dead_task_grace + 1)  # no task is young any more
        for _ in range(3):
            await _refused_reading_no_body(store, recorder)
        await store.complete(OWNER, made[0].task_id, {"done": True})
        await store.create(OWNER, variables=BODY)  # the finished task gave its slot back
        await _refused_reading_no_body(store, recorder)
        clock.advance(store.config.dead_task_grace)
        await _refused_reading_no_body(store, recorder)
        listed = (await store.list(OWNER))[0]
        assert sum(not t.status.is_terminal for t in listed) == CAP
        assert all(t.variables == BODY for t in listed)


async def _refused_reading_no_body(store: GenericTaskStore, recorder: FaultyBackend) -> None:
    since = len(recorder.log)
    with pytest.raises(TaskLimitExceeded):
        await store.create(OWNER)
    assert _task_bytes_read(recorder, since) == 0
    probes = [c for c in recorder.log[since:] if c.method == "put_if_version"]
    assert not any(c.applied for c in probes if c.key.startswith(partition_prefix(OWNER)))


async def test_a_task_gone_below_the_store_frees_its_slot(factory: BackendFactory) -> None:
    """A slot whose task is absent is free, as when every task is read: the owner is not
    refused below its cap."""
    clock = ManualClock(start=1_800_000_000.0)
    async with opened(factory, clock, "refusal") as backend:
        store = GenericTaskStore(backend, StoreConfig(max_tasks_per_owner=CAP), clock)
        made = [await store.create(OWNER) for _ in range(CAP)]
        clock.advance(store.config.dead_task_grace + 1)
        with pytest.raises(TaskLimitExceeded):
            await store.create(OWNER)
        assert await backend.delete(task_key(OWNER, made[0].task_id))  # lost below the store
        created = await store.create(OWNER)
        listed = {t.task_id for t in (await store.list(OWNER))[0]}
        assert listed == {t.task_id for t in made[1:]} | {created.task_id}
        with pytest.raises(TaskLimitExceeded):
            await store.create(OWNER)
