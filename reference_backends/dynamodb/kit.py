"""Entry point ``dynamodb`` of the conformance kit (``pytest --backend=dynamodb``).

Targets, by the ``dynamodb_endpoint`` option:

* absent: moto in-process (``mock_aws``, started once per process and never reset, so a moto
  server running in the same process keeps its tables). moto evaluates a condition and applies
  the write in separate Python steps, so concurrent requests could interleave where DynamoDB
  is atomic; every in-process backend therefore shares one single-thread pool.
* ``http://host:port``: that endpoint (moto server, DynamoDB Local). The table is created when
  missing if ``create_table=true``, which is the default for loopback endpoints (throwaway
  engines) and never the default elsewhere. Loopback endpoints get dummy credentials when the
  environment has none.
* ``aws``: real DynamoDB with boto3's usual region and credential chain; ``table`` names an
  existing table (see docs/backends/dynamodb.md for the command and the IAM policy).

Opening a target probes it once with a single try: an unreachable endpoint, refused
credentials or a missing table is one ``ValueError`` naming the endpoint (the kit reports it as
a usage error), and the table's TTL is reported there by ``missing_ttl`` (``warn``, ``error``
or ``ignore``; dynalite has no TTL at all).

Two calls with the same namespace and options give two clients on the same items, which is
what the kit's multi-client tests need (``capabilities.shared_in_process``); an endpoint or
``aws`` is also shared with other processes (``shared_across_processes``), moto in-process is not.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from importlib import metadata
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pmcp_tasks.backend import MAX_VERSION, Clock
from pmcp_tasks.errors import BackendError
from pmcp_tasks.keys import check_data, check_expires_at, check_key, split_key
from reference_backends.causes import describe
from reference_backends.dynamodb.backend import DynamoDbBackend, DynamoDbInternals
from reference_backends.dynamodb.client import make_client
from reference_backends.dynamodb.provision import (
    MissingTtl,
    TableFeatures,
    check_missing_ttl,
    probe_table,
    report_ttl,
)
from reference_backends.dynamodb.provision import create_table as create_dynamodb_table
from reference_backends.dynamodb.table import DATA, EXPIRES_AT, PK, VERSION

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from conformance.harness import KitTarget

DEFAULT_TABLE = "pmcp-tasks-kit"
DEFAULT_REGION = "us-east-1"  # for moto and local endpoints, where the region is a label
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class _Target:
    client: DynamoDBClient
    table: str
    executor: Executor | None
    features: TableFeatures


_DAMAGE: dict[str, tuple[str, dict[str, str] | None]] = {
    "bad-version": (VERSION, {"S": "abc"}),
    "fractional-version": (VERSION, {"N": "1.5"}),
    "huge-version": (VERSION, {"N": "1E+30"}),
    "zero-version": (VERSION, {"N": "0"}),
    "bad-expiry": (EXPIRES_AT, {"S": "inf"}),
    "expiry-of-another-type": (EXPIRES_AT, {"N": "1800000000"}),
    "missing-data": (DATA, None),
    "wrong-type": (DATA, {"S": "data as text"}),
}
"""Damage kind -> the attribute it spoils and the value put there (None: the attribute is
removed). ``bad-index-member`` does not apply: the table is its own index."""


class DynamoDbKitHooks:
    """The conformance kit's hooks for a :class:`DynamoDbBackend` (conformance/harness.py).

    They write past the contract (any version, every item of a namespace, items the backend
    would never write), which is why they live here beside the kit factory and not on the
    backend.
    """

    def __init__(self, backend: DynamoDbBackend) -> None:
        self.backend = backend
        self._internals = DynamoDbInternals(backend)

    async def drop_namespace(self) -> None:
        """Delete every item of this namespace, so kit runs leave a shared table clean."""
        table = self._internals.table
        values = {":ns": {"S": self._internals.codec.pk_prefix}}
        async for keys in table.scan(f"begins_with(#{PK}, :ns)", values):
            await asyncio.gather(*(table.run(table.client.delete_item, Key=key) for key in keys))

    async def seed(self, key: str, data: bytes, version: int, expires_at: float | None) -> None:
        """Store a record with an arbitrary version (e.g. near 2**63-1) in one ``PutItem``."""
        if not 1 <= version <= MAX_VERSION:
            raise ValueError(f"version must be in 1..{MAX_VERSION}, not {version}")
        await self._put(key, data, version, expires_at, {})

    async def plant_damaged(self, key: str, kind: str) -> bool:
        """A live item at ``key`` with one attribute spoilt as ``kind`` says (KV-DAMAGE-1)."""
        if kind not in _DAMAGE:
            return False
        attribute, value = _DAMAGE[kind]
        await self._put(key, b"damaged", 1, None, {attribute: value})
        return True

    async def _put(
        self,
        key: str,
        data: bytes,
        version: int,
        expires_at: float | None,
        spoilt: dict[str, dict[str, str] | None],
    ) -> None:
        partition, item = split_key(check_key(key))
        data, expires_at = check_data(data), check_expires_at(expires_at)
        codec, table = self._internals.codec, self._internals.table
        written = codec.item(partition, item, data, version, expires_at, uuid.uuid4().hex)
        for attribute, value in spoilt.items():
            if value is None:
                del written[attribute]
            else:
                written[attribute] = value
        await table.run(table.client.put_item, Item=written)


_targets: dict[tuple[str | None, str, str | None], _Target] = {}
_targets_lock = threading.Lock()


def kit_factory(
    *,
    namespace: str,
    clock: Clock,
    dynamodb_endpoint: str | None = None,
    table: str | None = None,
    region: str | None = None,
    create_table: str | None = None,
    missing_ttl: str = "warn",
    **options: Any,
) -> KitTarget:
    """A backend on the target the options name (strings, from ``--backend-option``), with
    its :class:`DynamoDbKitHooks`. The kit is imported here, not at the top, so that
    ``import reference_backends.dynamodb`` loads no kit module."""
    from conformance.harness import KitTarget

    if options:
        raise ValueError(f"unknown dynamodb backend options: {', '.join(sorted(options))}")
    if create_table not in (None, "true", "false"):
        raise ValueError(f"create_table must be 'true' or 'false', not {create_table!r}")
    key = (dynamodb_endpoint, table or DEFAULT_TABLE, region)
    with _targets_lock:
        target = _targets.get(key)
        if target is None:
            target = _targets[key] = _open_target(
                dynamodb_endpoint,
                table or DEFAULT_TABLE,
                region,
                create_table,
                check_missing_ttl(missing_ttl),
            )
    # The target reported its TTL once when it opened; its backends do not repeat it.
    backend = DynamoDbBackend.from_client(
        target.client,
        target.table,
        namespace=namespace,
        clock=clock,
        executor=target.executor,
        missing_ttl="ignore",
        features=target.features,
    )
    if dynamodb_endpoint is None:
        # moto in-process keeps its tables in this process: another process would see none.
        backend.capabilities = replace(backend.capabilities, shared_across_processes=False)
    if dynamodb_endpoint is None:
        engine = f"moto {metadata.version('moto')}, in process"
    else:
        engine = "AWS" if dynamodb_endpoint == "aws" else f"DynamoDB at {dynamodb_endpoint}"
    return KitTarget(backend, DynamoDbKitHooks(backend), engine=engine)


def _open_target(
    endpoint: str | None,
    table: str,
    region: str | None,
    create_table: str | None,
    missing_ttl: MissingTtl,
) -> _Target:
    """Connect, check credentials and the table, probe it: one ValueError naming the endpoint."""
    if endpoint is None:
        _start_moto()  # before the session, which must see moto's hooks
    session = boto3.session.Session()
    executor: Executor | None = None
    if endpoint is None:
        where, url, region = "moto in-process", None, region or DEFAULT_REGION
        create = create_table != "false"
        executor = ThreadPoolExecutor(1, thread_name_prefix="pmcp-moto")
    elif endpoint == "aws":
        where, url = f"AWS DynamoDB (region {region or 'from boto3'})", None
        create = create_table == "true"
    else:
        where, url, region = endpoint, endpoint, region or DEFAULT_REGION
        loopback = urlsplit(endpoint).hostname in _LOOPBACK
        if loopback and session.get_credentials() is None:
            session = boto3.session.Session(
                aws_access_key_id="testing", aws_secret_access_key="testing"
            )
        create = create_table == "true" or (loopback and create_table is None)
    # One try, so that an unreachable endpoint is reported within the connect timeout.
    probe = make_client(endpoint_url=url, region_name=region, session=session, max_attempts=1)
    try:
        _ensure_table(probe, table, where, create=create, missing_ttl=missing_ttl)
        features = probe_table(probe, table)
        report_ttl(features.ttl_problem, table, missing_ttl)
    except BackendError as exc:
        raise ValueError(f"cannot use DynamoDB at {where}: {exc}") from exc
    finally:
        probe.close()
    client = make_client(endpoint_url=url, region_name=region, session=session)
    return _Target(client, table, executor, features)


_moto_started = False


def _start_moto() -> None:
    """Start moto's in-process mock once; it stays on for the rest of the process."""
    global _moto_started
    if _moto_started:
        return
    try:
        from moto import mock_aws
    except ImportError as exc:
        raise ImportError(
            "the dynamodb kit target needs moto when no dynamodb_endpoint is given: "
            "pip install 'pmcp-tasks[testing-dynamodb]'"
        ) from exc
    mock_aws().start(reset=False)
    _moto_started = True


def _ensure_table(
    client: DynamoDBClient, table: str, where: str, *, create: bool, missing_ttl: MissingTtl
) -> None:
    try:
        client.describe_table(TableName=table)
        return
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise ValueError(f"cannot use DynamoDB at {where}: {describe(exc)}") from exc
    except BotoCoreError as exc:
        raise ValueError(f"cannot reach DynamoDB at {where}: {describe(exc)}") from exc
    if not create:
        raise ValueError(
            f"DynamoDB table {table!r} does not exist at {where}; create it "
            "(docs/backends/dynamodb.md) or pass --backend-option create_table=true"
        )
    create_dynamodb_table(client, table, missing_ttl=missing_ttl)
