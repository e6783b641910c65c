"""Entry point ``redis`` of the conformance kit, and the kit's hooks for a RedisBackend.

Without options the kit runs on fakeredis (an embedded Redis with Lua, from the testing extra),
so ``pytest --backend=redis`` needs no server. ``--backend-option redis_url=redis://...``
switches to a real server. Options arrive as strings from the command line.
"""

from __future__ import annotations

from dataclasses import replace
from importlib import metadata
from typing import TYPE_CHECKING, Any

from pmcp_tasks.backend import Clock
from pmcp_tasks.keys import (
    check_data,
    check_expected_version,
    check_expires_at,
    check_key,
    split_key,
)
from reference_backends.redis.backend import SCAN_COUNT, RedisBackend, RedisInternals

if TYPE_CHECKING:
    from conformance.harness import KitTarget

# damage kind -> the record hash's fields (None: a string where the hash should be)
_DAMAGED_FIELDS: dict[str, dict[str, bytes] | None] = {
    "bad-version": {"data": b"x", "version": b"abc", "expires_at": b""},
    "fractional-version": {"data": b"x", "version": b"1.5", "expires_at": b""},
    "huge-version": {"data": b"x", "version": b"9223372036854775808", "expires_at": b""},
    "zero-version": {"data": b"x", "version": b"0", "expires_at": b""},
    "bad-expiry": {"data": b"x", "version": b"1", "expires_at": b"inf"},
    "missing-data": {"version": b"1", "expires_at": b""},
    "wrong-type": None,
}

_FAKE_SERVER: Any = None
_CHECKED_URLS: set[tuple[str, bool]] = set()


def _fake_client() -> Any:
    """A fakeredis client on this process's one FakeServer, so same namespace = same data."""
    global _FAKE_SERVER
    try:
        import fakeredis
    except ImportError as exc:
        raise ImportError(
            "the redis kit runs on fakeredis unless given redis_url: "
            "pip install 'pmcp-tasks[testing-redis]' or pass --backend-option redis_url=..."
        ) from exc
    if _FAKE_SERVER is None:
        _FAKE_SERVER = fakeredis.FakeServer(version=(7,))
    return fakeredis.FakeAsyncRedis(server=_FAKE_SERVER)


class RedisKitHooks:
    """The conformance kit's hooks for a :class:`RedisBackend` (conformance/harness.py).

    They write past the contract (any version, every key of a namespace, records the backend
    cannot decode), which is why they live here beside the kit factory and not on the backend.
    """

    def __init__(self, backend: RedisBackend) -> None:
        self.backend = backend
        self._internals = RedisInternals(backend)

    async def drop_namespace(self) -> None:
        """Remove every key of this namespace, so that a kit run leaves the server as it was."""
        internals = self._internals
        pattern = f"{internals.namespace}:{{*"
        with internals.calling("drop", pattern):
            client = await internals.ready()
            keys = [key async for key in client.scan_iter(match=pattern, count=SCAN_COUNT)]
            for start in range(0, len(keys), SCAN_COUNT):
                await client.unlink(*keys[start : start + SCAN_COUNT])

    async def plant_damaged(self, key: str, kind: str) -> bool:
        """Store at ``key`` what this backend cannot decode (KV-DAMAGE-1), with its index entry.

        ``bad-index-member`` is a member of the partition index just after ``key``'s item that
        is not UTF-8, so it names no key at all; every other kind is a record hash at ``key``.
        """
        internals = self._internals
        partition, item = split_key(check_key(key))
        record, index, expiry, parked = internals.keys(partition, item)
        with internals.calling("plant", key):
            client = await internals.ready()
            if kind == "bad-index-member":
                await client.zadd(index, {item.encode() + b"\xff": 0})
                return True
            if kind not in _DAMAGED_FIELDS:
                return False
            await client.delete(record)
            fields = _DAMAGED_FIELDS[kind]
            if fields is None:
                await client.set(record, b"not a hash")
            else:
                await client.hset(record, mapping=fields)  # type: ignore[arg-type]
            await client.zadd(index, {item: 0})
            await client.zrem(expiry, item)
            await client.zrem(parked, item)
        return True

    async def seed(self, key: str, data: bytes, version: int, expires_at: float | None) -> None:
        """Store ``version`` verbatim, so the kit can test versions near 2**53 and 2**63-1."""
        internals = self._internals
        partition, item = split_key(check_key(key))
        data, expires_at = check_data(data), check_expires_at(expires_at)
        if check_expected_version(version) == 0:
            raise ValueError("a seeded version must be >= 1")
        await internals.script(
            "seed",
            key,
            internals.keys(partition, item),
            [
                item,
                data,
                str(version),
                "" if expires_at is None else repr(expires_at),
                internals.pexpireat(expires_at),
            ],
        )


async def kit_factory(
    *,
    namespace: str,
    clock: Clock,
    redis_url: str | None = None,
    cluster: str | bool = False,
    max_record_bytes: str | int | None = None,
    expiry_grace: str | float | None = None,
    allow_eviction: str | bool = False,
    **options: Any,
) -> KitTarget:
    """Open a :class:`RedisBackend` for one kit test, with its :class:`RedisKitHooks`.

    ``cluster`` (``true``/``false``) makes ``redis_url`` a Redis Cluster seed node.
    ``max_record_bytes``, ``expiry_grace`` (seconds, or ``none`` for no server-side expiry) and
    ``allow_eviction`` (``true`` to open a server whose ``maxmemory-policy`` may evict) are
    passed on; any other option is refused so that a typo does not go unnoticed. The first
    open of each server checks it (:meth:`RedisBackend.check_server`), so that an unreachable
    server, wrong credentials or a cluster node without ``cluster`` is one clear error when the
    kit starts, not a timeout in every test. The kit is imported here, not at the top, so that
    ``import reference_backends.redis`` loads no kit module.
    """
    from conformance.harness import KitTarget

    if options:
        raise ValueError(f"unknown redis backend options: {', '.join(sorted(options))}")
    extra = _backend_options(max_record_bytes, expiry_grace)
    on_cluster = _flag("cluster", cluster)
    if redis_url is not None:
        backend = RedisBackend.from_url(
            redis_url,
            cluster=on_cluster,
            namespace=namespace,
            clock=clock,
            allow_eviction=_flag("allow_eviction", allow_eviction),
            **extra,
        )
        await _check_once(backend, redis_url, on_cluster)
        return KitTarget(backend, RedisKitHooks(backend), engine=f"Redis at {redis_url}")
    if on_cluster:
        raise ValueError("cluster=true needs a redis_url of a Redis Cluster node")
    # fakeredis never evicts (and answers neither CONFIG GET nor INFO): nothing to check.
    fake = RedisBackend(
        _fake_client(),
        namespace=namespace,
        clock=clock,
        allow_eviction=True,
        close_client=True,
        **extra,
    )
    # fakeredis keeps its data in this process: another process would open an empty server.
    fake.capabilities = replace(fake.capabilities, shared_across_processes=False)
    engine = f"fakeredis {metadata.version('fakeredis')}, in process"
    return KitTarget(fake, RedisKitHooks(fake), engine=engine)


def _backend_options(
    max_record_bytes: str | int | None, expiry_grace: str | float | None
) -> dict[str, Any]:
    """The backend's keyword arguments the kit options give, parsed from their strings."""
    extra: dict[str, Any] = {}
    if max_record_bytes is not None:
        extra["max_record_bytes"] = int(max_record_bytes)
    if expiry_grace is not None:
        grace = str(expiry_grace)
        extra["expiry_grace"] = None if grace.lower() == "none" else float(grace)
    return extra


async def _check_once(backend: RedisBackend, redis_url: str, on_cluster: bool) -> None:
    """Check the server on its first open in this process; close the backend if it fails."""
    if (redis_url, on_cluster) in _CHECKED_URLS:
        return
    try:
        await backend.check_server(redis_url)
    except BaseException:
        await backend.aclose()
        raise
    _CHECKED_URLS.add((redis_url, on_cluster))


def _flag(name: str, value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ValueError(f"redis backend option {name} must be true or false, not {value!r}")
