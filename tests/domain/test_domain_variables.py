"""Variables: merge semantics, JSON-only values and every size limit, each with a clear error."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.harness import ManualClock
from pmcp_tasks import GenericTaskStore, StoreConfig, TaskValidationError, partition_prefix
from reference_backends.memory import InMemoryBackend

pytestmark = pytest.mark.anyio


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


async def test_merge_and_delete(store: GenericTaskStore) -> None:
    record = await store.create("alice", variables={"a": 1, "b": {"x": [1, 2]}, "gone": None})
    assert record.variables == {"a": 1, "b": {"x": [1, 2]}}
    updated = await store.set_variables("alice", record.task_id, {"a": None, "c": "new"})
    assert updated.variables == {"b": {"x": [1, 2]}, "c": "new"}
    again = await store.set_variables("alice", record.task_id, {"missing": None})
    assert again.variables == updated.variables
    assert (await store.get("alice", record.task_id)).variables == updated.variables


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (math.nan, "variables['v'] is nan; JSON has no NaN"),
        ({"deep": [math.inf]}, "variables['v']['deep'][0] is inf"),
        (b"raw", "variables['v'] is a bytes, which is not JSON"),
        ({1, 2}, "variables['v'] is a set"),
        ((1, 2), "variables['v'] is a tuple"),
        ({1: "x"}, "variables['v'] has a key 1 of type int"),
        ([object()], "variables['v'][0] is a object"),
        ("\ud800", "variables['v'] is not valid Unicode text"),
        ({"n": 2**64}, "variables['v']['n'] is an integer outside"),
        (-(2**63) - 1, "variables['v'] is an integer outside"),
    ],
)
async def test_non_json_values_rejected_with_path(
    store: GenericTaskStore, backend: InMemoryBackend, value: Any, fragment: str
) -> None:
    record = await store.create("alice", variables={"keep": True})
    key = partition_prefix("alice") + record.task_id
    before = await backend.get(key)
    with pytest.raises(TaskValidationError) as raised:
        await store.set_variables("alice", record.task_id, {"other": 1, "v": value})
    assert fragment in raised.value.message
    assert await backend.get(key) == before  # nothing half-written
    with pytest.raises(TaskValidationError):
        await store.create("alice", variables={"v": value})


@pytest.mark.parametrize("changes", [["a"], "a=1", None, 3])
async def test_variables_must_be_a_mapping(store: GenericTaskStore, changes: Any) -> None:
    record = await store.create("alice")
    with pytest.raises(TaskValidationError, match="variables must be a mapping"):
        await store.set_variables("alice", record.task_id, changes)


async def test_non_str_variable_name(store: GenericTaskStore) -> None:
    with pytest.raises(TaskValidationError, match="variable name 1 is a int"):
        await store.create("alice", variables={1: "x"})  # type: ignore[dict-item]


async def test_depth_limit(store: GenericTaskStore) -> None:
    record = await store.create("alice", variables={"ok": nested(10)})
    with pytest.raises(TaskValidationError, match=r"variables\['bad'\]\[0\]\[0\].* deeper than 10"):
        await store.set_variables("alice", record.task_id, {"bad": nested(11)})


async def test_string_limit_counts_utf8_bytes(store: GenericTaskStore) -> None:
    record = await store.create("alice", variables={"ok": "x" * 65_536})
    with pytest.raises(TaskValidationError, match="string of 65537 bytes; the limit is 65536"):
        await store.set_variables("alice", record.task_id, {"s": "x" * 65_537})
    with pytest.raises(TaskValidationError, match="string of 65538 bytes"):
        await store.set_variables("alice", record.task_id, {"s": "é" * 32_769})
    with pytest.raises(TaskValidationError, match="name of variables"):
        await store.set_variables("alice", record.task_id, {"k" * 65_537: 1})


async def test_total_variables_limit(store: GenericTaskStore) -> None:
    chunk = "x" * 60_000
    record = await store.create("alice", variables={f"v{i}": chunk for i in range(17)})
    with pytest.raises(TaskValidationError, match=r"variables would take .* the limit is 1048576"):
        await store.set_variables("alice", record.task_id, {"v17": chunk})
    freed = await store.set_variables("alice", record.task_id, {"v0": None, "v17": chunk})
    assert len(freed.variables) == 17


async def test_backend_record_limit_checked_before_writing(clock: ManualClock) -> None:
    backend = InMemoryBackend(clock=clock, max_record_bytes=20_000)
    store = GenericTaskStore(backend, StoreConfig(max_tasks_per_owner=10), clock)
    record = await store.create("alice")
    with pytest.raises(TaskValidationError, match="this storage holds at most 20000 bytes"):
        await store.set_variables("alice", record.task_id, {"big": "x" * 30_000})
    with pytest.raises(TaskValidationError, match="at most 20000 bytes"):
        await store.complete("alice", record.task_id, "x" * 30_000)
    assert (await store.get("alice", record.task_id)).variables == {}


def test_cap_that_cannot_fit_the_backend_is_refused(clock: ManualClock) -> None:
    backend = InMemoryBackend(clock=clock, max_record_bytes=32)
    with pytest.raises(ValueError, match=r"stores at most 32 bytes .* a task slot .* up to 64"):
        GenericTaskStore(backend, StoreConfig(max_tasks_per_owner=100), clock)


def test_custom_limits_apply() -> None:
    clock = ManualClock(start=1_800_000_000.0)
    config = StoreConfig(max_variable_depth=2, max_string_bytes=4, max_variables_bytes=64)
    store = GenericTaskStore(InMemoryBackend(clock=clock), config, clock)

    async def scenario() -> None:
        await store.create("alice", variables={"v": [[1]]})
        with pytest.raises(TaskValidationError, match="deeper than 2"):
            await store.create("alice", variables={"v": [[[1]]]})
        with pytest.raises(TaskValidationError, match="limit is 4"):
            await store.create("alice", variables={"v": "12345"})
        with pytest.raises(TaskValidationError, match="limit is 64"):
            await store.create("alice", variables={f"k{i}": i for i in range(20)})

    asyncio.run(scenario())


json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
names = st.text(max_size=6)
updates = st.lists(st.dictionaries(names, json_values | st.none(), max_size=4), max_size=5)


@given(initial=st.dictionaries(names, json_values, max_size=4), steps=updates)
def test_merge_property(initial: dict[str, Any], steps: list[dict[str, Any]]) -> None:
    """The store agrees with a dict model: each update overwrites, ``None`` deletes."""
    clock = ManualClock(start=1_800_000_000.0)
    store = GenericTaskStore(InMemoryBackend(clock=clock), clock=clock)

    async def scenario() -> None:
        record = await store.create("alice", variables=initial)
        model = {k: v for k, v in initial.items() if v is not None}
        assert record.variables == model
        for step in steps:
            record = await store.set_variables("alice", record.task_id, step)
            for name, value in step.items():
                if value is None:
                    model.pop(name, None)
                else:
                    model[name] = value
            assert record.variables == model
        assert (await store.get("alice", record.task_id)).variables == model

    asyncio.run(scenario())
