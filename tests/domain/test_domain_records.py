"""Records, ids and the tool-handler context: canonical bytes, the wire shape, unique ids."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.harness import ManualClock
from pmcp_tasks import (
    GenericTaskStore,
    InvalidTransition,
    StoreConfig,
    TaskContext,
    TaskNotFound,
    TaskRecord,
    TaskStatus,
    partition_prefix,
)
from pmcp_tasks.ids import RANDOM_BITS, TaskIdGenerator, created_ms, is_task_id
from pmcp_tasks.record import canonical_json, iso_ms
from reference_backends.memory import InMemoryBackend, InMemoryTaskStore

pytestmark = pytest.mark.anyio

ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)
records = st.builds(
    TaskRecord,
    task_id=st.just("0" * 48),
    owner=st.text(),
    status=st.sampled_from(TaskStatus),
    created_at_ms=st.integers(0, 2**42),
    updated_at_ms=st.integers(0, 2**42),
    ttl_ms=st.none() | st.integers(1, 86_400_000),
    status_message=st.none() | st.text(),
    poll_interval_ms=st.none() | st.integers(1, 10_000),
    variables=st.dictionaries(st.text(), json_values, max_size=4),
    has_result=st.booleans(),
    result=json_values,
)


@given(record=records)
def test_canonical_json_round_trip(record: TaskRecord) -> None:
    data = record.to_json()
    again = TaskRecord.from_json(data, record.task_id)
    assert again.to_json() == data
    if record.has_result:
        assert again == record
    else:
        assert again.result is None
        assert again.variables == record.variables


def test_equal_records_give_identical_bytes() -> None:
    one = TaskRecord("0" * 48, "ö", TaskStatus.WORKING, 1, 2, 3, variables={"b": 1, "a": [2]})
    two = TaskRecord("0" * 48, "ö", TaskStatus.WORKING, 1, 2, 3, variables={"a": [2], "b": 1})
    assert one.to_json() == two.to_json()
    assert b" " not in one.to_json()
    assert "ö".encode() in one.to_json()
    assert canonical_json({"z": 1, "a": {"y": 2, "b": 3}}) == b'{"a":{"b":3,"y":2},"z":1}'
    with pytest.raises(ValueError, match="not JSON compliant"):
        canonical_json(float("nan"))


def test_iso_timestamps() -> None:
    assert iso_ms(0) == "1970-01-01T00:00:00.000Z"
    assert iso_ms(1_764_072_000_007) == "2025-11-25T12:00:00.007Z"


async def test_to_wire_shape(store: GenericTaskStore, clock: ManualClock) -> None:
    clock.set(1_764_072_000.25)
    record = await store.create("alice")
    wire = record.to_wire()
    assert set(wire) == {"taskId", "status", "createdAt", "lastUpdatedAt", "ttl", "pollInterval"}
    assert wire["taskId"] == record.task_id
    assert wire["status"] == "working"
    assert wire["createdAt"] == "2025-11-25T12:00:00.250Z"
    assert ISO_MS.fullmatch(wire["lastUpdatedAt"])
    assert wire["ttl"] == 3_600_000
    assert wire["pollInterval"] == 1000
    clock.advance(1.5)
    done = await store.complete("alice", record.task_id, {"secret": 1}, status_message="ok")
    wire = done.to_wire()
    assert wire["statusMessage"] == "ok"
    assert wire["status"] == "completed"
    assert wire["lastUpdatedAt"] == "2025-11-25T12:00:01.750Z"
    assert "secret" not in str(wire)
    assert "alice" not in str(wire)


def test_ids_unique_sorted_and_random() -> None:
    clock = ManualClock(start=1_800_000_000.0)
    new_id = TaskIdGenerator(clock)
    ids = []
    for index in range(1000):
        ids.append(new_id())
        if index % 100 == 0:
            clock.advance(0.001)
        if index == 500:
            clock.advance(-5)  # a clock stepping back does not break the order
    assert len(set(ids)) == 1000
    stamps = [created_ms(i) for i in ids]
    assert stamps == sorted(stamps)  # milliseconds never go back, even when the clock does
    assert ids != sorted(ids)  # within a millisecond: by chance, no counter to read others by
    assert all(is_task_id(i) for i in ids)
    assert RANDOM_BITS >= 122
    random_parts = {i[16:] for i in ids}
    assert len(random_parts) == 1000
    assert all(len(p) * 4 == RANDOM_BITS for p in random_parts)
    assert created_ms(ids[0]) == 1_800_000_000_000


async def test_store_hands_out_unique_ids(backend: InMemoryBackend, clock: ManualClock) -> None:
    big = GenericTaskStore(backend, StoreConfig(max_tasks_per_owner=None), clock)
    ids = [(await big.create("alice")).task_id for _ in range(1000)]
    assert len(set(ids)) == 1000
    listed, cursor = await big.list("alice", limit=1000)
    assert [t.task_id for t in listed] == sorted(ids)
    assert cursor is None


async def test_task_context(store: GenericTaskStore) -> None:
    record = await store.create("alice", variables={"step": 1})
    ctx = TaskContext(store, "alice", record.task_id)
    assert await ctx.get_variable("step") == 1
    assert await ctx.get_variable("nope", "dflt") == "dflt"
    await ctx.set_variables({"step": 2, "extra": [1]})
    await ctx.set_variable("extra", None)
    assert await ctx.get_variables() == {"step": 2}
    assert (await ctx.require_input("which file?")).status is TaskStatus.INPUT_REQUIRED
    assert (await ctx.resume()).status is TaskStatus.WORKING
    assert (await ctx.complete({"content": []})).status is TaskStatus.COMPLETED
    assert await store.get_result("alice", record.task_id) == {"content": []}
    with pytest.raises(InvalidTransition):
        await ctx.cancel()
    failing = TaskContext(store, "alice", (await store.create("alice")).task_id)
    assert (await failing.fail("boom", result={"isError": True})).status is TaskStatus.FAILED
    cancelled = TaskContext(store, "alice", (await store.create("alice")).task_id)
    assert (await cancelled.cancel("stop")).status_message == "stop"
    intruder = TaskContext(store, "mallory", record.task_id)
    with pytest.raises(TaskNotFound):
        await intruder.get()
    with pytest.raises(ValueError, match="GenericTaskStore"):
        TaskContext(object(), "alice", record.task_id)  # type: ignore[arg-type]


async def test_in_memory_task_store_one_line_start() -> None:
    store = InMemoryTaskStore()
    record = await store.create("alice")
    assert (await store.get("alice", record.task_id)).status is TaskStatus.WORKING


def test_store_rejects_bad_construction(clock: ManualClock) -> None:
    backend = InMemoryBackend(clock=clock)
    bad: list[dict[str, Any]] = [
        {"backend": object()},
        {"backend": backend, "config": {"default_ttl": 1}},
        {"backend": backend, "clock": 5},
    ]
    for kwargs in bad:
        with pytest.raises(ValueError, match="must"):
            GenericTaskStore(**kwargs)
    assert partition_prefix("alice") == "alice:"
