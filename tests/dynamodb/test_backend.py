"""What the kit cannot see from outside: requests per operation, the stored item, retries, errors.

Every test runs on moto in-process and on moto's server over HTTP (``target``).
"""

from __future__ import annotations

import asyncio
import math
import socket
import string
import threading
import uuid
from concurrent.futures import Executor
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from dynamodb_targets import Target, dummy_session, stored
from hypothesis import given
from hypothesis import strategies as st
from servers import MotoHttp, free_port

from conformance.harness import ManualClock, fresh_namespace
from pmcp_tasks import GenericTaskStore, StorageFailure
from pmcp_tasks.backend import MAX_VERSION
from pmcp_tasks.errors import (
    BackendError,
    BackendUnavailable,
    CapacityExceeded,
    RecordNotFound,
    VersionConflict,
)
from reference_backends.dynamodb import (
    MAX_RECORD_BYTES,
    DynamoDbBackend,
    TableFeatures,
    create_table,
    kit_factory,
)
from reference_backends.dynamodb.backend import DynamoDbInternals
from reference_backends.dynamodb.client import make_client
from reference_backends.dynamodb.codec import first_item_after
from reference_backends.dynamodb.kit import DEFAULT_TABLE, DynamoDbKitHooks
from reference_backends.dynamodb.table import (
    ITEM_LIMIT,
    ITEM_OVERHEAD_BOUND,
    MAX_NAMESPACE_BYTES,
    partition_key_prefix,
)

pytestmark = pytest.mark.anyio


def raw_item(target: Target, backend: DynamoDbBackend, key: str) -> dict[str, Any] | None:
    """The item as DynamoDB holds it, read past the backend."""
    partition, item = key.split(":")
    response = target.client().get_item(
        TableName=DEFAULT_TABLE,
        Key=DynamoDbInternals(backend).codec.key(partition, item),
        ConsistentRead=True,
    )
    return response.get("Item")


def lose_first_reply(client: Any, operation: str) -> list[int]:
    """Make botocore resend the first ``operation`` request after it succeeded.

    That is what a reply lost on the network looks like to the server: the write landed, the
    client never heard, and botocore's retry sends the very same request again.
    """
    lost: list[int] = []

    def resend(attempts: int, response: Any, **_: Any) -> int | None:
        if not lost and response is not None and response[0].status_code == 200:
            lost.append(attempts)
            return 0  # retry at once
        return None

    client.meta.events.register_first(f"needs-retry.dynamodb.{operation}", resend)
    return lost


async def test_data_round_trips_byte_exact_including_empty(backend: DynamoDbBackend) -> None:
    for index, data in enumerate([b"", b"\x00", bytes(range(256)), b"\xff\xfe"]):
        key = f"p:k{index}"
        assert await backend.put(key, data) == 1
        assert await backend.put_if_version(key, data, 1) == 2
        record = await backend.get(key)
        assert record is not None
        assert record.data == data
        assert record.version == 2


async def test_one_request_per_operation(target: Target, clock: ManualClock) -> None:
    backend, log = await target.logged(clock=clock)
    try:
        assert await backend.put("p:a", b"1") == 1
        assert log.take() == {"UpdateItem": 1}
        assert await backend.put("p:a", b"2", expires_at=clock() + 60) == 2
        assert log.take() == {"UpdateItem": 1}
        assert await backend.get("p:a") is not None
        assert log.take() == {"GetItem": 1}
        assert await backend.put_if_version("p:a", b"3", 2) == 3
        assert log.take() == {"PutItem": 1}
        assert await backend.put_if_version("p:b", b"", 0) == 1
        assert log.take() == {"PutItem": 1}
        with pytest.raises(VersionConflict):
            await backend.put_if_version("p:b", b"", 0)
        assert log.take() == {"PutItem": 1, **target.read_after_failure()}
        assert await backend.delete("p:b") is True
        assert log.take() == {"DeleteItem": 1}
        assert await backend.delete("p:b") is False
        assert log.take() == {"DeleteItem": 1}
        for item in "cdef":
            await backend.put(f"p:{item}", b"")
        log.take()
        assert [k for k, _ in await backend.list_by_prefix("p:", limit=2)] == ["p:a", "p:c"]
        assert log.take() == {"Query": 1}
        assert [k for k, _ in await backend.list_by_prefix("p:", after="p:c", limit=2)] == [
            "p:d",
            "p:e",
        ]
        assert log.take() == {"Query": 1}
        assert len(await backend.list_by_prefix("p:")) == 5
        assert log.take() == {"Query": 1}
        # The one documented exception: an expired item needs the version-1 PutItem too.
        await backend.put("p:x", b"", expires_at=clock() + 1)
        clock.advance(1)
        log.take()
        assert await backend.put("p:x", b"") == 1
        assert log.take() == {"UpdateItem": 1, "PutItem": 1, **target.read_after_failure()}
        assert "MainThread" not in log.threads  # the event loop's thread never did I/O
    finally:
        await DynamoDbKitHooks(backend).drop_namespace()
        await backend.aclose()


async def test_listing_fills_pages_past_expired_items_in_few_requests(
    target: Target, clock: ManualClock
) -> None:
    backend, log = await target.logged(clock=clock)
    try:
        live = {"p:i00", "p:i04", "p:i61"}
        for index in range(62):
            key = f"p:i{index:02}"
            await backend.put(key, b"", expires_at=None if key in live else clock() + 5)
        clock.advance(5)
        log.take()
        assert [k for k, _ in await backend.list_by_prefix("p:", limit=3)] == sorted(live)
        # Pages of 3, 6, 12, 24, 48 items: the round trips grow with log(expired), never
        # with the number of records (KV-LIST-6), and the page is still full (KV-LIST-5).
        assert log.take() == {"Query": 5}
    finally:
        await DynamoDbKitHooks(backend).drop_namespace()
        await backend.aclose()


async def test_versions_stay_exact_near_2_53_and_2_63(backend: DynamoDbBackend) -> None:
    await DynamoDbKitHooks(backend).seed("p:a", b"x", 2**53, None)
    assert await backend.put("p:a", b"y") == 2**53 + 1
    assert await backend.put_if_version("p:a", b"z", 2**53 + 1) == 2**53 + 2
    record = await backend.get("p:a")
    assert record is not None
    assert type(record.version) is int
    assert record.version == 2**53 + 2

    await DynamoDbKitHooks(backend).seed("p:b", b"x", MAX_VERSION - 1, None)
    assert await backend.put("p:b", b"y") == MAX_VERSION
    with pytest.raises(CapacityExceeded):
        await backend.put("p:b", b"z")
    with pytest.raises(CapacityExceeded):
        await backend.put_if_version("p:b", b"z", MAX_VERSION)
    with pytest.raises(VersionConflict) as conflict:
        await backend.put_if_version("p:b", b"z", MAX_VERSION - 1)
    assert conflict.value.actual == MAX_VERSION
    with pytest.raises(RecordNotFound):
        await backend.put_if_version("p:none", b"z", MAX_VERSION)
    record = await backend.get("p:b")
    assert record is not None
    assert (record.data, record.version) == (b"y", MAX_VERSION)


async def test_size_cap_is_exact_and_checked_before_sending(target: Target) -> None:
    backend, log = await target.logged()
    try:
        largest = bytes(range(256)) * (MAX_RECORD_BYTES // 256) + b"\x01" * (MAX_RECORD_BYTES % 256)
        assert len(largest) == MAX_RECORD_BYTES
        assert await backend.put("p:a", largest) == 1
        assert await backend.put_if_version("p:a", largest[::-1], 1) == 2
        log.take()
        with pytest.raises(CapacityExceeded):
            await backend.put("p:a", largest + b"\x00")
        with pytest.raises(CapacityExceeded):
            await backend.put_if_version("p:a", largest + b"\x00", 2)
        assert log.take() == {}  # refused before any request: nothing can have been written
        record = await backend.get("p:a")
        assert record is not None
        assert (record.data, record.version) == (largest[::-1], 2)
    finally:
        await DynamoDbKitHooks(backend).drop_namespace()
        await backend.aclose()


async def test_put_over_a_large_record(backend: DynamoDbBackend) -> None:
    """moto adds the replaced value's size when an ``UpdateItem`` overwrites data and refuses
    the update; the backend then writes the record with a conditional ``PutItem`` on the version
    it read (docs/backends/dynamodb.md), so the put succeeds on every engine."""
    await backend.put("p:a", b"\x01" * MAX_RECORD_BYTES)
    assert await backend.put("p:a", b"\x02" * MAX_RECORD_BYTES) == 2
    assert await backend.put("p:a", b"\x03" * MAX_RECORD_BYTES, expires_at=None) == 3
    record = await backend.get("p:a")
    assert record is not None
    assert (record.data, record.version) == (b"\x03" * MAX_RECORD_BYTES, 3)


async def test_worst_case_item_fits_dynamodb(target: Target, clock: ManualClock) -> None:
    """The size arithmetic of table.py, checked against DynamoDB's (moto's) own limit."""
    assert ITEM_OVERHEAD_BOUND + MAX_RECORD_BYTES <= ITEM_LIMIT
    namespace = "n" * (MAX_NAMESPACE_BYTES - 16) + uuid.uuid4().hex[:16]
    backend = target.backend(namespace=namespace, clock=clock)
    key = "p" * 511 + ":" + "i" * 512
    try:
        expires_at = -1.2345678901234567e17  # long repr, expiry and ttl numbers; expired
        await DynamoDbKitHooks(backend).seed(
            key, b"\xff" * MAX_RECORD_BYTES, MAX_VERSION, expires_at
        )
        assert await backend.put_if_version(key, b"\xff" * MAX_RECORD_BYTES, 0) == 1
        assert (await backend.get(key)) is not None
    finally:
        await DynamoDbKitHooks(backend).drop_namespace()
        await backend.aclose()
    with pytest.raises(ValueError, match="namespace"):
        partition_key_prefix("n" * (MAX_NAMESPACE_BYTES + 1))


async def test_expired_items_are_filtered_by_the_injected_clock(
    target: Target, backend: DynamoDbBackend, clock: ManualClock
) -> None:
    expires_at = clock() + 10.25
    assert await backend.put("p:a", b"old", expires_at=expires_at) == 1
    stored = raw_item(target, backend, "p:a")
    assert stored is not None
    # Native TTL comes a grace period after the expiry: never earlier than the clock says.
    assert int(stored["ttl"]["N"]) == math.ceil(expires_at) + 3600
    assert float(stored["expires_at"]["S"]) == expires_at
    clock.set(expires_at)  # KV-LIVE-1: at the expiry it is already gone
    assert await backend.get("p:a") is None
    assert await backend.list_by_prefix("p:") == []
    assert await backend.delete("p:a") is False
    with pytest.raises(RecordNotFound):
        await backend.put_if_version("p:a", b"new", 1)
    assert raw_item(target, backend, "p:a") is not None  # still there for TTL to reclaim
    assert await backend.put("p:a", b"new") == 1  # an expired item restarts at 1
    stored = raw_item(target, backend, "p:a")
    assert stored is not None
    assert {"ttl", "expiry", "expires_at"}.isdisjoint(stored)


async def test_cleanup_deletes_only_this_namespaces_expired_items(
    target: Target, clock: ManualClock
) -> None:
    # '#' separates namespace and partition in the partition key: encoding keeps them apart.
    name = fresh_namespace("dyn")
    mine = target.backend(namespace=name, clock=clock)
    other = target.backend(namespace=name + "#p", clock=clock)
    try:
        for backend in (mine, other):
            await backend.put("p:gone", b"", expires_at=clock() + 1)
            await backend.put("p:kept", b"", expires_at=clock() + 100)
            await backend.put("p:forever", b"")
        clock.advance(1)
        assert await mine.cleanup_expired() == 1
        assert raw_item(target, mine, "p:gone") is None
        assert raw_item(target, other, "p:gone") is not None
        assert [k for k, _ in await mine.list_by_prefix("p:")] == ["p:forever", "p:kept"]
        assert await other.cleanup_expired() == 1
        assert await mine.cleanup_expired() == 0
    finally:
        for backend in (mine, other):
            await DynamoDbKitHooks(backend).drop_namespace()
            await backend.aclose()


async def test_ttl_grace_is_configurable(target: Target, clock: ManualClock) -> None:
    backend = target.backend(clock=clock, ttl_grace=0)
    try:
        await backend.put("p:a", b"", expires_at=clock() + 0.5)
        stored = raw_item(target, backend, "p:a")
        assert stored is not None
        assert int(stored["ttl"]["N"]) == math.ceil(clock() + 0.5)
    finally:
        await DynamoDbKitHooks(backend).drop_namespace()
        await backend.aclose()


async def test_conflict_reports_the_real_version_and_writes_nothing(
    backend: DynamoDbBackend,
) -> None:
    await backend.put("p:a", b"one")
    await backend.put("p:a", b"two")
    with pytest.raises(VersionConflict) as stale:
        await backend.put_if_version("p:a", b"x", 1)
    assert (stale.value.expected, stale.value.actual) == (1, 2)
    with pytest.raises(VersionConflict) as create:
        await backend.put_if_version("p:a", b"x", 0)
    assert (create.value.expected, create.value.actual) == (0, 2)
    record = await backend.get("p:a")
    assert record is not None
    assert (record.data, record.version) == (b"two", 2)


@pytest.mark.parametrize("expected", [0, 1])
async def test_retried_cas_recognises_its_own_success(target: Target, expected: int) -> None:
    backend, log = await target.logged()
    client = log.client
    try:
        if expected:
            await backend.put("p:a", b"before")
        log.take()
        lost = lose_first_reply(client, "PutItem")
        assert await backend.put_if_version("p:a", b"mine", expected) == expected + 1
        assert lost == [1]
        assert log.take() == {"PutItem": 2, **target.read_after_failure()}
        assert await stored(backend, "p:a") == (b"mine", expected + 1)
    finally:
        await DynamoDbKitHooks(backend).drop_namespace()
        await backend.aclose()


async def test_retried_put_bumps_the_version_once(target: Target) -> None:
    backend, log = await target.logged()
    client = log.client
    try:
        await backend.put("p:a", b"before")
        log.take()
        lost = lose_first_reply(client, "UpdateItem")
        assert await backend.put("p:a", b"mine") == 2
        assert lost == [1]
        assert log.take() == {"UpdateItem": 2, **target.read_after_failure()}
        record = await backend.get("p:a")
        assert record is not None
        assert (record.data, record.version) == (b"mine", 2)
    finally:
        await DynamoDbKitHooks(backend).drop_namespace()
        await backend.aclose()


async def test_concurrent_puts_hand_out_distinct_versions(backend: DynamoDbBackend) -> None:
    versions = await asyncio.gather(*(backend.put("p:a", b"%d" % i) for i in range(20)))
    assert sorted(versions) == list(range(1, 21))


async def test_missing_table_is_a_backend_error_that_says_what_to_do(target: Target) -> None:
    name = "no-such-table-" + uuid.uuid4().hex[:8]
    backend = target.backend(table=name)
    try:
        with pytest.raises(BackendError, match="create_table") as raised:
            await backend.put("p:a", b"")
        assert isinstance(raised.value.__cause__, ClientError)
    finally:
        await backend.aclose()
    with pytest.raises(ClientError, match="ResourceNotFound"):  # and it did not create one
        target.client().describe_table(TableName=name)


@pytest.mark.parametrize("attempts", [1, 3])
async def test_refused_connection_is_reported_as_not_applied(attempts: int) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = make_client(
        endpoint_url=url, region_name="us-east-1", max_attempts=attempts, session=dummy_session()
    )
    features = TableFeatures(returns_old_item=True, ttl="ENABLED on 'ttl'", ttl_problem=None)
    backend = DynamoDbBackend.from_client(client, "t", namespace="n", features=features)
    try:
        with pytest.raises(BackendUnavailable) as raised:
            await backend.put("p:a", b"")
        assert isinstance(raised.value.__cause__, EndpointConnectionError)
        message = str(raised.value)
        assert "not applied, nothing was sent: EndpointConnectionError: " in message
        assert url in message
    finally:
        await backend.aclose()
        client.close()


async def test_store_reports_a_refused_endpoint_as_not_applied() -> None:
    """The store needs no read-back for ``BackendUnavailable``: its message says nothing landed."""
    client = make_client(
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region_name="us-east-1",
        max_attempts=1,
        session=dummy_session(),
    )
    features = TableFeatures(returns_old_item=True, ttl="ENABLED on 'ttl'", ttl_problem=None)
    backend = DynamoDbBackend.from_client(client, "t", namespace="n", features=features)
    try:
        with pytest.raises(StorageFailure) as raised:
            await GenericTaskStore(backend).create("alice")
        assert isinstance(raised.value.__cause__, BackendUnavailable)
        assert "may or may not" not in raised.value.message
        assert "not applied, nothing was sent" in raised.value.message
    finally:
        await backend.aclose()
        client.close()


async def test_connection_dropped_after_sending_is_not_called_not_applied() -> None:
    """A peer that accepts and closes: the request may have gone out, so no "not applied"."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"

        def drop_connections() -> None:
            for _ in range(2):
                connection, _ = listener.accept()
                connection.recv(65536)  # the request arrived
                connection.close()

        dropper = threading.Thread(target=drop_connections)
        dropper.start()
        client = make_client(
            endpoint_url=url, region_name="us-east-1", max_attempts=2, session=dummy_session()
        )
        features = TableFeatures(returns_old_item=True, ttl="ENABLED on 'ttl'", ttl_problem=None)
        backend = DynamoDbBackend.from_client(client, "t", namespace="n", features=features)
        try:
            with pytest.raises(BackendError) as raised:
                await backend.put("p:a", b"")
        finally:
            await backend.aclose()
            client.close()
            dropper.join()
    message = str(raised.value)
    assert not isinstance(raised.value, BackendUnavailable)
    assert "not applied" not in message
    assert f"DynamoDB request to table 't' failed: {type(raised.value.__cause__).__name__}: " in (
        message
    )


async def test_closed_backend_refuses_calls_and_closes_twice(target: Target) -> None:
    backend = target.backend()
    await backend.aclose()
    await backend.aclose()
    with pytest.raises(BackendError, match="closed"):
        await backend.get("p:a")


def pool_threads(executor: Executor, workers: int) -> int:
    """How many threads ``executor`` runs at once (a pool has no public size to read).

    Each job waits until all ``2 * workers`` are submitted, so every submit finds the threads
    busy and the pool starts another one while it may: the jobs ran on exactly that many.
    """
    gate = threading.Event()

    def job() -> str:
        gate.wait()
        return threading.current_thread().name

    jobs = [executor.submit(job) for _ in range(2 * workers)]
    gate.set()
    return len({done.result() for done in jobs})


def test_pool_and_connection_pool_are_sized_together() -> None:
    backend = DynamoDbBackend(
        "t",
        namespace="n",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        max_concurrency=4,
        max_attempts=2,
    )
    table = DynamoDbInternals(backend).table
    assert table.client.meta.config.max_pool_connections == 4  # type: ignore[attr-defined]
    retries = table.client.meta.config.retries  # type: ignore[attr-defined]
    assert retries == {"mode": "standard", "total_max_attempts": 2}  # tries in all
    assert table.client.meta.endpoint_url == "http://127.0.0.1:1"
    assert pool_threads(table.executor, 4) == 4
    asyncio.run(backend.aclose())


def test_a_client_and_client_settings_cannot_be_combined() -> None:
    """Two explicit ways: settings build a client, ``from_client`` takes one and its settings."""
    client = make_client(region_name="us-east-1", session=dummy_session())
    try:
        with pytest.raises(TypeError, match="client"):
            DynamoDbBackend("t", namespace="n", client=client)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="endpoint_url"):
            DynamoDbBackend.from_client(  # type: ignore[call-arg]
                client, "t", namespace="n", endpoint_url="http://127.0.0.1:1"
            )
        backend = DynamoDbBackend.from_client(client, "t", namespace="n", max_concurrency=3)
        table = DynamoDbInternals(backend).table
        assert table.client is client
        assert pool_threads(table.executor, 3) == 3
        asyncio.run(backend.aclose())
        assert client.meta.config.max_pool_connections == 10  # type: ignore[attr-defined]
    finally:
        client.close()


def test_bad_constructor_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError, match="table_name"):
        DynamoDbBackend("", namespace="n", region_name="us-east-1")
    with pytest.raises(ValueError, match="namespace"):
        DynamoDbBackend("t", namespace="", region_name="us-east-1")
    with pytest.raises(ValueError, match="max_concurrency must be >= 1 and ttl_grace >= 0, not 0"):
        DynamoDbBackend("t", namespace="n", region_name="us-east-1", max_concurrency=0)
    with pytest.raises(ValueError, match="max_attempts must be >= 1, not 0"):
        DynamoDbBackend("t", namespace="n", region_name="us-east-1", max_attempts=0)
    with pytest.raises(ValueError, match="missing_ttl must be one of error, warn, ignore"):
        DynamoDbBackend("t", namespace="n", region_name="us-east-1", missing_ttl="loud")  # type: ignore[arg-type]


async def test_http_target_really_goes_over_http(moto_http: MotoHttp) -> None:
    backend = kit_factory(
        namespace=fresh_namespace("dyn"), clock=ManualClock(), dynamodb_endpoint=moto_http.url
    ).backend
    try:
        before = moto_http.app.requests
        await backend.put("p:a", b"")
        assert moto_http.app.requests == before + 1
    finally:
        await DynamoDbKitHooks(backend).drop_namespace()
        await backend.aclose()


def test_kit_factory_rejects_unknown_options_and_missing_tables(moto_http: MotoHttp) -> None:
    with pytest.raises(ValueError, match="unknown dynamodb backend options: colour"):
        kit_factory(namespace="n", clock=ManualClock(), colour="blue")
    with pytest.raises(ValueError, match="create_table must be"):
        kit_factory(namespace="n", clock=ManualClock(), create_table="yes")
    with pytest.raises(ValueError, match="create_table=true"):
        kit_factory(
            namespace="n",
            clock=ManualClock(),
            dynamodb_endpoint=moto_http.url,
            table="absent-" + uuid.uuid4().hex[:8],
            create_table="false",
        )


async def test_kit_factory_aws_target_needs_an_existing_table() -> None:
    """``dynamodb_endpoint=aws`` goes to boto3's default endpoint, which moto in-process
    intercepts here: the option plumbing is tested without credentials or network."""
    kit_factory(namespace="warm-up", clock=ManualClock())  # moto in-process is on from here
    with pytest.raises(ValueError, match="create_table=true"):
        kit_factory(
            namespace="n",
            clock=ManualClock(),
            dynamodb_endpoint="aws",
            region="us-east-1",
            table="absent-" + uuid.uuid4().hex[:8],
        )
    backend = kit_factory(
        namespace=fresh_namespace("dyn"),
        clock=ManualClock(),
        dynamodb_endpoint="aws",
        region="us-east-1",
    ).backend
    try:
        assert await backend.put("p:a", b"aws") == 1
        record = await backend.get("p:a")
        assert record is not None
        assert record.data == b"aws"
    finally:
        await DynamoDbKitHooks(backend).drop_namespace()
        await backend.aclose()


def test_create_table_enables_ttl_and_on_demand_billing(moto_http: MotoHttp) -> None:
    client = Target("http", moto_http.url, serial=False).client()
    name = "pmcp-created-" + uuid.uuid4().hex[:8]
    create_table(client, name)
    try:
        ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        assert (ttl.get("TimeToLiveStatus"), ttl.get("AttributeName")) == ("ENABLED", "ttl")
        table = client.describe_table(TableName=name)["Table"]
        assert table.get("BillingModeSummary", {}).get("BillingMode") == "PAY_PER_REQUEST"
        with pytest.raises(BackendError, match="could not create"):
            create_table(client, name)  # already exists
    finally:
        client.delete_table(TableName=name)
        client.close()


_ALPHABET = string.ascii_letters + string.digits + "_.~%-"


@given(
    stored=st.text(alphabet=_ALPHABET, max_size=6),
    after=st.text(max_size=6) | st.text(alphabet=_ALPHABET + ":!\x00\x7f\U0010ffff", max_size=6),
)
def test_first_item_after_is_an_exact_inclusive_bound(stored: str, after: str) -> None:
    """Any ``after`` string becomes an ASCII bound that selects exactly the items above it."""
    bound = first_item_after(after)
    assert bound.isascii()
    assert (stored > after) == (stored >= bound)
