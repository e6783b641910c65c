"""A full ``noeviction`` server refuses creates like every other write, and nothing is written.

write.lua used to begin a create with a ``DEL`` of the absent or dead record. Redis checks
``maxmemory`` for a script only until it has written, and ``DEL`` passes that check (it frees
memory), so creates went on being acknowledged on a full server (2 MB limit, 35.9 MB reached)
while updates of the tasks they made were refused. Run on the engine ``$PMCP_REDIS_ENGINE``
selects (Redis 7 here, Redis 6.2 and Valkey in their tox environments); the memory reached
against the limit is in docs/reports/store-faults-2026-12.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from servers import redis_server

from conformance.harness import ManualClock
from pmcp_tasks import GenericTaskStore, StorageFailure, StoreConfig
from pmcp_tasks.cap import slot_prefix
from reference_backends.redis import RedisBackend

pytestmark = pytest.mark.anyio

LIMIT = 2 * 1024 * 1024
OVERSHOOT = 1.25
"""How far above maxmemory a server may go: Redis admits the command that crosses the limit,
and its own bookkeeping grows a little after; 17.9x was the bug."""
PAYLOAD = "x" * 2000


@pytest.fixture
def full_url(tmp_path: Path) -> Iterator[str]:
    server = redis_server(tmp_path, "--maxmemory", str(LIMIT), "--maxmemory-policy", "noeviction")
    with server:
        yield f"redis://{server.host}:{server.port}/0"


async def _used(url: str) -> int:
    async with Redis.from_url(url) as raw:
        used: int = (await raw.info("memory"))["used_memory"]
        return used


@pytest.mark.parametrize("cap", [None, 10_000], ids=["uncapped", "capped"])
async def test_a_full_noeviction_server_refuses_creates_and_writes_nothing(
    full_url: str, cap: int | None
) -> None:
    namespace = f"oom-{uuid.uuid4().hex[:8]}"
    clock = ManualClock()
    backend = RedisBackend.from_url(full_url, namespace=namespace, clock=clock)
    config = StoreConfig(max_tasks_per_owner=cap)
    store = GenericTaskStore(backend, config, clock)
    try:
        created: list[str] = []
        refusal: StorageFailure | None = None
        for _ in range(5 * LIMIT // len(PAYLOAD)):  # 5x what fits: it must refuse long before
            try:
                task = await store.create("alice", variables={"p": PAYLOAD})
            except StorageFailure as exc:
                refusal = exc
                break
            created.append(task.task_id)
        assert refusal is not None, f"{len(created)} creates of {len(PAYLOAD)} bytes acknowledged"
        assert "OOM" in refusal.message, refusal.message
        assert refusal.code == -32603
        used = await _used(full_url)
        assert used <= OVERSHOOT * LIMIT, f"{used} bytes used under maxmemory {LIMIT}"

        # Nothing half-written: another refused create leaves no live record, no task and no
        # slot. Live records, not raw keys: when the slot's small write gets in and the task's
        # is refused, the slot is given back as a record that ended now, which stays a key
        # until the server's clock reaches the test clock's "now".
        slots = await backend.list_by_prefix(slot_prefix("alice"))
        with pytest.raises(StorageFailure, match="OOM"):
            await store.create("alice", variables={"p": PAYLOAD})
        assert await backend.list_by_prefix(slot_prefix("alice")) == slots
        # Every acknowledged task is there and readable.
        listed: list[str] = []
        cursor: str | None = None
        while True:
            page, cursor = await store.list("alice", cursor=cursor, limit=1000)
            listed += [t.task_id for t in page]
            if cursor is None:
                break
        assert listed == sorted(created)
        slots = await backend.list_by_prefix(slot_prefix("alice")) if cap else []
        assert len(slots) == (len(created) if cap else 0)  # no slot without its task
        assert (await store.get("alice", created[-1])).variables == {"p": PAYLOAD}
    finally:
        await backend.aclose()
