"""Section 3: DynamoDbBackend against raw boto3 on moto's server over HTTP.

Both sides share one boto3 client (built by the backend's own ``make_client``, so the same
retry and pool settings) and send the same requests: ``GetItem`` with a consistent read,
``UpdateItem`` for put, conditional ``PutItem`` for CAS, conditional ``DeleteItem``, and one
``Query`` page. Requests are counted with a botocore ``before-send`` event hook, which fires
once per HTTP request, retries included.

The client blocks, so an asyncio caller must run it in a thread; the raw side does that with
``run_in_executor`` on a pool like the backend's, and the ratio then measures the backend's own
code. (Calling the client straight from the event loop thread measured slower, 3.8-9.4 ms
against 2.8-4.6 ms per ``GetItem`` in the pool on the loaded development machine, which would
flatter the backend.)
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import boto3

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
from reference_backends.dynamodb import DynamoDbBackend, create_table
from reference_backends.dynamodb.client import make_client

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TARGET = 1.15
ITERATIONS = 100
TABLE = "pmcp-bench"
_TTL_GRACE = 3600  # DynamoDbBackend's default ttl_grace
_MAX_VERSION = str(2**63 - 1)

_LIVE = "(attribute_not_exists(#expiry) OR #expiry > :now)"
_PUT_UPDATE = (
    "SET #data = :data, #token = :token, #version = if_not_exists(#version, :zero) + :one, "
    "#expires_at = :expires_at, #expiry = :expiry, #ttl = :ttl"
)
_PUT_CONDITION = (
    f"{_LIVE} AND (attribute_not_exists(#version) OR #version < :max) "
    "AND (attribute_not_exists(#token) OR #token <> :token)"
)


class RequestCounter:
    """Counts HTTP requests a client sends (botocore's ``before-send`` event)."""

    def __init__(self, client: DynamoDBClient) -> None:
        self.sent = 0
        client.meta.events.register("before-send.dynamodb.*", self._count)

    def _count(self, **kwargs: Any) -> None:
        self.sent += 1

    def __call__(self) -> int:
        return self.sent


def _names(*names: str) -> dict[str, str]:
    return {f"#{name}": name for name in names}


class RawBoto3:
    """The backend's requests, sent with the boto3 client directly."""

    def __init__(self, client: DynamoDBClient, namespace: str) -> None:
        self.client = client
        self.pool = ThreadPoolExecutor(10, thread_name_prefix="raw-boto3")
        self.pk_prefix = namespace + "#"
        self.versions: dict[int, int] = {}
        self.tokens = 0

    async def call(self, operation: Callable[..., Any], **kwargs: Any) -> Any:
        """The blocking client in a thread, as an asyncio caller has to run it."""
        call = functools.partial(operation, TableName=TABLE, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.pool, call)

    def key(self, partition: str, item_: str) -> dict[str, Any]:
        return {"pk": {"S": self.pk_prefix + partition}, "sk": {"S": item_}}

    def _expiry_values(self) -> dict[str, Any]:
        expires_at = expiry()
        return {
            ":expires_at": {"S": repr(expires_at)},
            ":expiry": {"N": repr(expires_at)},
            ":ttl": {"N": str(math.ceil(expires_at) + _TTL_GRACE)},
        }

    def _token(self) -> str:
        self.tokens += 1
        return str(self.tokens)

    async def write(self, partition: str, item_: str) -> None:
        await self._put(partition, item_)

    async def _put(self, partition: str, item_: str) -> int:
        response = await self.call(
            self.client.update_item,
            Key=self.key(partition, item_),
            UpdateExpression=_PUT_UPDATE,
            ConditionExpression=_PUT_CONDITION,
            ReturnValues="UPDATED_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ExpressionAttributeNames=_names(
                "data", "token", "version", "expires_at", "expiry", "ttl"
            ),
            ExpressionAttributeValues={
                ":data": {"B": PAYLOAD},
                ":token": {"S": self._token()},
                ":zero": {"N": "0"},
                ":one": {"N": "1"},
                ":max": {"N": _MAX_VERSION},
                ":now": {"N": repr(time.time())},
                **self._expiry_values(),
            },
        )
        return int(response["Attributes"]["version"]["N"])

    async def get(self, worker: int, i: int) -> object:
        return await self.call(
            self.client.get_item, Key=self.key("bench", item("get", worker)), ConsistentRead=True
        )

    async def put(self, worker: int, i: int) -> object:
        return await self._put("bench", item("put", worker))

    async def cas_setup(self, workers: int, per_worker: int) -> None:
        for worker in range(workers):
            self.versions[worker] = await self._put("bench", item("cas", worker))

    async def cas(self, worker: int, i: int) -> object:
        values = self._expiry_values()
        expected = self.versions[worker]
        record = self.key("bench", item("cas", worker))
        record.update(
            data={"B": PAYLOAD},
            version={"N": str(expected + 1)},
            token={"S": self._token()},
            expires_at=values[":expires_at"],
            expiry=values[":expiry"],
            ttl=values[":ttl"],
        )
        response = await self.call(
            self.client.put_item,
            Item=record,
            ConditionExpression=f"#version = :expected AND {_LIVE}",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ExpressionAttributeNames=_names("version", "expiry"),
            ExpressionAttributeValues={
                ":expected": {"N": str(expected)},
                ":now": {"N": repr(time.time())},
            },
        )
        self.versions[worker] = expected + 1
        return response

    async def delete(self, worker: int, i: int) -> object:
        return await self.call(
            self.client.delete_item,
            Key=self.key("bench", item("del", worker, i)),
            ConditionExpression=f"attribute_exists(#pk) AND {_LIVE}",
            ExpressionAttributeNames=_names("expiry", "pk"),
            ExpressionAttributeValues={":now": {"N": repr(time.time())}},
        )

    async def page(self, worker: int, i: int) -> object:
        response = await self.call(
            self.client.query,
            KeyConditionExpression="#pk = :pk",
            ProjectionExpression="#sk, #data, #version, #expires_at",
            ConsistentRead=True,
            ExpressionAttributeNames=_names("data", "expires_at", "pk", "sk", "version"),
            ExpressionAttributeValues={":pk": {"S": self.pk_prefix + "page"}},
            Limit=PAGE_SIZE,
        )
        assert len(response["Items"]) == PAGE_SIZE, "short page"
        return response

    def sides(self, requests: RequestCounter) -> dict[str, Side]:
        return {
            "get": prepared(self.get, self.write, "get", requests),
            "put": Side(self.put, None, requests),
            "cas": Side(self.cas, self.cas_setup, requests),
            "delete": prepared(self.delete, self.write, "del", requests),
            "list page": prepared(self.page, self.write, "page", requests),
        }


def open_client(endpoint: str) -> DynamoDBClient:
    """A client on the moto server with dummy credentials, and the benchmark's table."""
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    client = make_client(endpoint_url=endpoint, region_name="us-east-1", session=session)
    tables = client.list_tables()["TableNames"]
    if TABLE not in tables:
        create_table(client, TABLE)
    return client


async def run(settings: Settings, endpoint: str) -> list[OpRow]:
    client = open_client(endpoint)
    requests = RequestCounter(client)
    backend = DynamoDbBackend.from_client(client, TABLE, namespace="bench-backend")
    subject = backend_sides(backend, requests)
    raw = RawBoto3(client, "bench-raw")
    baseline = raw.sides(requests)
    rows = []
    try:
        for operation in OPERATIONS:
            full = ITERATIONS // (10 if operation == "list page" else 1)
            result = await compare(
                subject[operation],
                baseline[operation],
                iterations=settings.iterations(full),
                rounds=min(settings.rounds, 5),
            )
            rows.append(OpRow.measured("dynamodb", operation, result, TARGET))
    finally:
        await backend.aclose()
        raw.pool.shutdown()
        client.close()
    return rows
