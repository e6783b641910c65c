"""TTL: default, maximum (rejected, never clamped), unlimited only when allowed, expired = gone."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.harness import ManualClock
from pmcp_tasks import (
    GenericTaskStore,
    StoreConfig,
    TaskNotFound,
    TaskValidationError,
    TtlTooLarge,
    partition_prefix,
)
from reference_backends.memory import InMemoryBackend

pytestmark = pytest.mark.anyio


async def stored_expiry(backend: InMemoryBackend, owner: str, task_id: str) -> float | None:
    stored = await backend.get(partition_prefix(owner) + task_id)
    assert stored is not None
    return stored.expires_at


async def test_default_ttl_is_one_hour(
    store: GenericTaskStore, backend: InMemoryBackend, clock: ManualClock
) -> None:
    record = await store.create("alice")
    assert record.ttl_ms == 3_600_000
    assert record.to_wire()["ttl"] == 3_600_000
    assert await stored_expiry(backend, "alice", record.task_id) == clock() + 3600


async def test_max_ttl_accepted_and_over_max_rejected(
    store: GenericTaskStore, backend: InMemoryBackend
) -> None:
    record = await store.create("alice", ttl=86_400)
    assert record.ttl_ms == 86_400_000
    expected = r"86400\.5 seconds exceeds .* maximum of 86400"
    with pytest.raises(TtlTooLarge, match=expected) as raised:
        await store.create("alice", ttl=86_400.5)
    assert raised.value.code == -32602
    assert len((await store.list("alice"))[0]) == 1  # the refused create wrote nothing


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), "60", True])
async def test_bad_ttl(store: GenericTaskStore, ttl: Any) -> None:
    with pytest.raises(TaskValidationError, match=r"ttl (must be|of .* below)"):
        await store.create("alice", ttl=ttl)


async def test_unlimited_ttl_only_when_allowed(store: GenericTaskStore, clock: ManualClock) -> None:
    with pytest.raises(TaskValidationError, match=r"ttl=None .* not allowed"):
        await store.create("alice", ttl=None)
    backend = InMemoryBackend(clock=clock)
    forever = GenericTaskStore(backend, StoreConfig(allow_unlimited_ttl=True), clock)
    record = await forever.create("alice", ttl=None)
    assert record.ttl_ms is None
    assert record.to_wire()["ttl"] is None
    assert "ttl" in record.to_wire()
    assert await stored_expiry(backend, "alice", record.task_id) is None
    clock.advance(10 * 86_400)
    assert (await forever.get("alice", record.task_id)).task_id == record.task_id


def test_config_ttl_rules() -> None:
    with pytest.raises(ValueError, match="allow_unlimited_ttl"):
        StoreConfig(default_ttl=None)
    with pytest.raises(ValueError, match="must lie within min_ttl"):
        StoreConfig(default_ttl=100, max_ttl=10)
    with pytest.raises(ValueError, match="100 years"):
        StoreConfig(max_ttl=1e12)  # tasks would expire past year 9999 and read back corrupted
    assert StoreConfig(default_ttl=None, allow_unlimited_ttl=True).default_ttl is None


async def test_expired_is_not_found_everywhere(store: GenericTaskStore, clock: ManualClock) -> None:
    record = await store.create("alice", ttl=60)
    clock.advance(59.999)
    assert (await store.get("alice", record.task_id)).task_id == record.task_id
    clock.advance(0.001)
    with pytest.raises(TaskNotFound) as raised:
        await store.get("alice", record.task_id)
    assert raised.value.message == f"task not found: {record.task_id!r}"
    with pytest.raises(TaskNotFound):
        await store.set_variables("alice", record.task_id, {"a": 1})
    with pytest.raises(TaskNotFound):
        await store.cancel("alice", record.task_id)
    assert (await store.list("alice"))[0] == []


async def test_expiry_kept_on_updates(
    store: GenericTaskStore, backend: InMemoryBackend, clock: ManualClock
) -> None:
    record = await store.create("alice", ttl=120)
    expiry = await stored_expiry(backend, "alice", record.task_id)
    clock.advance(60)
    await store.set_variables("alice", record.task_id, {"a": 1})
    updated = await store.complete("alice", record.task_id, "done")
    assert updated.updated_at_ms == record.created_at_ms + 60_000
    assert await stored_expiry(backend, "alice", record.task_id) == expiry
    clock.advance(60)
    with pytest.raises(TaskNotFound):
        await store.get_result("alice", record.task_id)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"min_ttl": 0}, r"min_ttl must be a number of seconds in \(0, "),
        ({"min_ttl": 100.0, "max_ttl": 10.0, "default_ttl": 10.0}, "min_ttl .* must not exceed"),
        ({"default_ttl": 0.5}, r"default_ttl \(0.5\) must lie within min_ttl \(1.0\)"),
        ({"dead_task_grace": 0.5}, r"dead_task_grace \(0.5\) must be at least 1 s"),
        ({"max_ttl": 10**400}, r"max_ttl \(an integer of 1329 bits\) must not exceed"),
        ({"cas_backoff": 2**1024}, "cas_backoff must be .* not an integer of 1025 bits"),
        ({"max_owner_bytes": 0}, "max_owner_bytes must be an int >= 1"),
        ({"max_result_bytes": 1.5}, "max_result_bytes must be an int >= 1"),
    ],
)
def test_config_limits_name_the_bad_value(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StoreConfig(**settings)
