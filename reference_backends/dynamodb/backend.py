"""DynamoDbBackend: the StorageBackend contract on one DynamoDB table.

Every write is a single conditional request, so atomicity is DynamoDB's own per-item
atomicity and never a read-then-write. The blocking boto3 client runs in this backend's own
thread pool, sized together with botocore's connection pool so that neither waits on the other
and the event loop never blocks.

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
``_conditional``), so the answers stay the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import re
import string
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar, cast

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
)

from pmcp_tasks.backend import MAX_VERSION, BackendCapabilities, Clock, VersionedRecord, is_live
from pmcp_tasks.backend_base import BackendBase, skip_damaged
from pmcp_tasks.errors import (
    BackendError,
    BackendUnavailable,
    CapacityExceeded,
    RecordNotFound,
    VersionConflict,
)
from pmcp_tasks.keys import split_key
from reference_backends.causes import describe
from reference_backends.dynamodb.provision import (
    MissingTtl,
    TableFeatures,
    check_missing_ttl,
    probe_table,
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
    TTL,
    VERSION,
    partition_key_prefix,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

T = TypeVar("T")
Item = Mapping[str, Any]

# Every comparison of a stored attribute first checks its type: DynamoDB finds a comparison
# across types false, which these make explicit (moto in-process would raise TypeError instead).
_NUMERIC_EXPIRY = f"attribute_type(#{EXPIRY}, :number)"
_LIVE = f"(attribute_not_exists(#{EXPIRY}) OR ({_NUMERIC_EXPIRY} AND #{EXPIRY} > :now))"
_EXPIRED = f"({_NUMERIC_EXPIRY} AND #{EXPIRY} <= :now)"
# What a condition can tell of _decode's checks (not an expires_at text that does not parse).
# Data is "present and not text": dynalite's attribute_type does not find empty binary to be B.
_DECODABLE = (
    f"attribute_exists(#{DATA}) AND NOT attribute_type(#{DATA}, :string) AND "
    f"attribute_type(#{VERSION}, :number) AND "
    f"#{VERSION} BETWEEN :one AND :max AND ((attribute_not_exists(#{EXPIRES_AT}) AND "
    f"attribute_not_exists(#{EXPIRY})) OR (attribute_type(#{EXPIRES_AT}, :string) AND "
    f"{_NUMERIC_EXPIRY}))"
)
_NOT_MINE = f"(attribute_not_exists(#{TOKEN}) OR #{TOKEN} <> :token)"
_PUT_ROUNDS = 8  # each extra round needs another writer to change the record in between
_MAX_PAGE = 1000
_ITEM_CHARS = frozenset(string.ascii_letters + string.digits + "_.~%-")
_LOWEST_ITEM_CHAR = "%"  # the smallest character of the key alphabet
_ABOVE_ITEM_CHARS = "\x7f"  # sorts after every character of the key alphabet
_DYNAMODB_MAX_NUMBER = Decimal("9.9999999999999999999999999999999999999E+125")
_DYNAMODB_MIN_MAGNITUDE = Decimal("1E-130")
_TYPES = {":number": {"S": "N"}, ":string": {"S": "S"}}
"""attribute_type's arguments, available to every expression."""
_TTL_RANGE = 1e18  # expiries beyond this many epoch seconds get no TTL attribute


@dataclass(frozen=True, slots=True)
class _Stored:
    record: VersionedRecord
    token: str | None


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
        self._setup(table_name, namespace, clock, client, True, max_concurrency, executor)
        self._ttl_grace = ttl_grace
        self._missing_ttl = missing_ttl
        self._features: TableFeatures | None = None

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

        Build the client with :func:`make_client` to get this backend's settings. ``features``
        (from :func:`~.provision.probe_table` on the same client and table) skips the probe
        when many backends open on one client; the TTL is still reported by ``missing_ttl``.
        """
        _check_settings(table_name, namespace, max_concurrency, ttl_grace, missing_ttl)
        self = cls.__new__(cls)
        self._setup(table_name, namespace, clock, client, False, max_concurrency, executor)
        self._ttl_grace = ttl_grace
        self._missing_ttl = missing_ttl
        self._features = None
        if features is not None:
            report_ttl(features.ttl_problem, table_name, missing_ttl)
            self._features = features
        return self

    def _setup(
        self,
        table_name: str,
        namespace: str,
        clock: Clock,
        client: DynamoDBClient,
        owns_client: bool,
        max_concurrency: int,
        executor: Executor | None,
    ) -> None:
        self._table = table_name
        self._pk_prefix = partition_key_prefix(namespace)
        self._clock = clock
        self._client = client
        self._owns_client = owns_client
        client.meta.events.register(
            "needs-retry.dynamodb", _note_attempt, unique_id="pmcp-tasks-note-attempt"
        )
        self._owns_executor = executor is None
        self._executor = (
            executor
            if executor is not None
            else ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="pmcp-dynamodb")
        )
        self._open_lock = asyncio.Lock()
        self._closed = False
        self.capabilities = BackendCapabilities(
            max_record_bytes=MAX_RECORD_BYTES, shared_across_processes=True, injectable_clock=True
        )

    async def open(self) -> TableFeatures:
        """Probe the endpoint and table once (:func:`~.provision.probe_table`); idempotent.

        Called by the first request, so calling it is optional; call it to fail at start-up
        rather than on the first request, or to read what the probe found. A TTL that is not
        cleaning the table is reported by ``missing_ttl`` on every open.
        """
        async with self._open_lock:
            if self._features is None:
                features = await self._call(probe_table, self._client, self._table)
                report_ttl(features.ttl_problem, self._table, self._missing_ttl)
                self._features = features
        return self._features

    async def server_time(self) -> float:
        """The DynamoDB endpoint's clock, from the HTTP ``Date`` header of a DescribeTable
        reply (:class:`pmcp_tasks.timebase.ServerClock`). ``Date`` has 1 s steps, so this is
        the middle of the second it names: within 0.5 s of the endpoint's clock."""
        reply = await self._run(self._client.describe_table)
        date = reply.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        if not isinstance(date, str):
            raise BackendError(f"DynamoDB reply for table {self._table!r} carries no Date header")
        import email.utils  # here, so that this method moves as one piece

        try:
            return email.utils.parsedate_to_datetime(date).timestamp() + 0.5
        except (TypeError, ValueError) as exc:
            raise BackendError(f"DynamoDB reply carries an unreadable Date: {date[:80]!r}") from exc

    # -- contract hooks (BackendBase checked the arguments) ---------------------------------

    async def _get(self, key: str) -> VersionedRecord | None:
        partition, item = split_key(key)
        now = self._clock()
        response = await self._run(
            self._client.get_item,
            Key=self._key(partition, item),
            ConsistentRead=True,
        )
        stored = _decode(key, response.get("Item"))
        if stored is None or not is_live(stored.record.expires_at, now):
            return None
        return stored.record

    async def _put(self, key: str, data: bytes, expires_at: float | None) -> int:
        """One ``UpdateItem`` when the key is absent or live; two when it holds an expired item.

        ``UpdateItem`` bumps the version in place (``if_not_exists(version, 0) + 1``) under the
        condition "absent or live", which covers the common cases in one request; the old item
        comes back (``ALL_OLD``) and says which version that made. An expired item must restart
        at 1, which no update expression can express, so that condition fails and a ``PutItem``
        conditioned on "still expired" writes version 1. If another writer revives or deletes
        the key in between, that condition fails in turn and we go round again: every step is
        one atomic conditional write, never a read-then-write.

        A damaged item (KV-DAMAGE-1) counts as absent: the condition refuses every item whose
        attribute types are not ours, and one that gets through anyway (a fractional version, an
        unparsable ``expires_at`` text) comes back as the old item; either way a ``PutItem`` of
        version 1, conditioned on the item being the one seen (:meth:`_replace`), takes its place.
        """
        partition, item = split_key(key)
        token = uuid.uuid4().hex
        assignments, removals = self._expiry_updates(expires_at)
        sets = [
            f"#{DATA} = :data",
            f"#{TOKEN} = :token",
            f"#{VERSION} = if_not_exists(#{VERSION}, :zero) + :one",
            *assignments,
        ]
        update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removals) if removals else "")
        bumpable = f"({_DECODABLE} AND {_LIVE} AND #{VERSION} < :max)"
        condition = f"(attribute_not_exists(#{PK}) OR {bumpable}) AND {_NOT_MINE}"
        for _ in range(_PUT_ROUNDS):
            now = self._clock()
            try:
                ok, attributes = await self._conditional(
                    self._client.update_item,
                    Key=self._key(partition, item),
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ReturnValues="ALL_OLD",  # the version bumped (and, unavoidably, the data)
                    values={
                        ":data": {"B": data},
                        ":token": {"S": token},
                        ":zero": {"N": "0"},
                        ":one": {"N": "1"},
                        ":max": {"N": str(MAX_VERSION)},
                        ":now": {"N": _number(now)},
                        **self._expiry_values(expires_at),
                    },
                )
            except _TooLargeToUpdate:
                return await self._put_by_cas(key, data, expires_at)
            try:
                old = _decode(key, attributes)
            except _DamagedItem:
                assert attributes is not None  # a missing item decodes to None
                seen = {TOKEN: {"S": token}} if ok else attributes  # if ok, our write is there
                if await self._replace(partition, item, data, expires_at, token, seen):
                    return 1
                continue
            if ok:
                return 1 if old is None else old.record.version + 1
            if old is not None and old.token == token:
                return old.record.version
            if old is None:
                continue  # gone since the condition failed (only seen without ALL_OLD)
            if is_live(old.record.expires_at, now):
                if old.record.version >= MAX_VERSION:
                    raise CapacityExceeded(f"version of key {key!r} would exceed {MAX_VERSION}")
                continue  # rewritten since the condition failed (only seen without ALL_OLD)
            ok, attributes = await self._conditional(
                self._client.put_item,
                Item=self._item(partition, item, data, 1, expires_at, token),
                ConditionExpression=_EXPIRED,
                values={":now": {"N": _number(now)}},
            )
            if ok or _written_by(attributes, token):
                return 1
        raise BackendError(f"put on {key!r} kept racing with writers that expire the record")

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
            except _DamagedItem:  # a create replaces it (KV-DAMAGE-1)
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
        ok, attributes = await self._conditional(
            self._client.put_item,
            Item=self._item(partition, item, data, 1, expires_at, token),
            ConditionExpression=condition,
            values=values,
        )
        return ok or _written_by(attributes, token)

    async def _put_if_version(
        self, key: str, data: bytes, expected_version: int, expires_at: float | None
    ) -> int:
        """One conditional ``PutItem``; a failed condition returns the item it failed on.

        The returned item (``ReturnValuesOnConditionCheckFailure=ALL_OLD``, or a consistent read
        on engines without it) decides: our own token means a retry of a write that already
        landed (KV-CAS-6), otherwise its version and expiry decide between RecordNotFound and the
        conflict, which reports the version that was stored (KV-CAS-3). Only a read can find an
        item on which the condition would now pass (it changed in between); then the write is
        sent again, as one more atomic attempt. A damaged item counts as absent (KV-DAMAGE-1):
        ``RecordNotFound`` for a version, replaced (:meth:`_replace`) by a create.
        """
        if expected_version == MAX_VERSION:
            return await self._overflowing_cas(key, expected_version)
        partition, item = split_key(key)
        token = uuid.uuid4().hex
        if expected_version == 0:
            condition = f"attribute_not_exists(#{PK}) OR {_EXPIRED}"
        else:
            condition = f"#{VERSION} = :expected AND {_LIVE} AND {_DECODABLE}"
        for _ in range(_PUT_ROUNDS):
            now = self._clock()
            ok, attributes = await self._conditional(
                self._client.put_item,
                Item=self._item(partition, item, data, expected_version + 1, expires_at, token),
                ConditionExpression=condition,
                values={
                    ":now": {"N": _number(now)},
                    ":expected": {"N": str(expected_version)},
                    ":max": {"N": str(MAX_VERSION)},
                },
            )
            if ok:
                return expected_version + 1
            try:
                old = _decode(key, attributes)
            except _DamagedItem:  # absent, as far as a write is concerned
                if expected_version:
                    raise RecordNotFound(key) from None
                assert attributes is not None
                if await self._replace(partition, item, data, expires_at, token, attributes):
                    return 1
                continue
            if old is not None and old.token == token:
                return old.record.version
            live = old is not None and is_live(old.record.expires_at, now)
            if expected_version and not live:
                raise RecordNotFound(key)
            if old is not None and live and old.record.version != expected_version:
                raise VersionConflict(key, expected_version, old.record.version)
            # Only a read after the failure gets here: the item changed in between so that the
            # condition would pass now (absent or expired for 0, back at the version for n).
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
        ok, _ = await self._conditional(
            self._client.delete_item,
            Key=self._key(partition, item),
            ConditionExpression=f"attribute_exists(#{PK}) AND ({_LIVE} OR NOT {_NUMERIC_EXPIRY})",
            values={":now": {"N": _number(now)}},
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
        head = partition + ":"
        lower = item_prefix
        if after_item is not None:
            lower = max(lower, _first_item_after(after_item))
        values: dict[str, Any] = {":pk": {"S": self._pk_prefix + partition}}
        condition = f"#{PK} = :pk"
        if item_prefix:
            upper = item_prefix + _ABOVE_ITEM_CHARS
            if lower > upper:
                return []
            condition += f" AND #{SK} BETWEEN :lower AND :upper"
            values[":upper"] = {"S": upper}
            values[":lower"] = {"S": lower}
        elif lower:
            condition += f" AND #{SK} >= :lower"
            values[":lower"] = {"S": lower}
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
            response = await self._run(
                self._client.query,
                KeyConditionExpression=condition,
                ProjectionExpression=projection,
                ConsistentRead=True,
                **_expression(condition, projection, values),
                **extra,
            )
            for raw in response.get("Items", []):
                item_key = head + str(raw[SK]["S"])
                try:
                    stored = _decode(item_key, raw)
                except _DamagedItem as damaged:
                    skip_damaged(item_key, damaged)
                    continue
                if stored is not None and is_live(stored.record.expires_at, now):
                    out.append((item_key, stored.record))
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
        condition = f"begins_with(#{PK}, :ns) AND {_EXPIRED}"
        values = {":ns": {"S": self._pk_prefix}, ":now": {"N": _number(now)}}
        removed = 0
        async for keys in self._scan(condition, values):
            outcomes = await asyncio.gather(
                *(
                    self._conditional(
                        self._client.delete_item,
                        Key=key,
                        ConditionExpression=_EXPIRED,
                        values={":now": {"N": _number(now)}},
                        return_old=False,
                    )
                    for key in keys
                )
            )
            removed += sum(ok for ok, _ in outcomes)
        return removed

    async def aclose(self) -> None:
        """Stop this backend's threads and close the client it built; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self._owns_client:
            self._client.close()

    # -- helpers ----------------------------------------------------------------------------

    def _key(self, partition: str, item: str) -> dict[str, Any]:
        return {PK: {"S": self._pk_prefix + partition}, SK: {"S": item}}

    def _item(
        self,
        partition: str,
        item: str,
        data: bytes,
        version: int,
        expires_at: float | None,
        token: str,
    ) -> dict[str, Any]:
        out = self._key(partition, item)
        out[DATA] = {"B": data}
        out[VERSION] = {"N": str(version)}
        out[TOKEN] = {"S": token}
        for name, value in self._expiry_values(expires_at).items():
            out[name[1:]] = value
        return out

    def _expiry_values(self, expires_at: float | None) -> dict[str, Any]:
        """``:expires_at``, ``:expiry`` and ``:ttl`` values for a write (none when no expiry)."""
        if expires_at is None:
            return {}
        values = {
            f":{EXPIRES_AT}": {"S": repr(expires_at)},
            f":{EXPIRY}": {"N": _number(expires_at)},
        }
        if abs(expires_at) < _TTL_RANGE:
            values[f":{TTL}"] = {"N": str(math.ceil(expires_at) + self._ttl_grace)}
        return values

    def _expiry_updates(self, expires_at: float | None) -> tuple[list[str], list[str]]:
        """SET and REMOVE clauses that make the item's expiry attributes match ``expires_at``."""
        present = self._expiry_values(expires_at)
        names = (EXPIRES_AT, EXPIRY, TTL)
        sets = [f"#{n} = :{n}" for n in names if f":{n}" in present]
        removals = [f"#{n}" for n in names if f":{n}" not in present]
        return sets, removals

    async def _overflowing_cas(self, key: str, expected_version: int) -> int:
        """CAS from ``MAX_VERSION``: nothing can be written, so report what the store holds."""
        record = await self.get(key)
        if record is None:
            raise RecordNotFound(key)
        if record.version != expected_version:
            raise VersionConflict(key, expected_version, record.version)
        raise CapacityExceeded(f"version of key {key!r} would exceed {MAX_VERSION}")

    async def _scan(
        self, condition: str, values: dict[str, Any]
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Primary keys of this namespace's items matching ``condition``, page by page."""
        start: Item | None = None
        while True:
            extra: dict[str, Any] = {} if start is None else {"ExclusiveStartKey": start}
            response = await self._run(
                self._client.scan,
                FilterExpression=condition,
                ProjectionExpression=f"#{PK}, #{SK}",
                ConsistentRead=True,
                **_expression(condition, f"#{PK}, #{SK}", values),
                **extra,
            )
            yield [{PK: raw[PK], SK: raw[SK]} for raw in response.get("Items", [])]
            start = response.get("LastEvaluatedKey")
            if start is None:
                return

    async def _conditional(
        self,
        operation: Callable[..., Any],
        *,
        values: dict[str, Any],
        return_old: bool = True,
        **kwargs: Any,
    ) -> tuple[bool, Item | None]:
        """Run a conditional write: (True, returned attributes) or (False, the item it met).

        With ``return_old`` the item comes with the failure (ALL_OLD) or, on an engine that
        does not return it, from a strongly consistent ``GetItem`` sent after the failure: the
        state at some instant after the failed write and before this call returns, inside the
        call, so an answer taken from it is linearizable (docs/backends/dynamodb.md).
        """
        if return_old:
            kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        expressions = (kwargs["ConditionExpression"], kwargs.get("UpdateExpression", ""))
        try:
            response = await self._run(operation, **_expression(*expressions, values), **kwargs)
        except _ConditionFailed as failed:
            if failed.item or not return_old or self._returns_old_item():
                return False, failed.item
            key = kwargs.get("Key") or {PK: kwargs["Item"][PK], SK: kwargs["Item"][SK]}
            read = await self._run(self._client.get_item, Key=key, ConsistentRead=True)
            return False, read.get("Item")
        return True, cast("Mapping[str, Any]", response).get("Attributes")

    def _returns_old_item(self) -> bool:
        assert self._features is not None  # _run opened the backend before the write
        return self._features.returns_old_item

    async def _run(self, operation: Callable[..., T], **kwargs: Any) -> T:
        """Call the blocking client in the pool, opened first; translate errors (KV-ERR-1)."""
        if self._features is None:
            await self.open()
        call = functools.partial(operation, TableName=self._table, **kwargs)
        try:
            return await self._call(_unsent_tracked, call)
        except ClientError as exc:
            response = cast("Mapping[str, Any]", exc.response)
            code = response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed(response.get("Item")) from exc
            if code == "ValidationException" and _UPDATE_TOO_LARGE in str(exc):
                raise _TooLargeToUpdate(str(exc)) from exc
            if code == "ResourceNotFoundException":
                raise BackendError(
                    f"DynamoDB table {self._table!r} does not exist; create it with "
                    "reference_backends.dynamodb.create_table"
                ) from exc
            raise BackendError(
                f"DynamoDB {exc.operation_name} on table {self._table!r} failed: {describe(exc)}"
            ) from exc
        except _Unsent as unsent:
            raise BackendUnavailable(
                f"DynamoDB request to table {self._table!r} not applied, nothing was sent: "
                f"{describe(unsent.cause)}"
            ) from unsent.cause
        except BotoCoreError as exc:
            raise BackendError(
                f"DynamoDB request to table {self._table!r} failed: {describe(exc)}"
            ) from exc

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in the pool: blocking botocore never runs on the event loop.

        A request in a pool thread cannot be recalled, so a cancelled caller waits for it to
        end before hearing of the cancellation: otherwise the write could land after the
        caller's next write to the key and undo it (KV-CANCEL-1).
        """
        if self._closed:
            raise BackendError("this DynamoDbBackend is closed")
        call = functools.partial(function, *args)
        future = asyncio.get_running_loop().run_in_executor(self._executor, call)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            while not future.done():
                with contextlib.suppress(asyncio.CancelledError):  # delivered again (anyio)
                    await asyncio.wait({future})
            if not future.cancelled():
                future.exception()  # retrieved: the caller hears of the cancellation instead
            raise


_attempts = threading.local()  # per pool thread: did any attempt of the current call go out?
_UNSENT = (EndpointConnectionError, ConnectTimeoutError)  # raised before a byte is sent


def _note_attempt(caught_exception: BaseException | None = None, **_: Any) -> None:
    """botocore ``needs-retry`` hook, after every attempt: note one that may have been sent."""
    if not isinstance(caught_exception, _UNSENT):
        _attempts.sent = True


def _unsent_tracked(call: Callable[[], T]) -> T:
    """``call()``, raising :class:`_Unsent` when it failed and no attempt was ever sent.

    botocore raises the last attempt's error only, so a connection refused on a retry says
    nothing about the first try: only when every attempt failed to connect is the request
    known not to be applied.
    """
    _attempts.sent = False
    try:
        return call()
    except _UNSENT as exc:
        if _attempts.sent:
            raise
        raise _Unsent(exc) from exc


class _Unsent(Exception):
    """Internal: every attempt of a request failed before sending; ``cause`` is the last."""

    def __init__(self, cause: BotoCoreError) -> None:
        super().__init__(str(cause))
        self.cause = cause


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


class _TooLargeToUpdate(BackendError):
    """The engine refused an ``UpdateItem`` for the size of the old and new item together."""


_UPDATE_TOO_LARGE = "Item size to update has exceeded the maximum allowed size"


class _ConditionFailed(Exception):
    """Internal: a write's condition failed; ``item`` is what DynamoDB returned (ALL_OLD)."""

    def __init__(self, item: Item | None) -> None:
        super().__init__("conditional check failed")
        self.item = item


def make_client(
    *,
    endpoint_url: str | None = None,
    region_name: str | None = None,
    max_concurrency: int = 10,
    max_attempts: int = 3,
    session: boto3.session.Session | None = None,
) -> DynamoDBClient:
    """The client a backend builds for itself; build one here to share it between backends.

    ``max_pool_connections`` equals the backend's default thread pool so that no thread waits
    for a connection; retries are botocore's ``standard`` mode, ``max_attempts`` tries in all.
    """
    config = Config(
        max_pool_connections=max_concurrency,
        # total_max_attempts counts the first try; botocore's max_attempts would not.
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=5,
        read_timeout=20,
    )
    try:
        return (session or boto3.session.Session()).client(
            "dynamodb", endpoint_url=endpoint_url, region_name=region_name, config=config
        )
    except (BotoCoreError, ValueError) as exc:
        raise ValueError(f"cannot create a DynamoDB client: {describe(exc)}") from exc


def _expression(*parts_and_values: Any) -> dict[str, Any]:
    """ExpressionAttributeNames/Values holding exactly what the expressions use.

    DynamoDB rejects unused placeholders, and every attribute name goes through a placeholder
    because several of ours (``data``, ``ttl``...) are reserved words.
    """
    *parts, values = parts_and_values
    text = " ".join(parts)
    out: dict[str, Any] = {}
    names = set(re.findall(r"#(\w+)", text))
    if names:
        out["ExpressionAttributeNames"] = {f"#{name}": name for name in sorted(names)}
    used = set(re.findall(r":\w+", text))
    if used:
        available = {**_TYPES, ":one": {"N": "1"}, **values}
        out["ExpressionAttributeValues"] = {k: v for k, v in available.items() if k in used}
    return out


def _decode(key: str, item: Item | None) -> _Stored | None:
    """The record in a raw item; :class:`_DamagedItem` for an item this backend did not write."""
    if not item:
        return None
    data = item.get(DATA)
    if not isinstance(data, Mapping) or not isinstance(data.get("B"), bytes):
        raise _DamagedItem(key, DATA, data, "binary")
    version = _integer(item.get(VERSION))
    if version is None or not 1 <= version <= MAX_VERSION:
        raise _DamagedItem(key, VERSION, item.get(VERSION), f"an integer in 1..{MAX_VERSION}")
    expires_at = None
    if EXPIRES_AT in item or EXPIRY in item:
        expires_at = _finite(item.get(EXPIRES_AT))
        if expires_at is None:
            raise _DamagedItem(key, EXPIRES_AT, item.get(EXPIRES_AT), "a finite float as text")
        if not isinstance(item.get(EXPIRY), Mapping) or "N" not in item[EXPIRY]:
            raise _DamagedItem(key, EXPIRY, item.get(EXPIRY), "a number")
    token = item.get(TOKEN)
    mine = token.get("S") if isinstance(token, Mapping) else None  # else no write of ours
    record = VersionedRecord(bytes(data["B"]), version, expires_at)
    return _Stored(record, mine if isinstance(mine, str) else None)


class _DamagedItem(BackendError):
    """An item at ``key`` that no write of this backend produces: it cannot be decoded.

    ``get`` raises it (a ``BackendError`` naming the key), listings skip the item with a
    warning, and writes treat it as absent (KV-DAMAGE-1): ``put`` replaces it.
    """

    def __init__(self, key: str, attribute: str, value: object, expected: str) -> None:
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(
            f"damaged DynamoDB item at key {key!r}: attribute {attribute!r} is {shown}, not "
            f"{expected}; put or delete replaces it"
        )


def _integer(value: object) -> int | None:
    """The exact integer in a DynamoDB number attribute, or None (text, fraction, garbage)."""
    if not isinstance(value, Mapping) or not isinstance(value.get("N"), str):
        return None
    try:
        number = Decimal(value["N"])
    except ArithmeticError:
        return None
    if not number.is_finite() or number != number.to_integral_value():
        return None
    return int(number)


def _finite(value: object) -> float | None:
    """The float in our text expiry attribute, or None unless it is finite."""
    if not isinstance(value, Mapping) or not isinstance(value.get("S"), str):
        return None
    try:
        number = float(value["S"])
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _written_by(attributes: Item | None, token: str) -> bool:
    """Whether the item a failed condition returned is our own write (a retry that landed)."""
    return attributes is not None and attributes.get(TOKEN) == {"S": token}


def _number(value: float) -> str:
    """``value`` as a DynamoDB number, order-preserving.

    ``repr`` is the shortest decimal that round-trips, so distinct floats keep their order;
    magnitudes outside DynamoDB's range (1E-130 .. 1E+126) are clamped, which keeps every
    comparison with a realistic clock reading exact. The exact value lives in ``expires_at``.
    """
    number = Decimal(repr(value))
    if abs(number) > _DYNAMODB_MAX_NUMBER:
        number = _DYNAMODB_MAX_NUMBER.copy_sign(number)
    elif abs(number) < _DYNAMODB_MIN_MAGNITUDE:
        number = Decimal(0)
    return str(number)


def _first_item_after(after_item: str) -> str:
    """The least sort key bound ``b`` with: item > ``after_item`` iff item >= ``b``.

    ``after`` may be any string, but stored items use only the key alphabet. Up to its first
    character outside the alphabet, ``after_item`` is kept; that character is dropped when it
    sorts below the whole alphabet and replaced by DEL (above it) when it sorts above, so the
    bound is plain ASCII that DynamoDB accepts. Appending the alphabet's lowest character
    turns "greater than" into the inclusive bound a ``BETWEEN`` needs.
    """
    for index, char in enumerate(after_item):
        if char not in _ITEM_CHARS:
            kept = after_item[:index]
            if char > _LOWEST_ITEM_CHAR:
                kept += min(char, _ABOVE_ITEM_CHARS)
            return kept + _LOWEST_ITEM_CHAR
    return after_item + _LOWEST_ITEM_CHAR
