"""Redis reference backend: one hash per record, Lua scripts for every mutation.

Layout (``docs/backends/redis.md``), for namespace ``ns`` and key ``partition:item``::

    ns:{partition}:r:item   hash   data, version (decimal), expires_at ('' or float repr), token
    ns:{partition}:i        zset   every item of the partition, score 0 (ZRANGEBYLEX listing)
    ns:{partition}:x        zset   items that have an expiry, scored by expires_at
    ns:{partition}:d        zset   dead items parked out of the index, scored by expires_at

The partition sits in a ``{hash tag}`` so that every script touches one cluster slot. Versions
never become Lua numbers (doubles): scripts compare them as strings and increment them with
HINCRBY, so they are exact up to 2**63-1. Expiry follows the injected clock, whose reading is
an argument of every script; Redis's own PEXPIREAT only reclaims memory, ``expiry_grace``
seconds after a record died, so that it never removes a record the injected clock still
considers live (as long as that clock is no more than ``expiry_grace`` behind the server's).
A listing runs in steps of bounded work (at most ``LIST_BUDGET`` index entries each), so that
no number of dead records in a partition blocks the server, and parks the dead entries it meets,
so that each is walked once, not by every later page (an injected clock that goes back brings
them back); records it cannot decode are skipped with a warning, and writes overwrite them.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

from pmcp_tasks.backend import MAX_VERSION, BackendCapabilities, Clock, VersionedRecord, is_live
from pmcp_tasks.backend_base import BackendBase, logger, skip_damaged
from pmcp_tasks.errors import (
    BackendError,
    BackendUnavailable,
    CapacityExceeded,
    RecordNotFound,
    StorageError,
    VersionConflict,
)
from pmcp_tasks.keys import (
    split_key,
)
from reference_backends.causes import describe
from reference_backends.redis.connect import (
    FAILED_ATTEMPTS,
    ConnectionSettings,
    RedisClient,
    check_server,
    client_from_url,
    eviction_policies,
    redacted,
    sees_every_attempt,
    was_refused,
)

# No '{' or '}' (the first braces of a key must be the partition's hash tag) and no glob
# characters (SCAN MATCH uses the namespace verbatim).
_NAMESPACE_RE = re.compile(r"[A-Za-z0-9_.~%:/-]+")
_VERSION_RE = re.compile(rb"[1-9][0-9]*")
_LAST_PEXPIREAT_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z, the latest every server takes
LIST_BATCH = 128
"""Index entries one ZRANGEBYLEX (and one ZMSCORE) of list.lua fetches."""
LIST_BUDGET = 256
"""Index entries one step of list.lua examines at most (~0.5 ms of server)."""
SCAN_COUNT = 500
"""The COUNT hint of every SCAN this backend (and its kit hooks) sends."""
_CLEANUP_BATCH = 128


def _load_script(name: str) -> str:
    scripts = resources.files(__package__).joinpath("scripts")
    return scripts.joinpath("_common.lua").read_text("utf-8") + scripts.joinpath(
        f"{name}.lua"
    ).read_text("utf-8")


_SCRIPTS = {name: _load_script(name) for name in ("write", "delete", "list", "cleanup", "seed")}


@contextmanager
def _wrapped(operation: str, key: str, *, knows_attempts: bool = False) -> Iterator[None]:
    """Turn whatever a client call raises into a BackendError that keeps it as ``__cause__``.

    Not only ``RedisError``: client internals can fail with other exceptions (an
    ``AttributeError`` from a connection torn down under a racing task, an ``OSError``), and
    only ``StorageError`` may leave a backend (KV-ERR-1). Only client calls run in here. When
    the client notes its attempts (``knows_attempts``) and the server refused every one of
    them, nothing was sent: that is :class:`BackendUnavailable`, whose call did not happen.
    """
    failed: list[BaseException] = []
    token = FAILED_ATTEMPTS.set(failed)
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        if knows_attempts and all(was_refused(attempt) for attempt in [*failed, exc]):
            raise BackendUnavailable(
                f"redis {operation} of {key!r} was not applied (the server refused the "
                f"connection, so nothing was sent): {describe(exc)}"
            ) from exc
        raise BackendError(f"redis {operation} of {key!r} failed: {describe(exc)}") from exc
    finally:
        FAILED_ATTEMPTS.reset(token)


class RedisBackend(BackendBase):
    """A :class:`~pmcp_tasks.StorageBackend` on Redis, through redis-py's asyncio client.

    On :class:`~pmcp_tasks.BackendBase`, which checks the arguments before the hooks below run.

    Two ways to make one, so that no setting is silently ignored:

    * :meth:`from_url` builds the client and owns it: socket timeouts, pool size and bounded,
      jittered retries come from its keyword arguments, and ``aclose`` closes the client.
      ``redis+cluster://`` (or ``cluster=True``) makes it a Redis Cluster client.
    * ``RedisBackend(client)`` (or :meth:`from_client`) takes an existing ``redis.asyncio.Redis``
      or ``RedisCluster`` created with ``decode_responses=False``, configured by its owner, who
      closes it unless ``close_client=True``.

    ``namespace`` prefixes every key. ``expiry_grace`` is how long after a record's
    ``expires_at`` Redis may reclaim it by itself; ``None`` leaves all reclaiming to
    ``cleanup_expired``. The first command checks that the server does not evict keys under
    memory pressure (``maxmemory-policy noeviction``), since eviction silently loses
    acknowledged records; ``allow_eviction=True`` skips that check.
    """

    def __init__(
        self,
        client: RedisClient,
        *,
        namespace: str = "pmcp",
        clock: Clock = time.time,
        max_record_bytes: int | None = None,
        expiry_grace: float | None = 60.0,
        allow_eviction: bool = False,
        close_client: bool = False,
    ) -> None:
        if not isinstance(client, (Redis, RedisCluster)):
            hint = " (use RedisBackend.from_url for a URL)" if isinstance(client, str) else ""
            raise ValueError(
                "client must be a redis.asyncio Redis or RedisCluster, "
                f"not {type(client).__name__}{hint}"
            )
        if client.get_connection_kwargs().get("decode_responses"):
            raise ValueError("the redis client must use decode_responses=False (data is bytes)")
        if not isinstance(namespace, str) or _NAMESPACE_RE.fullmatch(namespace) is None:
            raise ValueError(f"invalid namespace {namespace!r}: use only A-Z a-z 0-9 _ . ~ % : / -")
        if max_record_bytes is not None and max_record_bytes < 1:
            raise ValueError(f"max_record_bytes must be >= 1 or None, not {max_record_bytes}")
        if expiry_grace is not None and not (math.isfinite(expiry_grace) and expiry_grace >= 0):
            raise ValueError(
                f"expiry_grace must be a finite number >= 0 or None, not {expiry_grace}"
            )
        self._client = client
        self._knows_attempts = sees_every_attempt(client)
        self._close_client = close_client
        self._namespace = namespace
        self._clock = clock
        self._expiry_grace = expiry_grace
        self._closed = False
        self._eviction_checked = allow_eviction
        self._uninitialised_cluster = client if isinstance(client, RedisCluster) else None
        self._scripts = {name: client.register_script(text) for name, text in _SCRIPTS.items()}
        self._list_batch, self._list_budget = LIST_BATCH, LIST_BUDGET
        self.capabilities = BackendCapabilities(
            max_record_bytes=max_record_bytes, shared_across_processes=True, injectable_clock=True
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        cluster: bool = False,
        namespace: str = "pmcp",
        clock: Clock = time.time,
        max_record_bytes: int | None = None,
        expiry_grace: float | None = 60.0,
        allow_eviction: bool = False,
        socket_timeout: float = 5.0,
        socket_connect_timeout: float = 5.0,
        retries: int = 3,
        max_connections: int = 100,
        retry_backoff_base: float = 0.05,
        retry_backoff_cap: float = 1.0,
    ) -> RedisBackend:
        """A backend on a client it builds from ``url`` and closes in ``aclose``.

        ``url`` is ``redis://``, ``rediss://`` or ``unix://``; ``redis+cluster://`` /
        ``rediss+cluster://`` (or ``cluster=True``) name one seed node of a Redis Cluster.
        """
        settings = ConnectionSettings(
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            retries=retries,
            max_connections=max_connections,
            retry_backoff_base=retry_backoff_base,
            retry_backoff_cap=retry_backoff_cap,
        )
        return cls(
            client_from_url(url, settings, cluster=cluster),
            namespace=namespace,
            clock=clock,
            max_record_bytes=max_record_bytes,
            expiry_grace=expiry_grace,
            allow_eviction=allow_eviction,
            close_client=True,
        )

    @classmethod
    def from_client(cls, client: RedisClient, **options: Any) -> RedisBackend:
        """``RedisBackend(client, **options)``, named to pair with :meth:`from_url`."""
        return cls(client, **options)

    async def check_server(self, url: str) -> None:
        """Raise ``ValueError`` naming ``url`` if the server is unreachable or refuses us.

        Also refuses a plain client on a node of a Redis Cluster. Costs a round trip or two, so
        it is for opening (the kit's factory runs it), not for every call. Then the eviction
        check of the first command runs, so a server that evicts is refused at open too.
        """
        await check_server(await self._topology(), url)
        with self._calling("open", redacted(url)):
            await self._ready()

    # -- layout ------------------------------------------------------------------------------

    def _base(self, partition: str) -> str:
        return _partition_base(self._namespace, partition)

    def _keys(self, partition: str, item: str) -> list[str]:
        return _record_keys(self._namespace, partition, item)

    # -- helpers -----------------------------------------------------------------------------

    def _pexpireat(self, expires_at: float | None) -> str:
        """When Redis may reclaim the record: ``expiry_grace`` after it died, in epoch ms."""
        if expires_at is None or self._expiry_grace is None:
            return ""
        when = (expires_at + self._expiry_grace) * 1000  # a float: may be +-inf, never raises
        if when > _LAST_PEXPIREAT_MS:
            return ""  # far future: cleanup_expired reclaims it
        return str(math.ceil(when)) if when >= 1 else "1"

    def _now(self) -> str:
        """The injected clock's reading, as the exact repr that scripts parse with strtod."""
        return repr(float(self._clock()))

    def _calling(self, operation: str, key: str) -> AbstractContextManager[None]:
        return _wrapped(operation, key, knows_attempts=self._knows_attempts)

    async def _ready(self) -> RedisClient:
        """The client, once the topology is known and the eviction policy checked."""
        client = await self._topology()
        if not self._eviction_checked:
            await self._check_eviction(client)
        return client

    async def _check_eviction(self, client: RedisClient) -> None:
        """Refuse a server that may evict keys; warn when it does not say whether it does.

        Under any ``maxmemory-policy`` but ``noeviction`` a full server drops keys to make
        room: acknowledged records, index entries and the store's cap slots vanish without an
        error. Only ``noeviction`` makes a full server refuse writes instead. A server that
        answers neither CONFIG GET nor INFO cannot be checked; refusing it would lock out
        deployments that forbid both, so it is opened with a warning instead.
        """
        policies = await eviction_policies(client)
        evicting = {
            where: policy
            for where, policy in policies.items()
            if policy is not None and policy != "noeviction"
        }
        if evicting:
            shown = ", ".join(
                f"{where} has {policy!r}" for where, policy in sorted(evicting.items())
            )
            raise BackendError(
                f"Redis evicts keys under memory pressure ({shown} as maxmemory-policy): a full "
                "server would silently drop acknowledged tasks, their indexes and cap slots. "
                "Set maxmemory-policy noeviction (a full server then refuses writes with an "
                "error), or pass allow_eviction=True to accept that loss"
            )
        unknown = sorted(where for where, policy in policies.items() if policy is None)
        if unknown:
            logger.warning(
                "cannot tell whether Redis at %s evicts keys (it answers neither CONFIG GET "
                "maxmemory-policy nor INFO memory); opened anyway: unless its policy is "
                "noeviction, a full server silently drops acknowledged records",
                ", ".join(unknown),
            )
        self._eviction_checked = True

    async def _topology(self) -> RedisClient:
        """The client, after a cluster client has learnt the topology.

        redis-py 8.1's asyncio ``RedisCluster`` can hand a half-connected connection to one of
        several tasks that race its lazy first initialisation (the kit's KV-CONC-1 test hit
        it); initialising before the first command, which concurrent callers may all await,
        avoids that race.
        """
        if self._uninitialised_cluster is not None:
            await self._uninitialised_cluster.initialize()
            self._uninitialised_cluster = None
        return self._client

    async def _script(
        self, name: str, key: str, keys: Sequence[str | bytes], args: Sequence[Any]
    ) -> Any:
        """EVALSHA, loading the script when the server does not know it (restart, failover).

        This is what redis-py's ``AsyncScript.__call__`` does, minus its per-call
        ``isinstance(client, Pipeline)`` check against a Protocol-derived class, which cost
        1.5 µs of every write (docs/performance.md).
        """
        script = self._scripts[name]
        with self._calling(name, key):
            client = await self._ready()
            try:
                return await client.evalsha(script.sha, len(keys), *keys, *args)
            except NoScriptError:
                script.sha = await client.script_load(script.script)
                return await client.evalsha(script.sha, len(keys), *keys, *args)

    # -- contract hooks (BackendBase checked the arguments) ---------------------------------

    async def _get(self, key: str) -> VersionedRecord | None:
        partition, item = split_key(key)
        record_key = self._keys(partition, item)[0]
        now = self._clock()
        with self._calling("get", key):
            client = await self._ready()
            data, version, expires_at = await client.hmget(
                record_key, ["data", "version", "expires_at"]
            )
        if data is None and version is None and expires_at is None:
            return None
        record = _record(key, record_key, data, version, expires_at)
        return record if is_live(record.expires_at, now) else None

    async def _put(self, key: str, data: bytes, expires_at: float | None) -> int:
        return await self._write(key, data, None, expires_at)

    async def _put_if_version(
        self, key: str, data: bytes, expected_version: int, expires_at: float | None
    ) -> int:
        return await self._write(key, data, expected_version, expires_at)

    async def _write(
        self, key: str, data: bytes, expected: int | None, expires_at: float | None
    ) -> int:
        """One run of write.lua: ``expected`` None is a put, else a checked CAS version."""
        partition, item = split_key(key)
        keys = self._keys(partition, item)
        reply = await self._script(
            "write",
            key,
            keys,
            [
                self._now(),
                item,
                data,
                "" if expires_at is None else repr(expires_at),
                self._pexpireat(expires_at),
                "" if expected is None else str(expected),
                secrets.token_hex(16),
            ],
        )
        status = reply[0]
        if status == b"ok":
            _report_repairs(key, keys[0], reply[2], reply[3])
            return int(reply[1])
        if status == b"notfound":
            _report_repairs(key, keys[0], reply[1], [])
            raise RecordNotFound(key)
        if status == b"conflict":
            raise VersionConflict(key, 0 if expected is None else expected, int(reply[1]))
        raise CapacityExceeded(f"version of key {key!r} would exceed {MAX_VERSION}")

    async def _delete(self, key: str) -> bool:
        partition, item = split_key(key)
        keys = self._keys(partition, item)
        reply = await self._script("delete", key, keys, [self._now(), item])
        _report_repairs(key, keys[0], reply[2], reply[3])
        return bool(reply[1] == b"1")

    async def _list(
        self, partition: str, item_prefix: str, after_item: str | None, limit: int | None
    ) -> list[tuple[str, VersionedRecord]]:
        """Steps of list.lua from the lower bound until the page is full or the range ends.

        Each step examines at most ``LIST_BUDGET`` index entries, so no step blocks the
        server for long whatever the partition holds; the next step resumes where it stopped.
        A step hands back the items whose record hashes it must be given, which the next one
        declares, so a page of live records costs two steps (plus one per budget's worth of
        entries walked).
        """
        head = partition + ":"
        prefix = head + item_prefix
        lo, hi = _lex_range(item_prefix, after_item)
        base = self._base(partition)
        now = self._now()
        declared: dict[bytes, None] = {}  # items whose record hashes the next step declares
        out: list[tuple[str, VersionedRecord]] = []
        while True:
            wanted = 0 if limit is None else limit - len(out)
            # Items to hand back for declaring: no more than a step examines, nor than the page
            # still needs (plus a few, in case some turn out dead).
            budget = self._list_budget
            handback = budget if limit is None else min(budget, wanted + 8)
            reply = await self._script(
                "list",
                prefix,
                [
                    base + "i",
                    base + "x",
                    base + "d",
                    *(base.encode() + b"r:" + item for item in declared),
                ],
                [now, lo, hi, wanted, self._list_batch, budget, handback, *declared],
            )
            if reply[0] == b"badindex":
                skip_damaged(prefix, _bad_index(base + "i", reply[1]))
                return out
            status, lo, found, damaged, undeclared, replaced = reply
            _report_repairs(prefix, base + "r:", b"", replaced)
            out.extend(_found_records(head, base, found))
            for index in range(0, len(damaged), 2):
                skip_damaged(*_damage(head, base, damaged[index], damaged[index + 1]))
            if status == b"done":
                return out
            # Only the hashes of items from the resume point on can still be read.
            bound, inclusive = lo[1:], lo.startswith(b"[")
            declared = {
                item: None
                for item in (*declared, *undeclared)
                if item > bound or (inclusive and item == bound)
            }

    async def _cleanup(self) -> int:
        now = self._now()
        pattern = f"{self._namespace}:{{*}}:x"
        removed = 0
        with self._calling("cleanup_expired", pattern):
            client = await self._ready()
            expiry_keys = {
                key async for key in client.scan_iter(match=pattern, count=SCAN_COUNT, _type="zset")
            }
        for expiry_key in sorted(expiry_keys):
            base = expiry_key[: -len(b"x")]
            while True:
                with self._calling("cleanup_expired", expiry_key.decode()):
                    dead = await client.zrangebyscore(
                        expiry_key, "-inf", now, start=0, num=_CLEANUP_BATCH
                    )
                if not dead:
                    break
                count = await self._script(
                    "cleanup",
                    base.decode(),
                    [
                        base + b"i",
                        expiry_key,
                        base + b"d",
                        *(base + b"r:" + item for item in dead),
                    ],
                    [now, *dead],
                )
                removed += int(count)
                if len(dead) < _CLEANUP_BATCH:
                    break
        return removed

    async def aclose(self) -> None:
        if self._close_client and not self._closed:
            self._closed = True
            with self._calling("close", self._namespace):
                await self._client.aclose()


class RedisInternals:
    """The sanctioned door to a :class:`RedisBackend`'s insides; not the public API.

    The conformance kit's hooks (:mod:`.kit`), this backend's tests and the benchmarks write
    past the contract (any version, records the backend cannot decode, a whole namespace
    dropped) or tune what users never should (the listing's step budget, the Lua scripts).
    They do it through this one typed class, so that refactoring the backend breaks it loudly
    rather than its users silently. Nothing here is stable across releases.
    """

    def __init__(self, backend: RedisBackend) -> None:
        self._backend = backend

    @property
    def namespace(self) -> str:
        """The prefix of every key of this backend."""
        return self._backend._namespace

    def keys(self, partition: str, item: str) -> list[str]:
        """Record hash, partition index, expiry index and parked entries of one key."""
        return self._backend._keys(partition, item)

    @staticmethod
    def record_keys(namespace: str, partition: str, item: str) -> list[str]:
        """:meth:`keys` of a backend on ``namespace``, for a client that has no backend."""
        return _record_keys(namespace, partition, item)

    @staticmethod
    def partition_base(namespace: str, partition: str) -> str:
        """The prefix of a partition's keys: ``r:<item>`` the record hashes, ``i``, ``x`` and
        ``d`` its indexes. Its ``{hash tag}`` keeps them in one cluster slot."""
        return _partition_base(namespace, partition)

    def calling(self, operation: str, key: str) -> AbstractContextManager[None]:
        """Client calls made in here fail as this backend's calls do (``StorageError`` only)."""
        return self._backend._calling(operation, key)

    async def ready(self) -> RedisClient:
        """The client, once the topology is known and the eviction policy checked."""
        return await self._backend._ready()

    async def script(
        self, name: str, key: str, keys: Sequence[str | bytes], args: Sequence[Any]
    ) -> Any:
        """One run of the Lua script ``name`` (``write``, ``delete``, ``list``, ``cleanup``,
        ``seed``), as the backend runs it."""
        return await self._backend._script(name, key, keys, args)

    def pexpireat(self, expires_at: float | None) -> str:
        """The PEXPIREAT argument a write of ``expires_at`` gives the record hash."""
        return self._backend._pexpireat(expires_at)

    @staticmethod
    def shipped_scripts() -> dict[str, str]:
        """The Lua source of each script a backend runs unless told otherwise, by name."""
        return dict(_SCRIPTS)

    def use_scripts(self, texts: dict[str, str]) -> None:
        """Run ``texts`` instead of the shipped scripts (a test wraps them in a checker)."""
        client = self._backend._client
        self._backend._scripts = {
            name: client.register_script(text) for name, text in texts.items()
        }

    @property
    def list_budget(self) -> int:
        """Index entries one step of list.lua examines at most."""
        return self._backend._list_budget

    def tune_listing(self, *, budget: int, batch: int) -> None:
        """Smaller listing steps, so that a test sees many steps on a few hundred records."""
        self._backend._list_budget, self._backend._list_batch = budget, batch


def _partition_base(namespace: str, partition: str) -> str:
    return f"{namespace}:{{{partition}}}:"


def _record_keys(namespace: str, partition: str, item: str) -> list[str]:
    """Record hash, partition index, expiry index and parked entries of one key."""
    base = _partition_base(namespace, partition)
    return [base + "r:" + item, base + "i", base + "x", base + "d"]


def _lex_range(item_prefix: str, after_item: str | None) -> tuple[bytes, bytes]:
    """ZRANGEBYLEX bounds of the items starting with ``item_prefix`` and above ``after_item``."""
    # Items are ASCII, so [prefix, prefix + b"\xff") holds exactly those starting with it.
    lo = b"[" + item_prefix.encode() if item_prefix else b"-"
    hi = b"(" + item_prefix.encode() + b"\xff" if item_prefix else b"+"
    if after_item is not None:
        after = after_item.encode("utf-8", "surrogatepass")
        if after >= item_prefix.encode():
            lo = b"(" + after
    return lo, hi


def _found_records(
    head: str, base: str, found: list[bytes]
) -> Iterator[tuple[str, VersionedRecord]]:
    """The records list.lua returned, as (item, version, expires_at, data) runs of four."""
    for index in range(0, len(found), 4):
        key = head + found[index].decode()
        version, expires_at, data = found[index + 1 : index + 4]
        record_key = base + "r:" + found[index].decode()
        yield key, _record(key, record_key, data, version, expires_at)


def _record(key: str, record_key: str, data: Any, version: Any, expires_at: Any) -> VersionedRecord:
    """Parse a record hash's fields, refusing anything this backend would not have written."""
    if data is None:
        raise _malformed(key, record_key, b"data")
    if version is None or _VERSION_RE.fullmatch(version) is None or int(version) > MAX_VERSION:
        raise _malformed(key, record_key, b"version")
    if expires_at is None:
        raise _malformed(key, record_key, b"expires_at")
    expiry: float | None = None
    if expires_at != b"":
        try:
            expiry = float(expires_at)
        except ValueError:
            expiry = math.nan
        if not math.isfinite(expiry):
            raise _malformed(key, record_key, b"expires_at")
    return VersionedRecord(bytes(data), int(version), expiry)


def _malformed(key: str, record_key: str, field: bytes) -> BackendError:
    return BackendError(
        f"malformed record for key {key!r}: Redis hash {record_key!r} has a missing or invalid "
        f"{field.decode()!r} field"
    )


def _damage(head: str, base: str, item: bytes, what: bytes) -> tuple[str, BackendError]:
    """The key a listing skipped and why: what list.lua reported about that index entry."""
    shown = head + item.decode("utf-8", "backslashreplace")
    if what == b"member":
        return shown, BackendError(
            f"the partition index {base + 'i'!r} holds {item!r}, which is not the item part of "
            "a valid key (only A-Z a-z 0-9 _ . ~ % -)"
        )
    record_key = base + "r:" + item.decode()
    if what == b"type":
        return shown, BackendError(
            f"damaged record for key {shown!r}: {record_key!r} is not a hash"
        )
    return shown, _malformed(shown, record_key, what)


def _bad_index(index_key: str, error: bytes) -> BackendError:
    return BackendError(
        f"the partition index {index_key!r} is not a sorted set ({error.decode(errors='replace')}):"
        " its records are not listed; the next write of the partition replaces it"
    )


def _report_repairs(key: str, record_key: str, damage: bytes, replaced: list[bytes]) -> None:
    """Warn about damage a write or delete overwrote: an operator may want to know why."""
    if damage:
        logger.warning(
            "overwrote the damaged record at key %r (Redis key %r: %s)",
            key,
            record_key,
            "not a hash" if damage == b"type" else f"missing or invalid {damage.decode()!r} field",
        )
    for index_key in replaced:
        logger.warning(
            "replaced %r, which was not a sorted set, by a fresh index for key %r",
            index_key.decode("utf-8", "backslashreplace"),
            key,
        )
