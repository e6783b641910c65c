"""Owner isolation: another owner's task answers exactly like a missing one, for every call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from domain_support import OWNERS
from hypothesis import given
from hypothesis import strategies as st

from conformance.harness import ManualClock
from pmcp_tasks import (
    AnonymousOwnerRefused,
    GenericTaskStore,
    StoreConfig,
    TaskNotFound,
    TaskValidationError,
    partition_prefix,
)
from pmcp_tasks.config import SHOWN_CHARS, shown
from reference_backends.memory import InMemoryBackend

pytestmark = pytest.mark.anyio

Operation = Callable[[GenericTaskStore, str, str], Awaitable[Any]]

OPERATIONS: dict[str, Operation] = {
    "get": lambda s, o, t: s.get(o, t),
    "update_status": lambda s, o, t: s.update_status(o, t, "input_required"),
    "set_variables": lambda s, o, t: s.set_variables(o, t, {"x": 1}),
    "complete": lambda s, o, t: s.complete(o, t, {"content": []}),
    "fail": lambda s, o, t: s.fail(o, t, "no"),
    "cancel": lambda s, o, t: s.cancel(o, t),
    "require_input": lambda s, o, t: s.require_input(o, t),
    "get_result": lambda s, o, t: s.get_result(o, t),
}

PAIRS = [(a, b) for a in OWNERS for b in OWNERS if a != b]


def short(owner: str) -> str:
    return owner if len(owner) < 20 else f"{owner[:3]}..{len(owner)}"


@pytest.mark.parametrize("operation", list(OPERATIONS))
async def test_other_owner_is_indistinguishable_from_missing(
    store: GenericTaskStore, operation: str
) -> None:
    call = OPERATIONS[operation]
    tasks = {owner: await store.create(owner, variables={"who": owner}) for owner in OWNERS}
    await store.complete(OWNERS[0], tasks[OWNERS[0]].task_id, "r")  # a result worth stealing
    for owner, intruder in PAIRS:
        task_id = tasks[owner].task_id
        with pytest.raises(TaskNotFound) as raised:
            await call(store, intruder, task_id)
        assert type(raised.value) is TaskNotFound
        assert raised.value.message == f"task not found: {task_id!r}", short(intruder)
        assert raised.value.code == -32602
    for owner in OWNERS:  # nothing any intruder did reached the real task
        assert (await store.get(owner, tasks[owner].task_id)).variables == {"who": owner}


async def test_listing_is_per_owner(store: GenericTaskStore) -> None:
    mine: dict[str, set[str]] = {}
    for owner in OWNERS:  # not a nested comprehension: an await inside one is 3.11+
        mine[owner] = {(await store.create(owner)).task_id for _ in range(2)}
    for owner in OWNERS:
        tasks, cursor = await store.list(owner)
        assert {task.task_id for task in tasks} == mine[owner], short(owner)
        assert all(task.owner == owner for task in tasks)
        assert cursor is None


def test_partitions_are_distinct_and_safe() -> None:
    prefixes = {partition_prefix(owner) for owner in OWNERS}
    assert len(prefixes) == len(OWNERS)
    for prefix in prefixes:
        assert prefix.count(":") == 1
        assert not set(prefix) & set("*{}[]? ")


async def test_tampered_owner_in_record_is_not_found(
    store: GenericTaskStore, backend: InMemoryBackend
) -> None:
    """The key scopes the owner, and the stored owner must agree (defense in depth)."""
    record = await store.create("alice")
    key = partition_prefix("alice") + record.task_id
    stored = await backend.get(key)
    assert stored is not None
    forged = stored.data.replace(b'"owner":"alice"', b'"owner":"mallory"')
    await backend.put(key, forged, expires_at=stored.expires_at)
    with pytest.raises(TaskNotFound):
        await store.get("alice", record.task_id)
    assert (await store.list("alice"))[0] == []


@pytest.mark.parametrize("owner", ["", "local"])
async def test_anonymous_owners_refused_unless_allowed(clock: ManualClock, owner: str) -> None:
    strict = GenericTaskStore(InMemoryBackend(clock=clock), clock=clock)
    with pytest.raises(AnonymousOwnerRefused, match="allow_anonymous=True") as raised:
        await strict.create(owner)
    assert raised.value.code == -32602
    with pytest.raises(AnonymousOwnerRefused):
        await strict.list(owner)
    relaxed = GenericTaskStore(
        InMemoryBackend(clock=clock), StoreConfig(allow_anonymous=True), clock
    )
    record = await relaxed.create(owner)
    assert (await relaxed.get(owner, record.task_id)).owner == owner
    other = "local" if owner == "" else ""
    with pytest.raises(TaskNotFound):
        await relaxed.get(other, record.task_id)


@pytest.mark.parametrize("owner", ["\ud800", "a\udfffb", 42, None, b"alice"])
async def test_bad_owner_is_a_validation_error(store: GenericTaskStore, owner: Any) -> None:
    for call in (store.create(owner), store.list(owner), store.get(owner, "0" * 48)):
        with pytest.raises(TaskValidationError, match="owner"):
            await call


@pytest.mark.parametrize(
    "task_id", ["", "x", "\ud800", "../../etc", "a:b", "0" * 47, "A" * 48, "0" * 10_000]
)
async def test_impossible_task_id_is_not_found(store: GenericTaskStore, task_id: str) -> None:
    with pytest.raises(TaskNotFound) as raised:
        await store.get("alice", task_id)
    assert raised.value.message == f"task not found: {shown(task_id)}"
    assert len(raised.value.message) <= len("task not found: ") + SHOWN_CHARS
    with pytest.raises(TaskNotFound):
        await store.set_variables("alice", task_id, {"a": 1})


async def test_non_str_task_id_is_a_validation_error(store: GenericTaskStore) -> None:
    with pytest.raises(TaskValidationError, match="task_id must be a str, not int"):
        await store.get("alice", 12)  # type: ignore[arg-type]


owners = st.text(min_size=1, max_size=40).filter(lambda o: o not in ("local",))


@given(first=owners, second=owners)
def test_isolation_property(first: str, second: str) -> None:
    if first == second:
        second = first + ":"
    clock = ManualClock(start=1_800_000_000.0)
    store = GenericTaskStore(InMemoryBackend(clock=clock), clock=clock)

    async def scenario() -> None:
        a = await store.create(first, variables={"v": first})
        b = await store.create(second, variables={"v": second})
        assert [t.task_id for t in (await store.list(first))[0]] == [a.task_id]
        assert [t.task_id for t in (await store.list(second))[0]] == [b.task_id]
        for owner, foreign in ((first, b), (second, a)):
            with pytest.raises(TaskNotFound):
                await store.get(owner, foreign.task_id)
            with pytest.raises(TaskNotFound):
                await store.set_variables(owner, foreign.task_id, {"v": "stolen"})
        assert (await store.get(first, a.task_id)).variables == {"v": first}
        assert (await store.get(second, b.task_id)).variables == {"v": second}

    asyncio.run(scenario())
