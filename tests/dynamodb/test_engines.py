"""What differs between DynamoDB engines, and how the backend opens on each.

The probe at open finds whether a failed condition returns the item (moto: yes; dynalite: no)
and the table's native TTL (moto: on; dynalite: none at all). Without the item the backend reads
it back: the answers the kit checks must be the same, with one ``GetItem`` more.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dynamodb_targets import Target, dummy_session, stored
from servers import authenticating_moto_server, free_port

from conformance.harness import ManualClock, fresh_namespace
from pmcp_tasks.backend import MAX_VERSION
from pmcp_tasks.errors import BackendError, CapacityExceeded, RecordNotFound, VersionConflict
from reference_backends.dynamodb import DynamoDbBackend, TtlWarning, create_table, kit_factory
from reference_backends.dynamodb.client import make_client
from reference_backends.dynamodb.kit import DEFAULT_TABLE, DynamoDbKitHooks
from reference_backends.dynamodb.provision import PROBE_PK

pytestmark = pytest.mark.anyio


@pytest.fixture
def dynalite_target(dynalite: str) -> Iterator[Target]:
    kit_factory(
        namespace="warm-up", clock=ManualClock(), dynamodb_endpoint=dynalite, missing_ttl="ignore"
    )
    made = Target("dynalite", dynalite, serial=False)
    yield made
    for client in made.clients:
        client.close()


async def test_probe_finds_what_each_engine_returns(target: Target) -> None:
    backend = target.backend(missing_ttl="ignore")
    try:
        features = await backend.open()
        assert await backend.open() is features  # once per backend
        if target.name == "dynalite":
            assert features.returns_old_item is False
            assert features.ttl == "DISABLED"
            assert features.ttl_problem == "TimeToLiveStatus is DISABLED"
        else:
            assert features.returns_old_item is True
            assert features.ttl == "ENABLED on 'ttl'"
            assert features.ttl_problem is None
    finally:
        await backend.aclose()
    # The probe's one item belongs to no namespace: no namespace's clean-up or scan sees it.
    probe = target.client().query(
        TableName=DEFAULT_TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": PROBE_PK}},
    )
    assert [item["pk"]["S"] for item in probe["Items"]] == [PROBE_PK]
    assert "#" not in PROBE_PK


async def test_without_all_old_a_failed_condition_is_read_back(
    dynalite_target: Target, clock: ManualClock
) -> None:
    """The issue's wrong answers on dynalite, each now right, each with one read more."""
    backend, log = await dynalite_target.logged(clock=clock)
    try:
        await backend.put("p:a", b"one")
        log.take()
        with pytest.raises(VersionConflict) as exists:  # was RecordNotFound
            await backend.put_if_version("p:a", b"x", 0)
        assert (exists.value.expected, exists.value.actual) == (0, 1)
        assert log.take() == {"PutItem": 1, "GetItem": 1}
        with pytest.raises(VersionConflict) as stale:
            await backend.put_if_version("p:a", b"x", 7)
        assert (stale.value.expected, stale.value.actual) == (7, 1)
        with pytest.raises(RecordNotFound):
            await backend.put_if_version("p:none", b"x", 1)
        await DynamoDbKitHooks(backend).seed("p:max", b"m", MAX_VERSION, None)
        log.take()
        with pytest.raises(CapacityExceeded):  # was 8 rounds, then a BackendError
            await backend.put("p:max", b"z")
        assert log.take() == {"UpdateItem": 1, "GetItem": 1}
        await backend.put("p:x", b"", expires_at=clock() + 1)
        clock.advance(1)
        with pytest.raises(RecordNotFound):
            await backend.put_if_version("p:x", b"", 1)
        assert await backend.put_if_version("p:x", b"new", 0) == 1
    finally:
        await DynamoDbKitHooks(backend).drop_namespace()
        await backend.aclose()


def _meanwhile(client: Any, operation: str, action: Any) -> list[str]:
    """Run ``action`` once, just before the backend's first ``operation`` request is sent."""
    done: list[str] = []

    def hook(**_: Any) -> None:
        if not done:
            done.append(operation)
            action()

    client.meta.events.register(f"before-call.dynamodb.{operation}", hook)
    return done


@pytest.mark.parametrize("expected", [0, 1])
async def test_an_item_that_changed_before_the_read_back_gets_a_new_attempt(
    dynalite_target: Target, clock: ManualClock, expected: int
) -> None:
    """Between the failed write and its read back, another client makes the condition true.

    The read then finds nothing to report (no conflict, not absent), so the backend sends the
    write again: one more atomic attempt, which succeeds.
    """
    namespace = fresh_namespace("dyn")
    backend, log = await dynalite_target.logged(namespace=namespace, clock=clock)
    client = log.client
    other = dynalite_target.backend(namespace=namespace, clock=clock)
    try:
        await other.open()
        await backend.put("p:a", b"one")
        await backend.put("p:a", b"two")  # version 2: a CAS from 0 or 1 fails
        if expected == 0:
            changed = _meanwhile(client, "GetItem", lambda: _sync(other.delete("p:a")))
        else:
            changed = _meanwhile(client, "GetItem", lambda: _restart_at_one(other))
        log.take()
        assert await backend.put_if_version("p:a", b"mine", expected) == expected + 1
        assert changed == ["GetItem"]
        assert log.take() == {"PutItem": 2, "GetItem": 1}
        assert await stored(backend, "p:a") == (b"mine", expected + 1)
    finally:
        await DynamoDbKitHooks(backend).drop_namespace()
        await backend.aclose()
        await other.aclose()


def _sync(coroutine: Any) -> Any:
    """Run another backend's call to completion from botocore's (worker) thread."""
    return asyncio.run(coroutine)


def _restart_at_one(other: DynamoDbBackend) -> None:
    _sync(other.delete("p:a"))
    assert _sync(other.put("p:a", b"again")) == 1


async def test_missing_ttl_is_reported_on_every_open_by_option(
    dynalite_target: Target,
) -> None:
    for _ in range(2):  # the same on every open, not only when the table was created
        backend = dynalite_target.backend(missing_ttl="warn")
        with pytest.warns(TtlWarning, match=r"DynamoDB table 'pmcp-tasks-kit' \(TimeToLive"):
            await backend.open()
        await backend.aclose()
    backend = dynalite_target.backend(missing_ttl="error")
    with pytest.raises(BackendError, match="missing_ttl='ignore'"):
        await backend.put("p:a", b"")  # the first request opens the backend
    await backend.aclose()
    backend = dynalite_target.backend(missing_ttl="ignore")
    assert (await backend.open()).ttl == "DISABLED"  # reported only in what open returns
    await backend.aclose()


def test_create_table_where_ttl_cannot_be_enabled(dynalite: str) -> None:
    """dynalite has no UpdateTimeToLive: the table is made, and the refusal goes by option."""
    client = make_client(endpoint_url=dynalite, region_name="us-east-1", session=dummy_session())
    names = ["pmcp-ttl-" + uuid.uuid4().hex[:8] for _ in range(2)]
    try:
        with pytest.warns(TtlWarning, match="UpdateTimeToLive refused: ClientError: "):
            create_table(client, names[0])
        with pytest.raises(BackendError, match="UnknownOperationException"):
            create_table(client, names[1], missing_ttl="error")
        for name in names:  # created either way: the next open reports the TTL again
            assert client.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"
    finally:
        for name in names:
            client.delete_table(TableName=name)
        client.close()


def test_kit_factory_reports_an_unreachable_endpoint_naming_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ValueError, match="cannot reach") as raised:
        kit_factory(namespace="n", clock=ManualClock(), dynamodb_endpoint=url)
    message = str(raised.value)
    assert message.startswith(f"cannot reach DynamoDB at {url}: EndpointConnectionError: ")


@pytest.fixture(scope="module")
def authenticating_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log: Path = tmp_path_factory.mktemp("moto-auth") / "moto.log"
    with authenticating_moto_server(log) as url:
        yield url


def test_kit_factory_reports_refused_credentials_naming_the_endpoint(
    authenticating_moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "not-a-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
    with pytest.raises(ValueError, match="cannot use") as raised:
        kit_factory(namespace="n", clock=ManualClock(), dynamodb_endpoint=authenticating_moto)
    message = str(raised.value)
    assert message.startswith(f"cannot use DynamoDB at {authenticating_moto}: ClientError: ")
    assert "The security token included in the request is invalid" in message


def test_kit_factory_reports_an_unknown_table_naming_the_endpoint(dynalite: str) -> None:
    name = "absent-" + uuid.uuid4().hex[:8]
    with pytest.raises(ValueError, match="does not exist") as raised:
        kit_factory(
            namespace="n",
            clock=ManualClock(),
            dynamodb_endpoint=dynalite,
            table=name,
            create_table="false",
        )
    assert str(raised.value).startswith(
        f"DynamoDB table {name!r} does not exist at {dynalite}; create it"
    )


async def test_backend_reports_an_unknown_table_with_the_cause(dynalite_target: Target) -> None:
    name = "absent-" + uuid.uuid4().hex[:8]
    backend = dynalite_target.backend(table=name, namespace=fresh_namespace("dyn"))
    try:
        with pytest.raises(BackendError) as raised:
            await backend.get("p:a")
    finally:
        await backend.aclose()
    assert str(raised.value).startswith(f"DynamoDB table {name!r} does not exist; create it")
