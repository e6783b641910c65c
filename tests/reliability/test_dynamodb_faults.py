"""The DynamoDB backend under throttling, 5xx and lost replies (botocore event hooks, on moto).

Faults are injected into a dedicated boto3 client, never the kit's shared one:

* ``before-send`` raises a connection error before a write is sent (nothing applied), or
  answers it with HTTP 400 ``ThrottlingException`` / 500 ``InternalServerError``. botocore
  calls every ``before-send`` handler, moto's too, so on moto in-process that error reply
  replaces the reply of a write that *landed*: the ambiguous case;
* ``needs-retry`` makes botocore resend a write that succeeded (its reply "lost"), so the
  resend meets its own write;
* ``after-call`` raises a connection error after a write succeeded, so the error reaches the
  backend and the store (applied, reported as failed).

The promise is the one of docs/reliability.md: the outcome is recognised as applied or raised as
``StorageFailure``/``BackendError``, never a phantom conflict or a phantom success.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ConnectionClosedError
from servers import MotoHttp

from conformance.harness import ManualClock, fresh_namespace
from pmcp_tasks import (
    BackendError,
    GenericTaskStore,
    StorageFailure,
    StoreConfig,
    TaskRecord,
    TaskStatus,
)
from pmcp_tasks.keys import task_key
from reference_backends.dynamodb import DynamoDbBackend, kit_factory
from reference_backends.dynamodb.client import make_client
from reference_backends.dynamodb.kit import DEFAULT_TABLE, DynamoDbKitHooks

pytestmark = pytest.mark.anyio

WRITES = ("PutItem", "UpdateItem")


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _error_response(status: int, code: str) -> AWSResponse:
    body = f'{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"injected"}}'
    headers = HTTPHeaders()
    headers["x-amzn-RequestId"] = "injected"
    headers["Content-Type"] = "application/x-amz-json-1.0"
    return AWSResponse("https://injected", status, headers, _Body(body.encode()))


class Injector:
    """Counts and injects faults on one client's write operations."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.refuse: list[tuple[int, str]] = []  # (status, code) replies for the next writes
        self.unsent = 0  # connection errors before the next writes are sent
        self.lose_replies = 0  # resend the next successful writes (needs-retry)
        self.raise_after = 0  # raise after the next successful writes (after-call)
        self.injected = 0
        for op in WRITES:
            events = client.meta.events
            events.register_first(f"before-send.dynamodb.{op}", self._before_send)
            events.register_first(f"needs-retry.dynamodb.{op}", self._needs_retry)
            events.register(f"after-call.dynamodb.{op}", self._after_call)

    def _before_send(self, **_: Any) -> AWSResponse | None:
        if self.unsent:
            self.unsent -= 1
            self.injected += 1
            raise ConnectionClosedError(endpoint_url="https://injected")
        if not self.refuse:
            return None
        self.injected += 1
        return _error_response(*self.refuse.pop(0))

    def _needs_retry(self, response: Any = None, **_: Any) -> float | None:
        if self.lose_replies and response is not None and response[0].status_code == 200:
            self.lose_replies -= 1
            self.injected += 1
            return 0.0  # botocore resends the very same request at once
        return None

    def _after_call(self, http_response: Any = None, **_: Any) -> None:
        if self.raise_after and http_response is not None and http_response.status_code == 200:
            self.raise_after -= 1
            self.injected += 1
            raise ConnectionClosedError(endpoint_url="https://injected")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=[1, 3], ids=["no-botocore-retries", "botocore-retries"])
async def injected(request: pytest.FixtureRequest, clock: ManualClock) -> Any:
    kit_factory(namespace="warm-up", clock=clock)  # starts moto in-process, creates the table
    client = make_client(region_name="us-east-1", max_attempts=request.param)
    backend = DynamoDbBackend.from_client(
        client, DEFAULT_TABLE, namespace=fresh_namespace("rel"), clock=clock
    )
    yield Injector(client), GenericTaskStore(backend, StoreConfig(), clock), backend
    await DynamoDbKitHooks(backend).drop_namespace()
    await backend.aclose()


@pytest.mark.parametrize(
    "fault",
    ["ThrottlingException", "InternalServerError", "unsent"],
    ids=["throttled", "server-error", "unsent"],
)
async def test_a_write_that_meets_one_fault_is_applied_once(injected: Any, fault: str) -> None:
    """An error reply to a write that landed is a success; an unsent write is sent again."""
    injector, store, backend = injected
    task = await store.create("alice", variables={"a": 1})
    if fault == "unsent":
        injector.unsent = 1
    else:
        injector.refuse = [(400 if fault == "ThrottlingException" else 500, fault)]
    updated = await store.set_variables("alice", task.task_id, {"b": 2})
    assert injector.injected == 1
    stored = await backend.get(task_key("alice", task.task_id))
    assert stored.version == 2
    assert TaskRecord.from_json(stored.data, task.task_id) == updated


async def test_persistent_connection_failure_is_a_storage_failure(injected: Any) -> None:
    injector, store, _ = injected
    task = await store.create("alice", variables={"a": 1})
    injector.unsent = 30
    with pytest.raises(StorageFailure) as raised:
        await store.set_variables("alice", task.task_id, {"a": 2})
    assert raised.value.code == -32603
    assert isinstance(raised.value.__cause__, BackendError)
    assert "may or may not" not in str(raised.value)  # every read-back saw it unchanged
    assert (await store.get("alice", task.task_id)).variables == {"a": 1}


async def test_resent_write_meets_its_own_write(injected: Any) -> None:
    injector, store, backend = injected
    task = await store.create("alice")
    injector.lose_replies = 1
    moved = await store.require_input("alice", task.task_id, "which file?")
    assert injector.injected == 1
    assert moved.status is TaskStatus.INPUT_REQUIRED
    stored = await backend.get(task_key("alice", task.task_id))
    assert stored.version == 2
    assert TaskRecord.from_json(stored.data, task.task_id) == moved


async def test_error_after_an_applied_write_is_recognised(injected: Any) -> None:
    injector, store, backend = injected
    task = await store.create("alice")
    injector.raise_after = 1
    moved = await store.require_input("alice", task.task_id, "which file?")
    assert injector.injected == 1
    assert moved.status is TaskStatus.INPUT_REQUIRED  # not an invalid self-transition
    stored = await backend.get(task_key("alice", task.task_id))
    assert stored.version == 2
    assert TaskRecord.from_json(stored.data, task.task_id) == moved


# ------------------------------------------------- two clients on moto's server and dynalite


@pytest.fixture(params=["moto-server", "dynalite"])
def endpoint(request: pytest.FixtureRequest) -> str:
    if request.param == "dynalite":
        return str(request.getfixturevalue("dynalite"))
    moto_http: MotoHttp = request.getfixturevalue("moto_http")
    return moto_http.url


async def test_two_clients_100_concurrent_updates_lose_nothing(
    endpoint: str, clock: ManualClock
) -> None:
    """On dynalite, every lost race goes through the read-back of a failed condition."""
    namespace = fresh_namespace("rel")
    backends = [
        kit_factory(
            namespace=namespace, clock=clock, dynamodb_endpoint=endpoint, missing_ttl="ignore"
        ).backend
        for _ in range(2)
    ]
    stores = [GenericTaskStore(backend, StoreConfig(), clock) for backend in backends]
    task = await stores[0].create("alice")
    await asyncio.gather(
        *(stores[i % 2].set_variables("alice", task.task_id, {f"k{i}": i}) for i in range(100))
    )
    for store in stores:
        variables = (await store.get("alice", task.task_id)).variables
        assert variables == {f"k{i}": i for i in range(100)}
    await DynamoDbKitHooks(backends[0]).drop_namespace()
    for backend in backends:
        await backend.aclose()
