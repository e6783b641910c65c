"""Damaged bytes under a task key: that task fails clearly, every other task keeps working.

A record can be damaged by a bug in another writer, a botched migration, a restore of the wrong
data, or an attacker with storage access. The promise (docs/domain.md, docs/reliability.md):
reading or changing the damaged task raises ``StorageFailure`` (-32603) naming it; listings skip
it with a warning; the owner's other tasks, and other owners, are unaffected.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reliability_support import opened

from conformance.harness import BackendFactory, ManualClock
from pmcp_tasks import (
    GenericTaskStore,
    StorageBackend,
    StorageFailure,
    StoreConfig,
    TaskError,
    TaskLimitExceeded,
    TaskNotFound,
    TaskRecord,
    TaskStatus,
)
from pmcp_tasks.cap import slot_prefix
from pmcp_tasks.keys import task_key

pytestmark = pytest.mark.anyio

OWNER = "alice"


def _document(record: TaskRecord) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(record.to_json())
    return loaded


def _damaged(record: TaskRecord) -> dict[str, bytes]:
    """Ways to damage one task's stored bytes, by name."""

    def variant(**changes: Any) -> bytes:
        return json.dumps({**_document(record), **changes}).encode()

    document = _document(record)
    del document["status"]
    return {
        "not utf-8": b"\xff\xfe\x00garbage",
        "not json": b"{not json",
        "empty": b"",
        "json array": b"[1, 2, 3]",
        "json string": b'"task"',
        "other format version": variant(v=2),
        "no status": json.dumps(document).encode(),
        "unknown status": variant(status="exploded"),
        "time as text": variant(createdAt="yesterday"),
        "time as bool": variant(lastUpdatedAt=True),
        "variables as list": variant(variables=[1, 2]),
        "message as number": variant(statusMessage=5),
        "other task's record": variant(taskId="0" * 48),
        "time past year 9999": variant(createdAt=10**400),
        "negative time": variant(lastUpdatedAt=-1),
        "ttl past year 9999": variant(ttl=10**400),
        "negative poll interval": variant(pollInterval=-5),
        "NaN in variables": variant(variables={"x": float("nan")}),
        "Infinity in result": variant(result=float("inf")),
        "nested past the recursion limit": b'{"v":1,"variables":' + b"[" * 100_000,
        "1e400 in variables": spliced(record, "variables", b'{"x":1e400}'),
        "1e400 as a time": spliced(record, "createdAt", b"1e400"),
        "5000-digit int in result": spliced(record, "result", b"9" * 5000),
        "5000-digit lease": spliced(record, "leaseExpiresAt", b"9" * 5000),
        "huge input counter": variant(inputKeysIssued=2**1024),
    }


def spliced(record: TaskRecord, field: str, raw: bytes) -> bytes:
    """The record with ``field`` spelled as ``raw``: JSON that ``json.dumps`` cannot write."""
    marker = "\u0000splice\u0000"
    text = json.dumps({**_document(record), field: marker}).encode()
    return text.replace(json.dumps(marker).encode(), raw)


async def _three_tasks(store: GenericTaskStore) -> list[TaskRecord]:
    return [await store.create(OWNER, variables={"n": n}) for n in range(3)]


@pytest.mark.parametrize(
    "damage",
    list(_damaged(TaskRecord("0" * 48, OWNER, TaskStatus.WORKING, 0, 0, None))),
)
async def test_damaged_task_fails_clearly_and_alone(
    factory: BackendFactory, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(start=1_800_000_000.0)
    async with opened(factory, clock, "corrupt") as backend:
        store = GenericTaskStore(backend, StoreConfig(), clock)
        first, victim, last = await _three_tasks(store)
        other_owner = await store.create("bob")
        key = task_key(OWNER, victim.task_id)
        await backend.put(key, _damaged(victim)[damage], expires_at=victim.expires_at)

        for call in (
            lambda: store.get(OWNER, victim.task_id),
            lambda: store.get_result(OWNER, victim.task_id),
            lambda: store.set_variables(OWNER, victim.task_id, {"x": 1}),
            lambda: store.complete(OWNER, victim.task_id, {"ok": True}),
            lambda: store.cancel(OWNER, victim.task_id),
        ):
            with pytest.raises(StorageFailure) as raised:
                await call()
            assert raised.value.code == -32603
            assert victim.task_id in raised.value.message
            assert "corrupted" in raised.value.message

        with caplog.at_level(logging.WARNING, logger="pmcp_tasks"):
            listed, cursor = await store.list(OWNER)
        assert [t.task_id for t in listed] == sorted([first.task_id, last.task_id])
        assert cursor is None
        assert victim.task_id in caplog.text

        await store.set_variables(OWNER, first.task_id, {"still": "fine"})
        await store.complete(OWNER, last.task_id, {"ok": True})
        assert (await store.get(OWNER, first.task_id)).variables == {"n": 0, "still": "fine"}
        assert await store.get("bob", other_owner.task_id) == other_owner
        assert await store.create(OWNER)  # the cap still counts correctly


async def test_pages_stay_full_around_damaged_tasks(factory: BackendFactory) -> None:
    clock = ManualClock(start=1_800_000_000.0)
    async with opened(factory, clock, "corrupt") as backend:
        store = GenericTaskStore(backend, StoreConfig(), clock)
        tasks = [await store.create(OWNER) for _ in range(7)]
        for damaged in (tasks[1], tasks[2], tasks[5]):
            await backend.put(task_key(OWNER, damaged.task_id), b"\x00", expires_at=None)
        seen: list[str] = []
        cursor: str | None = None
        while True:
            page, cursor = await store.list(OWNER, cursor=cursor, limit=2)
            assert len(page) == 2 or cursor is None
            seen += [t.task_id for t in page]
            if cursor is None:
                break
        assert seen == sorted(tasks[i].task_id for i in (0, 3, 4, 6))


SLOT_DAMAGE = [
    b"Infinity",
    b'{"task":1e400}',
    b'{"task":' + b"9" * 5000 + b"}",
    b'{"task":"' + b"f" * 48 + b'","more":NaN}',
    b"\xff\xfe",
    b"[" * 100_000,
]


async def test_damaged_slots_are_free_and_harm_nothing(factory: BackendFactory) -> None:
    """Cap state holding anything at all never refuses an owner below the cap, nor raises."""
    clock = ManualClock(start=1_800_000_000.0)
    cap = len(SLOT_DAMAGE)
    async with opened(factory, clock, "corrupt") as backend:
        store = GenericTaskStore(backend, StoreConfig(max_tasks_per_owner=cap), clock)
        for index, junk in enumerate(SLOT_DAMAGE):
            await backend.put(slot_prefix(OWNER) + str(index), junk, expires_at=None)
        made = [await store.create(OWNER) for _ in range(cap)]
        with pytest.raises(TaskLimitExceeded):
            await store.create(OWNER)
        assert sorted(t.task_id for t in (await store.list(OWNER))[0]) == sorted(
            t.task_id for t in made
        )
        assert await store.create("bob")


async def _tamper(backend: StorageBackend, key: str, data: bytes, expires: float | None) -> None:
    await backend.put(key, data, expires_at=expires)


@settings(max_examples=max(10, settings().max_examples // 2))
@given(
    data=st.one_of(
        st.binary(max_size=64),
        st.builds(lambda d: json.dumps(d).encode(), st.dictionaries(st.text(), st.integers())),
    ),
    field=st.sampled_from(
        [
            *("v", "taskId", "owner", "status", "createdAt", "lastUpdatedAt", "ttl"),
            *("variables", "result", "pollInterval", "inputKeysIssued", "leaseExpiresAt"),
        ]
    ),
    value=st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=5),
        st.just([]),
        st.sampled_from([10**400, -(10**400), 2**1024, 2**64, 2**63, 1e308, -1e308]),
    ),
    use_field=st.booleans(),
)
async def test_any_damage_is_a_documented_error(
    factory: BackendFactory, data: bytes, field: str, value: object, use_field: bool
) -> None:
    """Random bytes, or a valid record with one field replaced: never anything undocumented."""
    clock = ManualClock(start=1_800_000_000.0)
    async with opened(factory, clock, "corrupt") as backend:
        store = GenericTaskStore(backend, StoreConfig(), clock)
        first, victim, last = await _three_tasks(store)
        if use_field:
            data = json.dumps({**_document(victim), field: value}).encode()
        await _tamper(backend, task_key(OWNER, victim.task_id), data, victim.expires_at)
        calls: list[Callable[[], Awaitable[TaskRecord]]] = [
            lambda: store.get(OWNER, victim.task_id),
            lambda: store.set_variables(OWNER, victim.task_id, {"x": 1}),
            lambda: store.cancel(OWNER, victim.task_id),
        ]
        for call in calls:
            try:
                await call()
            except TaskError as exc:
                error: TaskError | None = exc
            else:
                error = None
            if isinstance(error, StorageFailure):
                assert victim.task_id in error.message
            elif error is not None:  # owner or expiry changed: indistinguishable from missing
                assert isinstance(error, TaskNotFound), error
        listed = {t.task_id for t in (await store.list(OWNER))[0]}
        assert {first.task_id, last.task_id} <= listed
        assert (await store.get(OWNER, last.task_id)) == last
