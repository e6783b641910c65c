"""DynamoDbBackend: the StorageBackend contract on one DynamoDB table.

Every write is a single conditional request, so atomicity is DynamoDB's own per-item
atomicity and never a read-then-write. The blocking boto3 client runs in this backend's own
thread pool, sized together with botocore's connection pool so that neither waits on the other
and the event loop never blocks (:mod:`.client`); items are encoded and decoded by :mod:`.codec`.

Expiry. Native TTL deletes days late and follows the real clock, so it is only a garbage
collector: every read and condition compares the stored expiry with the injected clock
(KV-LIVE-3), and the TTL attribute is set ``ttl_grace`` seconds after the expiry so that AWS
never deletes a record that a clock lagging real time still sees as live.

Retries. botocore's ``standard`` mode with ``max_attempts`` (default 3: one try and two retries,
with botocore's short jittered back-off, at most about 3 s in all) for throttling, server and
connection errors. A retried write resends the same request, write token included, so when the
first try succeeded but its reply was lost the retry fails its condition, finds its own token
in the returned item and reports the success it had (KV-CAS-6).

Engines. Some return no item on a failed condition (dynalite); the probe at :meth:`open` finds
out, and there the item is read back with a consistent ``GetItem`` instead (see
:meth:`.client.TableClient.conditional`), so the answers stay the same.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from pmcp_tasks.backend import MAX_VERSION, BackendCapabilities, Clock, VersionedRecord, is_live
from pmcp_tasks.backend_base import BackendBase
from pmcp_tasks.errors import (
    BackendError,
    CapacityExceeded,
    RecordNotFound,
    VersionConflict,
)
from pmcp_tasks.keys import split_key
from reference_backends.dynamodb.client import (
    Item,
    TableClient,
    TooLargeToUpdate,
    expression,
    make_client,
)
from reference_backends.dynamodb.codec import (
    ABOVE_ITEM_CHARS,
    DECODABLE,
    EXPIRED,
    LIVE,
    NOT_MINE,
    NUMERIC_EXPIRY,
    DamagedItem,
    ItemCodec,
    Stored,
    decode,
    first_item_after,
    live_records,
    number,
    written_by,
)
from reference_backends.dynamodb.provision import (
    MissingTtl,
    TableFeatures,
    check_missing_ttl,
    report_ttl,
)
from reference_backends.dynamodb.table import (
    DATA,
    EXPIRES_AT,
    EXPIRY,
    MAX_RECORD_BYTES,
    PK,
    SK,
    TOKEN,
    VERSION,
    partition_key_prefix,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_PUT_ROUNDS = 8  # each extra round needs another writer to change the record in between
_MAX_PAGE = 1000


class DynamoDbBackend(BackendBase):
    """A :class:`~pmcp_tasks.StorageBackend` on one DynamoDB table (see :mod:`.table`).

    Two ways to open one, so that no argument is silently ignored: this constructor builds the
    boto3 client from ``endpoint_url``/``region_name``/``max_attempts`` and the usual
    credential chain (and closes it in :meth:`aclose`); :meth:`from_client` takes a client you
    built and share, and never closes it. ``max_concurrency`` sizes the thread pool (and, here,
    botocore's ``max_pool_connections``); ``executor`` replaces the pool (it is not shut down
    by :meth:`aclose`). The first request opens the backend (:meth:`open`): it probes the
    endpoint and reports the table's TTL by ``missing_ttl``.
    """

    def __init__(
        self,
        table_name: str,
        *,
        namespace: str,
        clock: Clock = time.time,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        max_concurrency: int = 10,
        max_attempts: int = 3,
        executor: Executor | None = None,
        ttl_grace: int = 3600,
        missing_ttl: MissingTtl = "warn",
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, not {max_attempts}")
        _check_settings(table_name, namespace, max_concurrency, ttl_grace, missing_ttl)
        client = make_client(
            endpoint_url=endpoint_url,
            region_name=region_name,
            max_concurrency=max_concurrency,
            max_attempts=max_attempts,
        )
        table = TableClient(
            table_name,
            client,
            owns_client=True,
            max_concurrency=max_concurrency,
            executor=executor,
            missing_ttl=missing_ttl,
        )
        self._setup(table, namespace, clock, ttl_grace)

    @classmethod
    def from_client(
        cls,
        client: DynamoDBClient,
        table_name: str,
        *,
        namespace: str,
        clock: Clock = time.time,
        max_concurrency: int = 10,
        executor: Executor | None = None,
        ttl_grace: int = 3600,
        missing_ttl: MissingTtl = "warn",
        features: TableFeatures | None = None,
    ) -> DynamoDbBackend:
        """A backend on a client you own: its endpoint, region, retries and pool are yours.

        Build the client with :func:`~.client.make_client` to get this backend's settings.
        ``features`` (from :func:`~.provision.probe_table` on the same client and table) skips
        the probe when many backends open on one client; the TTL is still reported by
        ``missing_ttl``.
        """
        _check_settings(table_name, namespace, max_concurrency, ttl_grace, missing_ttl)
        if features is not None:
            report_ttl(features.ttl_problem, table_name, missing_ttl)
        self = cls.__new__(cls)
        table = TableClient(
            table_name,
            client,
            owns_client=False,
            max_concurrency=max_concurrency,
            executor=executor,
            missing_ttl=missing_ttl,
            features=features,
        )
        self._setup(table, namespace, clock, ttl_grace)
        return self

    def _setup(self, table: TableClient, namespace: str, clock: Clock, ttl_grace: int) -> None:
        self._table = table
        self._codec = ItemCodec(partition_key_prefix(namespace), ttl_grace)
        self._clock = clock
        self.capabilities = BackendCapabilities(
            max_record_bytes=MAX_RECORD_BYTES, shared_across_processes=True, injectable_clock=True
        )

    async def open(self) -> TableFeatures:
        """Probe the endpoint and table once (:func:`~.provision.probe_table`); idempotent.

        Called by the first request, so calling it is optional; call it to fail at start-up
        rather than on the first request, or to read what the probe found. A TTL that is not
        cleaning the table is reported by ``missing_ttl`` on every open.
        """
        return await self._table.open()

    # -- contract hooks (BackendBase checked the arguments) ---------------------------------

    async def _get(self, key: str) -> VersionedRecord | None:
        partition, item = split_key(key)
        now = self._clock()
        response = await self._table.run(
            self._table.client.get_item,
            Key=self._codec.key(partition, item),
            ConsistentRead=True,
        )
        stored = decode(key, response.get("Item"))
        if stored is None or not is_live(stored.record.expires_at, now):
            return None
        return stored.record

    async def _put(self, key: str, data: bytes, expires_at: float | None) -> int:
        """One ``UpdateItem`` when the key is absent or live; two when it holds an expired item.

        ``UpdateItem`` bumps the version in place (``if_not_exists(version, 0) + 1``) under the
        condition "absent or live", which covers the common cases in one request; the old item
        comes back (``ALL_OLD``) and says which version that made. An expired item must restart
        at 1, which no update expression can express, so that condition fails and a ``PutItem``
        conditioned on "still expired" writes version 1 (:meth:`_settle_put`). If another
        writer revives or deletes the key in between, that condition fails in turn and we go
        round again: every step is one atomic conditional write, never a read-then-write.
        """
        partition, item = split_key(key)
        token = uuid.uuid4().hex
        assignments, removals = self._codec.expiry_updates(expires_at)
        sets = [
            f"#{DATA} = :data",
            f"#{TOKEN} = :token",
            f"#{VERSION} = if_not_exists(#{VERSION}, :zero) + :one",
            *assignments,
        ]
        update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removals) if removals else "")
        bumpable = f"({DECODABLE} AND {LIVE} AND #{VERSION} < :max)"
        condition = f"(attribute_not_exists(#{PK}) OR {bumpable}) AND {NOT_MINE}"
        for _ in range(_PUT_ROUNDS):
            now = self._clock()
            try:
                ok, attributes = await self._table.conditional(
                    self._table.client.update_item,
                    Key=self._codec.key(partition, item),
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ReturnValues="ALL_OLD",  # the version bumped (and, unavoidably, the data)
                    values={
                        ":data": {"B": data},
                        ":token": {"S": token},
                        ":zero": {"N": "0"},
                        ":one": {"N": "1"},
                        ":max": {"N": str(MAX_VERSION)},
                        ":now": {"N": number(now)},
                        **self._codec.expiry_values(expires_at),
                    },
                )
            except TooLargeToUpdate:
                return await self._put_by_cas(key, data, expires_at)
            written = ok, attributes, token, now
            version = await self._settle_put(key, partition, item, data, expires_at, written)
            if version is not None:
                return version
        raise BackendError(f"put on {key!r} kept racing with writers that expire the record")

    async def _settle_put(
        self,
        key: str,
        partition: str,
        item: str,
        data: bytes,
        expires_at: float | None,
        written: tuple[bool, Item | None, str, float],
    ) -> int | None:
        """The version one round of ``put`` made, from the update's outcome; None: go round.

        ``written`` is the update's success, the item it returned, its token and the clock.
        A damaged item (KV-DAMAGE-1) counts as absent: the condition refuses every item whose
        attribute types are not ours, and one that gets through anyway (a fractional version, an
        unparsable ``expires_at`` text) comes back as the old item; either way a ``PutItem`` of
        version 1, conditioned on the item being the one seen (:meth:`_replace`), takes its place.
        """
        ok, attributes, token, now = written
        try:
            old = decode(key, attributes)
        except DamagedItem:
            assert attributes is not None  # a missing item decodes to None
            seen = {TOKEN: {"S": token}} if ok else attributes  # if ok, our write is there
            return (
                1 if await self._replace(partition, item, data, expires_at, token, seen) else None
            )
        if ok:
            return 1 if old is None else old.record.version + 1
        if old is not None and old.token == token:
            return old.record.version
        if old is None:
            return None  # gone since the condition failed (only seen without ALL_OLD)
        if is_live(old.record.expires_at, now):
            if old.record.version >= MAX_VERSION:
                raise CapacityExceeded(f"version of key {key!r} would exceed {MAX_VERSION}")
            return None  # rewritten since the condition failed (only seen without ALL_OLD)
        ok, attributes = await self._table.conditional(
            self._table.client.put_item,
            Item=self._codec.item(partition, item, data, 1, expires_at, token),
            ConditionExpression=EXPIRED,
            values={":now": {"N": number(now)}},
        )
        return 1 if ok or written_by(attributes, token) else None

    async def _put_by_cas(self, key: str, data: bytes, expires_at: float | None) -> int:
        """``put`` as compare-and-set rounds on the version read, for an engine that refuses
        the in-place update: moto counts the old and the new data together against the item
        size limit, so replacing a large record by a larger one fails, while a ``PutItem``
        (which ``put_if_version`` sends) is measured alone. Each round is one atomic
        conditional write, so concurrent puts still hand out consecutive versions (KV-PUT-2).
        """
        for _ in range(_PUT_ROUNDS):
            try:
                current = await self._get(key)
            except DamagedItem:  # a create replaces it (KV-DAMAGE-1)
                current = None
            expected = 0 if current is None else current.version
            try:
                return await self._put_if_version(key, data, expected, expires_at)
            except (VersionConflict, RecordNotFound):
                continue  # another writer got in between: read again
        raise BackendError(f"put on {key!r} kept racing with other writers")

    async def _replace(
        self,
        partition: str,
        item: str,
        data: bytes,
        expires_at: float | None,
        token: str,
        damaged: Item,
    ) -> bool:
        """Overwrite the ``damaged`` item with version 1, unless a writer replaced it first."""
        if TOKEN in damaged:
            condition, values = f"#{TOKEN} = :seen", {":seen": damaged[TOKEN]}
        else:
            condition, values = f"attribute_not_exists(#{TOKEN})", {}
        ok, attributes = await self._table.conditional(
            self._table.client.put_item,
            Item=self._codec.item(partition, item, data, 1, expires_at, token),
            ConditionExpression=condition,
            values=values,
        )
        return ok or written_by(attributes, token)

    async def _put_if_version(
        self, key: str, data: bytes, expected_version: int, expires_at: float | None
    ) -> int:
        """One conditional ``PutItem``; a failed condition returns the item it failed on.

        The returned item (``ReturnValuesOnConditionCheckFailure=ALL_OLD``, or a consistent read
        on engines without it) decides (:func:`_cas_outcome`). Only a read can find an item on
        which the condition would now pass (it changed in between); then the write is sent
        again, as one more atomic attempt. A damaged item counts as absent (KV-DAMAGE-1):
        ``RecordNotFound`` for a version, replaced (:meth:`_replace`) by a create.
        """
        if expected_version == MAX_VERSION:
            return await self._overflowing_cas(key, expected_version)
        partition, item = split_key(key)
        token = uuid.uuid4().hex
        if expected_version == 0:
            condition = f"attribute_not_exists(#{PK}) OR {EXPIRED}"
        else:
            condition = f"#{VERSION} = :expected AND {LIVE} AND {DECODABLE}"
        for _ in range(_PUT_ROUNDS):
            now = self._clock()
            ok, attributes = await self._table.conditional(
                self._table.client.put_item,
                Item=self._codec.item(
                    partition, item, data, expected_version + 1, expires_at, token
                ),
                ConditionExpression=condition,
                values={
                    ":now": {"N": number(now)},
                    ":expected": {"N": str(expected_version)},
                    ":max": {"N": str(MAX_VERSION)},
                },
            )
            if ok:
                return expected_version + 1
            try:
                old = decode(key, attributes)
            except DamagedItem:  # absent, as far as a write is concerned
                if expected_version:
                    raise RecordNotFound(key) from None
                assert attributes is not None
                if await self._replace(partition, item, data, expires_at, token, attributes):
                    return 1
                continue
            version = _cas_outcome(key, expected_version, old, token, now)
            if version is not None:
                return version
        raise BackendError(f"put_if_version on {key!r} kept racing with other writers")

    async def _delete(self, key: str) -> bool:
        """One ``DeleteItem`` conditioned on liveness: its success is the answer.

        An expired item fails the condition and stays for native TTL or ``cleanup_expired``;
        either way the caller sees ``False`` (KV-DEL-1) and no data travels back. An item whose
        ``expiry`` is not a number cannot be judged, so it counts as live: deleting it is how a
        caller removes a damaged record.
        """
        partition, item = split_key(key)
        now = self._clock()
        ok, _ = await self._table.conditional(
            self._table.client.delete_item,
            Key=self._codec.key(partition, item),
            ConditionExpression=f"attribute_exists(#{PK}) AND ({LIVE} OR NOT {NUMERIC_EXPIRY})",
            values={":now": {"N": number(now)}},
            return_old=False,
        )
        return ok

    async def _list(
        self, partition: str, item_prefix: str, after_item: str | None, limit: int | None
    ) -> list[tuple[str, VersionedRecord]]:
        """``Query`` pages over the sort-key range of ``item_prefix`` and ``after_item``.

        The first page asks for exactly ``limit`` items, so a listing with nothing expired costs
        one request per page. ``Limit`` counts items before the expiry filter, so when expired
        items leave a page short the next request asks for twice as many (up to 1000) until the
        page is full or the range is exhausted (KV-LIST-5): round trips grow with the logarithm
        of the expired items skipped, never one per record (KV-LIST-6). A damaged item is left
        out with a warning (:func:`~pmcp_tasks.skip_damaged`), like an expired one.
        """
        key_range = _key_range(self._codec.pk_prefix + partition, item_prefix, after_item)
        if key_range is None:
            return []
        condition, values = key_range
        projection = f"#{SK}, #{DATA}, #{VERSION}, #{EXPIRES_AT}, #{EXPIRY}"
        now = self._clock()
        out: list[tuple[str, VersionedRecord]] = []
        page = limit
        start: Item | None = None
        while True:
            extra: dict[str, Any] = {}
            if page is not None:
                extra["Limit"] = page
            if start is not None:
                extra["ExclusiveStartKey"] = start
            response = await self._table.run(
                self._table.client.query,
                KeyConditionExpression=condition,
                ProjectionExpression=projection,
                ConsistentRead=True,
                **expression(condition, projection, values),
                **extra,
            )
            for found in live_records(partition + ":", response.get("Items", []), now):
                out.append(found)
                if limit is not None and len(out) >= limit:
                    return out
            start = response.get("LastEvaluatedKey")
            if start is None:
                return out
            if limit is not None and page is not None:
                page = min(max(limit - len(out), 2 * page), _MAX_PAGE)

    async def _cleanup(self) -> int:
        """Scan this namespace for expired items and delete each one still expired.

        A ``Scan`` (strongly consistent, filtered to this namespace's ``pk`` prefix and to
        ``expiry <= now``) reads the whole table: fine for the test and small deployments this
        method serves, while production tables rely on native TTL. Each delete is conditioned
        on the item still being expired, so a record rewritten meanwhile survives and is not
        counted. Pages are processed one at a time, so memory stays bounded.
        """
        now = self._clock()
        condition = f"begins_with(#{PK}, :ns) AND {EXPIRED}"
        values = {":ns": {"S": self._codec.pk_prefix}, ":now": {"N": number(now)}}
        removed = 0
        async for keys in self._table.scan(condition, values):
            outcomes = await asyncio.gather(
                *(
                    self._table.conditional(
                        self._table.client.delete_item,
                        Key=key,
                        ConditionExpression=EXPIRED,
                        values={":now": {"N": number(now)}},
                        return_old=False,
                    )
                    for key in keys
                )
            )
            removed += sum(ok for ok, _ in outcomes)
        return removed

    async def aclose(self) -> None:
        """Stop this backend's threads and close the client it built; idempotent."""
        self._table.close()

    async def _overflowing_cas(self, key: str, expected_version: int) -> int:
        """CAS from ``MAX_VERSION``: nothing can be written, so report what the store holds."""
        record = await self.get(key)
        if record is None:
            raise RecordNotFound(key)
        if record.version != expected_version:
            raise VersionConflict(key, expected_version, record.version)
        raise CapacityExceeded(f"version of key {key!r} would exceed {MAX_VERSION}")


class DynamoDbInternals:
    """The sanctioned door to a :class:`DynamoDbBackend`'s insides; not the public API.

    The conformance kit's hooks (:mod:`.kit`) and this backend's tests write past the contract
    (any version, damaged items, a whole namespace dropped, the raw item read back) and so need
    the table client and the item codec the backend uses. They take them from here, in one
    typed place, so that refactoring the backend breaks this class loudly and not its users
    silently. Nothing here is stable across releases.
    """

    def __init__(self, backend: DynamoDbBackend) -> None:
        self.table: TableClient = backend._table
        """The table, its boto3 client (``.client``) and its thread pool (``.executor``)."""
        self.codec: ItemCodec = backend._codec
        """The namespace's primary keys and the items a write stores."""


def _cas_outcome(
    key: str, expected_version: int, old: Stored | None, token: str, now: float
) -> int | None:
    """What a failed ``put_if_version`` condition means, from the item it failed on.

    Our own token is a retry of a write that already landed (KV-CAS-6); otherwise the item's
    version and expiry decide between RecordNotFound and the conflict, which reports the
    version that was stored (KV-CAS-3). None: the item changed since, so that the condition
    would pass now (absent or expired for 0, back at the version for n): send it again.
    """
    if old is not None and old.token == token:
        return old.record.version
    live = old is not None and is_live(old.record.expires_at, now)
    if expected_version and not live:
        raise RecordNotFound(key)
    if old is not None and live and old.record.version != expected_version:
        raise VersionConflict(key, expected_version, old.record.version)
    return None


def _key_range(
    pk: str, item_prefix: str, after_item: str | None
) -> tuple[str, dict[str, Any]] | None:
    """A ``Query``'s key condition and values for a listing's range; None when it is empty."""
    lower = item_prefix
    if after_item is not None:
        lower = max(lower, first_item_after(after_item))
    values: dict[str, Any] = {":pk": {"S": pk}}
    condition = f"#{PK} = :pk"
    if item_prefix:
        upper = item_prefix + ABOVE_ITEM_CHARS
        if lower > upper:
            return None
        condition += f" AND #{SK} BETWEEN :lower AND :upper"
        values[":upper"] = {"S": upper}
        values[":lower"] = {"S": lower}
    elif lower:
        condition += f" AND #{SK} >= :lower"
        values[":lower"] = {"S": lower}
    return condition, values


def _check_settings(
    table_name: str, namespace: str, max_concurrency: int, ttl_grace: int, missing_ttl: str
) -> None:
    """Refuse bad settings before anything is built (ValueError naming the value)."""
    if not isinstance(table_name, str) or not table_name:
        raise ValueError(f"table_name must be a non-empty str, not {table_name!r}")
    partition_key_prefix(namespace)
    if max_concurrency < 1 or ttl_grace < 0:
        raise ValueError(
            f"max_concurrency must be >= 1 and ttl_grace >= 0, not {max_concurrency} and "
            f"{ttl_grace}"
        )
    check_missing_ttl(missing_ttl)
