"""The DynamoDB backend's access to its table: the boto3 client, its thread pool, its errors.

Kept apart from the contract methods (``backend.py``) because it changes for other reasons: a
botocore upgrade, an engine that answers differently, a new way a request can fail. Every
request goes through :meth:`TableClient.run`, which runs the blocking client off the event loop
and turns what botocore raises into the contract's errors (KV-ERR-1): ``BackendUnavailable``
when no attempt was ever sent, ``BackendError`` otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar, cast

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
)

from pmcp_tasks.errors import BackendError, BackendUnavailable
from reference_backends.causes import describe
from reference_backends.dynamodb.provision import (
    MissingTtl,
    TableFeatures,
    probe_table,
    report_ttl,
)
from reference_backends.dynamodb.table import PK, SK

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

T = TypeVar("T")
Item = Mapping[str, Any]

_TYPES = {":number": {"S": "N"}, ":string": {"S": "S"}}
"""attribute_type's arguments, available to every expression."""
_UPDATE_TOO_LARGE = "Item size to update has exceeded the maximum allowed size"


class TooLargeToUpdate(BackendError):
    """The engine refused an ``UpdateItem`` for the size of the old and new item together."""


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


def expression(*parts_and_values: Any) -> dict[str, Any]:
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


class TableClient:
    """One table through a boto3 client run in a thread pool; opened (probed) on first use.

    ``owns_client``: :meth:`close` closes the client. Without ``executor`` the pool is built
    here with ``max_concurrency`` threads and shut down by :meth:`close`. ``features`` (from an
    earlier probe of the same table) skips the probe; ``missing_ttl`` says how a probe reports
    a table whose TTL does not clean it.
    """

    def __init__(
        self,
        name: str,
        client: DynamoDBClient,
        *,
        owns_client: bool,
        max_concurrency: int,
        executor: Executor | None,
        missing_ttl: MissingTtl,
        features: TableFeatures | None = None,
    ) -> None:
        self.name = name
        self.client = client
        self.executor = (
            executor
            if executor is not None
            else ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="pmcp-dynamodb")
        )
        self.features = features
        self._owns_client = owns_client
        self._owns_executor = executor is None
        self._missing_ttl = missing_ttl
        self._open_lock = asyncio.Lock()
        self._closed = False
        client.meta.events.register(
            "needs-retry.dynamodb", _note_attempt, unique_id="pmcp-tasks-note-attempt"
        )

    async def open(self) -> TableFeatures:
        """Probe the endpoint and table once (:func:`~.provision.probe_table`); idempotent."""
        async with self._open_lock:
            if self.features is None:
                features = await self._call(probe_table, self.client, self.name)
                report_ttl(features.ttl_problem, self.name, self._missing_ttl)
                self.features = features
        return self.features

    def close(self) -> None:
        """Stop the pool and close the client, each only if built here; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns_executor:
            self.executor.shutdown(wait=False, cancel_futures=True)
        if self._owns_client:
            self.client.close()

    async def run(self, operation: Callable[..., T], **kwargs: Any) -> T:
        """Call the blocking client in the pool, opened first; translate errors (KV-ERR-1)."""
        if self.features is None:
            await self.open()
        call = functools.partial(operation, TableName=self.name, **kwargs)
        try:
            return await self._call(_unsent_tracked, call)
        except ClientError as exc:
            raise self._client_error(exc) from exc
        except _Unsent as unsent:
            raise BackendUnavailable(
                f"DynamoDB request to table {self.name!r} not applied, nothing was sent: "
                f"{describe(unsent.cause)}"
            ) from unsent.cause
        except BotoCoreError as exc:
            raise BackendError(
                f"DynamoDB request to table {self.name!r} failed: {describe(exc)}"
            ) from exc

    def _client_error(self, exc: ClientError) -> Exception:
        """What a refusal by the service means here, by its error code."""
        response = cast("Mapping[str, Any]", exc.response)
        code = response.get("Error", {}).get("Code", "")
        if code == "ConditionalCheckFailedException":
            return _ConditionFailed(response.get("Item"))
        if code == "ValidationException" and _UPDATE_TOO_LARGE in str(exc):
            return TooLargeToUpdate(str(exc))
        if code == "ResourceNotFoundException":
            return BackendError(
                f"DynamoDB table {self.name!r} does not exist; create it with "
                "reference_backends.dynamodb.create_table"
            )
        return BackendError(
            f"DynamoDB {exc.operation_name} on table {self.name!r} failed: {describe(exc)}"
        )

    async def conditional(
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
            response = await self.run(operation, **expression(*expressions, values), **kwargs)
        except _ConditionFailed as failed:
            if failed.item or not return_old or self._returns_old_item():
                return False, failed.item
            key = kwargs.get("Key") or {PK: kwargs["Item"][PK], SK: kwargs["Item"][SK]}
            read = await self.run(self.client.get_item, Key=key, ConsistentRead=True)
            return False, read.get("Item")
        return True, cast("Mapping[str, Any]", response).get("Attributes")

    def _returns_old_item(self) -> bool:
        assert self.features is not None  # run opened the table before the write
        return self.features.returns_old_item

    async def scan(
        self, condition: str, values: dict[str, Any]
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Primary keys of the items matching ``condition``, page by page."""
        start: Item | None = None
        while True:
            extra: dict[str, Any] = {} if start is None else {"ExclusiveStartKey": start}
            response = await self.run(
                self.client.scan,
                FilterExpression=condition,
                ProjectionExpression=f"#{PK}, #{SK}",
                ConsistentRead=True,
                **expression(condition, f"#{PK}, #{SK}", values),
                **extra,
            )
            yield [{PK: raw[PK], SK: raw[SK]} for raw in response.get("Items", [])]
            start = response.get("LastEvaluatedKey")
            if start is None:
                return

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in the pool: blocking botocore never runs on the event loop.

        A request in a pool thread cannot be recalled, so a cancelled caller waits for it to
        end before hearing of the cancellation: otherwise the write could land after the
        caller's next write to the key and undo it (KV-CANCEL-1).
        """
        if self._closed:
            raise BackendError("this DynamoDbBackend is closed")
        call = functools.partial(function, *args)
        future = asyncio.get_running_loop().run_in_executor(self.executor, call)
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


class _ConditionFailed(Exception):
    """Internal: a write's condition failed; ``item`` is what DynamoDB returned (ALL_OLD)."""

    def __init__(self, item: Item | None) -> None:
        super().__init__("conditional check failed")
        self.item = item
