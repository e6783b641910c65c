"""Building a redis-py client from a URL, and checking the server behind it before use.

A URL is the only thing a user configures through the kit (``--backend-option redis_url=...``)
or an application's settings, so everything a deployment needs, Redis Cluster included, must be
expressible in it: ``redis+cluster://`` (or ``rediss+cluster://``) builds a ``RedisCluster``
client from one seed node.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import AuthenticationError, AuthorizationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from reference_backends.causes import describe

RedisClient = Redis | RedisCluster

_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


FAILED_ATTEMPTS: ContextVar[list[BaseException] | None] = ContextVar(
    "pmcp_redis_failed_attempts", default=None
)
"""The failures of the current backend call's earlier attempts (set by the backend per call)."""


class NotingRetry(Retry):
    """redis-py's ``Retry``, noting each failed attempt in :data:`FAILED_ATTEMPTS`.

    A call whose every attempt was refused before anything was sent did not happen; one whose
    reply was lost and whose retry was then refused may have. Only with every attempt seen can
    the backend tell the first case ("not applied") from the second (outcome unknown).
    """

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[Any]],
        fail: Callable[..., Awaitable[Any]],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        noted = FAILED_ATTEMPTS.get()
        if noted is None:
            return await super().call_with_retry(do, fail, *args, **kwargs)

        async def noting(error: BaseException, *rest: Any) -> Any:
            noted.append(error)
            return await fail(error, *rest)

        return await super().call_with_retry(do, noting, *args, **kwargs)


def sees_every_attempt(client: RedisClient) -> bool:
    """Whether ``client`` notes its attempts (a plain client that :func:`client_from_url` built)."""
    if not isinstance(client, Redis):
        return False  # the cluster client retries in its own loops too
    return isinstance(client.connection_pool.connection_kwargs.get("retry"), NotingRetry)


def was_refused(exc: BaseException) -> bool:
    """Whether the server refused the connection (so this attempt sent nothing)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ConnectionRefusedError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


@dataclass(frozen=True)
class ConnectionSettings:
    """How a client built from a URL talks to the server; a client passed in keeps its own."""

    socket_timeout: float = 5.0
    socket_connect_timeout: float = 5.0
    retries: int = 3
    max_connections: int = 100
    retry_backoff_base: float = 0.05
    retry_backoff_cap: float = 1.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, not {self.retries}")
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, not {self.max_connections}")

    def retry(self) -> NotingRetry:
        backoff = ExponentialWithJitterBackoff(
            cap=self.retry_backoff_cap, base=self.retry_backoff_base
        )
        return NotingRetry(backoff, self.retries)


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***``, fit for an error message or a log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def seed_node_url(url: str) -> str:
    """The ``redis://`` (``rediss://``) URL of a ``+cluster`` URL's seed node; any other URL
    as it is."""
    parts = urlsplit(url)
    plain = _CLUSTER_SCHEMES.get(parts.scheme)
    return url if plain is None else urlunsplit(parts._replace(scheme=plain))


def client_from_url(url: str, settings: ConnectionSettings, *, cluster: bool) -> RedisClient:
    """A client for ``url``: a ``RedisCluster`` when ``cluster`` or a ``+cluster`` scheme."""
    if urlsplit(url).scheme in _CLUSTER_SCHEMES:
        url, cluster = seed_node_url(url), True
    if cluster:
        if urlsplit(url).scheme not in ("redis", "rediss"):
            raise ValueError(
                f"a Redis Cluster needs a redis:// or rediss:// seed node, not {redacted(url)!r}"
            )
        return RedisCluster.from_url(
            url,
            max_connections=settings.max_connections,
            socket_timeout=settings.socket_timeout,
            socket_connect_timeout=settings.socket_connect_timeout,
            retry=settings.retry(),
        )
    # A blocking pool makes a burst of concurrent calls queue for a connection instead of
    # failing with "Too many connections" (redis-py's default pool refuses the 101st concurrent
    # caller); the wait is bounded by the socket timeout.
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=settings.max_connections,
        timeout=settings.socket_timeout,
        socket_timeout=settings.socket_timeout,
        socket_connect_timeout=settings.socket_connect_timeout,
        retry=settings.retry(),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return Redis.from_pool(pool)


async def check_server(client: RedisClient, url: str) -> None:
    """Fail fast, naming the URL (without its password), when ``client`` cannot work there.

    A server that refuses connections or credentials would otherwise fail every call after its
    retries; a node of a Redis Cluster reached with a plain client answers ``MOVED`` to most
    keys, which looks like a broken backend rather than a wrong URL.
    """
    where = redacted(url)
    try:
        if isinstance(client, RedisCluster):
            await client.initialize()
            return  # it learnt the topology, so it is a cluster and the credentials work
        await client.ping()
        enabled = (await client.info("cluster")).get("cluster_enabled")
    except (AuthenticationError, AuthorizationError) as exc:
        if urlsplit(url).password is None:
            raise ValueError(
                f"Redis at {where} needs credentials (redis://user:password@host): {describe(exc)}"
            ) from exc
        raise ValueError(f"Redis at {where} refused the credentials: {describe(exc)}") from exc
    except Exception as exc:
        raise ValueError(f"cannot use Redis at {where}: {describe(exc)}") from exc
    if str(enabled) == "1":
        raise ValueError(
            f"Redis at {where} is a node of a Redis Cluster: use a redis+cluster:// URL "
            "(or cluster=true) so that each key goes to the node that serves its slot"
        )


async def eviction_policies(client: RedisClient) -> dict[str, str | None]:
    """The ``maxmemory-policy`` of each server that holds data (every primary of a cluster).

    ``CONFIG GET`` first; a server that refuses it (managed services rename or forbid CONFIG,
    an ACL may deny it) is asked ``INFO memory``, which also reports the policy. ``None`` for a
    server that answers neither: the policy is unknown there.
    """
    if isinstance(client, RedisCluster):
        return {
            node.name: await _eviction_policy(
                lambda *args, node=node: client.execute_command(*args, target_nodes=node)
            )
            for node in client.get_primaries()
        }
    where = client.connection_pool.connection_kwargs
    name = f"{where.get('host', 'localhost')}:{where.get('port', 6379)}"
    if "path" in where:
        name = f"unix:{where['path']}"
    return {name: await _eviction_policy(client.execute_command)}


async def _eviction_policy(command: Callable[..., Awaitable[Any]]) -> str | None:
    try:
        config = await command("CONFIG GET", "maxmemory-policy")
    except ResponseError:
        pass
    else:
        for value in _values(config):
            return value.decode() if isinstance(value, bytes) else str(value)
    try:
        info = await command("INFO", "memory")
    except ResponseError:
        return None
    policy = info.get("maxmemory_policy") if isinstance(info, dict) else None
    return None if policy is None else str(policy)


def _values(config: Any) -> list[Any]:
    """The values of a CONFIG GET reply: a dict, or (from a cluster node) a dict of them."""
    if not isinstance(config, dict):
        return []
    values = list(config.values())
    if len(values) == 1 and isinstance(values[0], dict):
        return list(values[0].values())
    return values
