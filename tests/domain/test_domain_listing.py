"""Listing: oldest first, opaque cursors that stay stable while tasks are created."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from conformance.harness import ManualClock
from pmcp_tasks import (
    GenericTaskStore,
    InvalidCursor,
    StorageFailure,
    TaskNotFound,
    TaskValidationError,
    partition_prefix,
)
from pmcp_tasks.ids import created_ms
from reference_backends.memory import InMemoryBackend

pytestmark = pytest.mark.anyio


async def list_all(store: GenericTaskStore, owner: str, limit: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        tasks, cursor = await store.list(owner, cursor=cursor, limit=limit)
        assert len(tasks) <= limit
        seen += [task.task_id for task in tasks]
        if cursor is None:
            return seen


async def test_oldest_first_and_paged(store: GenericTaskStore, clock: ManualClock) -> None:
    created = []
    for _ in range(23):
        created.append((await store.create("alice")).task_id)
        clock.advance(0.0005 if len(created) % 2 else 0)  # several in the same millisecond
    # Ids of one millisecond are ordered by their random part, not by a counter.
    in_key_order = sorted(created)
    assert [created_ms(i) for i in in_key_order] == [created_ms(i) for i in created]
    assert await list_all(store, "alice", 5) == in_key_order
    assert await list_all(store, "alice", 23) == in_key_order
    tasks, cursor = await store.list("alice")
    assert [t.task_id for t in tasks] == in_key_order
    assert cursor is None


async def test_cursor_stable_while_tasks_are_created(
    store: GenericTaskStore, clock: ManualClock
) -> None:
    first = sorted([(await store.create("alice")).task_id for _ in range(6)])
    page, cursor = await store.list("alice", limit=4)
    assert [t.task_id for t in page] == first[:4]
    clock.advance(1)
    later = sorted([(await store.create("alice")).task_id for _ in range(3)])
    rest: list[str] = []
    while cursor is not None:
        page, cursor = await store.list("alice", cursor=cursor, limit=4)
        rest += [t.task_id for t in page]
    assert rest == first[4:] + later


def forge(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor",
        "%%%",
        "x" * 300,
        forge([1, 2]),
        forge({"a": "0" * 48}),
        forge({"a": "zz", "p": "0" * 16}),
        12,
    ],
)
async def test_invalid_cursor(store: GenericTaskStore, cursor: Any) -> None:
    await store.create("alice")
    with pytest.raises(InvalidCursor, match="invalid cursor") as raised:
        await store.list("alice", cursor=cursor)
    assert raised.value.code == -32602


async def test_cursor_of_another_owner_is_invalid(store: GenericTaskStore) -> None:
    for _ in range(3):
        await store.create("alice")
        await store.create("bob")
    _, cursor = await store.list("alice", limit=1)
    assert cursor is not None
    with pytest.raises(InvalidCursor):
        await store.list("bob", cursor=cursor)
    tampered = json.loads(base64.urlsafe_b64decode(cursor + "=="))
    tampered["p"] = "f" * 16
    with pytest.raises(InvalidCursor):
        await store.list("alice", cursor=forge(tampered))


@pytest.mark.parametrize("limit", [0, -1, 1001, "5", 2.0, True])
async def test_bad_limit(store: GenericTaskStore, limit: Any) -> None:
    with pytest.raises(TaskValidationError, match="limit"):
        await store.list("alice", limit=limit)


async def test_corrupted_record(store: GenericTaskStore, backend: InMemoryBackend) -> None:
    """A corrupted record is a clear error naming the task; listings skip it and go on."""
    good = await store.create("alice")
    bad = await store.create("alice")
    last = await store.create("alice")
    await backend.put(partition_prefix("alice") + bad.task_id, b"\xff{not json", expires_at=None)
    with pytest.raises(StorageFailure, match=f"stored record of task '{bad.task_id}' is corrupt"):
        await store.get("alice", bad.task_id)
    with pytest.raises(StorageFailure) as raised:
        await store.set_variables("alice", bad.task_id, {"a": 1})
    assert raised.value.code == -32603
    assert await list_all(store, "alice", 1) == sorted([good.task_id, last.task_id])


@pytest.mark.parametrize(
    "data",
    [b"[]", b'{"v":2}', b'{"v":1,"taskId":"x"}', b'{"v":1}', b"null", b"[" * 100_000],
)
async def test_corruption_shapes(
    store: GenericTaskStore, backend: InMemoryBackend, data: bytes
) -> None:
    record = await store.create("alice")
    await backend.put(partition_prefix("alice") + record.task_id, data)
    with pytest.raises(StorageFailure, match="is corrupted"):
        await store.get("alice", record.task_id)


async def test_listing_ignores_foreign_items(
    store: GenericTaskStore, backend: InMemoryBackend
) -> None:
    record = await store.create("alice")
    await backend.put(partition_prefix("alice") + "zzz", b"{}")
    tasks, _ = await store.list("alice", limit=1)
    assert [t.task_id for t in tasks] == [record.task_id]
    with pytest.raises(TaskNotFound):
        await store.get("alice", "zzz")


async def test_a_crafted_cursor_is_a_position_in_the_callers_own_listing(
    store: GenericTaskStore, clock: ManualClock
) -> None:
    """Cursors are unkeyed positions (docs/domain.md): crafting one never reaches another owner.

    The fingerprint is computable by anyone, so alice can craft a cursor at any id, bob's
    included; the partition still comes from the caller, so all she gets is her own tasks
    after that position.
    """
    mine, theirs = [], []
    for _ in range(4):
        mine.append((await store.create("alice")).task_id)
        theirs.append((await store.create("bob")).task_id)
        clock.advance(0.002)
    fingerprint = json.loads(
        base64.urlsafe_b64decode(_cursor_of(await store.list("alice", limit=1)) + "==")
    )["p"]
    for position in [*theirs, "0" * 48, "f" * 48]:
        crafted = forge({"a": position, "p": fingerprint})
        listed = await list_all_from(store, "alice", crafted)
        assert listed == sorted(t for t in mine if t > position)
        assert not set(listed) & set(theirs)


def _cursor_of(page: tuple[list[Any], str | None]) -> str:
    cursor = page[1]
    assert cursor is not None
    return cursor


async def list_all_from(store: GenericTaskStore, owner: str, cursor: str) -> list[str]:
    seen: list[str] = []
    next_cursor: str | None = cursor
    while next_cursor is not None:
        tasks, next_cursor = await store.list(owner, cursor=next_cursor, limit=2)
        seen += [task.task_id for task in tasks]
    return seen
