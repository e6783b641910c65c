"""Section 2: RedisBackend against raw redis-py issuing the same commands, on a real server.

Both sides use the same kind of client (``redis.asyncio.Redis`` over a connection pool whose
connections count the requests they send), each its own, so that the round trips of one side
never reach the other's counter. The raw side sends what the backend sends: ``HMGET`` of the
record's three fields for ``get`` (the backend does not use ``HGETALL``, which would also fetch
the write token), and ``EVALSHA`` of the backend's own Lua scripts for put, CAS, delete and
the page, with the keys and scripts that ``docs/backends/redis.md`` documents, taken from the
backend's internal door (``RedisInternals``) so that they cannot drift. It pre-computes
nothing the backend computes per call except the write token, which is a counter instead of a
UUID (any unique string will do for a raw client).
"""

from __future__ import annotations

import math
import time
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import Connection

from benchmarks.report import OpRow
from benchmarks.timing import Side, compare
from benchmarks.workload import (
    OPERATIONS,
    PAGE_SIZE,
    PAYLOAD,
    Settings,
    backend_sides,
    expiry,
    item,
    prepared,
)
from reference_backends.redis import RedisBackend
from reference_backends.redis.backend import LIST_BATCH, LIST_BUDGET, RedisInternals

TARGET = 1.15
ITERATIONS = 800
CONCURRENT_ITERATIONS = 2_500
WORKERS = (1, 50)
_GRACE = 60.0  # RedisBackend's default expiry_grace


class CountingConnection(Connection):
    """A connection that counts the requests it sends (one per command or pipeline)."""

    sent = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sent += 1
        await super().send_packed_command(command, check_health)


def counting_client(url: str) -> tuple[Redis, type[CountingConnection]]:
    """A client whose connections count into a class of their own."""
    counter = type("Counted", (CountingConnection,), {"sent": 0})
    pool = ConnectionPool.from_url(url, connection_class=counter)
    return Redis(connection_pool=pool), counter


class RawRedis:
    """The backend's commands, sent directly with redis-py."""

    def __init__(self, client: Redis, namespace: str, shas: dict[str, str]) -> None:
        self.client = client
        self.namespace = namespace
        self.shas = shas
        self.versions: dict[int, int] = {}
        self.tokens = 0

    def keys(self, partition: str, item_: str) -> list[str]:
        return RedisInternals.record_keys(self.namespace, partition, item_)

    async def _write(self, partition: str, item_: str, expected: str) -> list[bytes]:
        expires_at = expiry()
        self.tokens += 1
        keys = self.keys(partition, item_)
        reply: list[bytes] = await self.client.evalsha(
            self.shas["write"],
            len(keys),
            *keys,
            repr(time.time()),
            item_,
            PAYLOAD,
            repr(expires_at),
            str(math.ceil((expires_at + _GRACE) * 1000)),
            expected,
            str(self.tokens),
        )
        assert reply[0] == b"ok", reply
        return reply

    async def write(self, partition: str, item_: str) -> None:
        await self._write(partition, item_, "")

    async def get(self, worker: int, i: int) -> object:
        return await self.client.hmget(
            self.keys("bench", item("get", worker))[0], ["data", "version", "expires_at"]
        )

    async def put(self, worker: int, i: int) -> object:
        return await self._write("bench", item("put", worker), "")

    async def cas_setup(self, workers: int, per_worker: int) -> None:
        for worker in range(workers):
            reply = await self._write("bench", item("cas", worker), "")
            self.versions[worker] = int(reply[1])

    async def cas(self, worker: int, i: int) -> object:
        reply = await self._write("bench", item("cas", worker), str(self.versions[worker]))
        self.versions[worker] = int(reply[1])
        return reply

    async def delete(self, worker: int, i: int) -> object:
        item_ = item("del", worker, i)
        keys = self.keys("bench", item_)
        reply: list[bytes] = await self.client.evalsha(
            self.shas["delete"], len(keys), *keys, repr(time.time()), item_
        )
        assert reply[:2] == [b"ok", b"1"], "the record to delete was not there"
        return reply

    async def page(self, worker: int, i: int) -> object:
        """Two steps of list.lua, as the backend makes them: the first hands back the items
        whose record keys the second must declare."""
        base = RedisInternals.partition_base(self.namespace, "page")
        indexes = RedisInternals.record_keys(self.namespace, "page", "")[1:]  # not the record
        now, handback = repr(time.time()), PAGE_SIZE + 8
        bounds: list[bytes | str | int] = [
            *(now, "-", "+"),
            *(PAGE_SIZE, LIST_BATCH, LIST_BUDGET, handback),
        ]
        first: list[Any] = await self.client.evalsha(
            self.shas["list"], len(indexes), *indexes, *bounds
        )
        assert first[0] == b"undeclared", f"the first step read records it was not given: {first}"
        items = first[4]
        records = [base.encode() + b"r:" + item_ for item_ in items]
        bounds[1] = first[1]
        reply: list[Any] = await self.client.evalsha(
            self.shas["list"], len(indexes) + len(items), *indexes, *records, *bounds, *items
        )
        assert len(reply[2]) == 4 * PAGE_SIZE, "short page"
        return reply

    def sides(self, counter: type[CountingConnection]) -> dict[str, Side]:
        def sent() -> int:
            return counter.sent

        return {
            "get": prepared(self.get, self.write, "get", sent),
            "put": Side(self.put, None, sent),
            "cas": Side(self.cas, self.cas_setup, sent),
            "delete": prepared(self.delete, self.write, "del", sent),
            "list page": prepared(self.page, self.write, "page", sent),
        }


async def run(settings: Settings, url: str) -> list[OpRow]:
    backend_client, backend_counter = counting_client(url)
    raw_client, raw_counter = counting_client(url)
    backend = RedisBackend(backend_client, namespace="bench-backend")
    scripts = RedisInternals.shipped_scripts()
    shas = {
        name: await raw_client.script_load(scripts[name]) for name in ("write", "delete", "list")
    }
    raw = RawRedis(raw_client, "bench-raw", shas)
    subject = backend_sides(backend, lambda: backend_counter.sent)
    baseline = raw.sides(raw_counter)
    rows = []
    try:
        for workers in WORKERS:
            area = "redis" if workers == 1 else f"redis x{workers}"
            for operation in OPERATIONS:
                full = ITERATIONS if workers == 1 else CONCURRENT_ITERATIONS
                full //= 4 if operation == "list page" else 1
                result = await compare(
                    subject[operation],
                    baseline[operation],
                    iterations=settings.iterations(full),
                    rounds=settings.rounds,
                    workers=workers,
                )
                rows.append(OpRow.measured(area, operation, result, TARGET))
    finally:
        await backend.aclose()
        await backend_client.aclose()
        await raw_client.aclose()
    return rows
