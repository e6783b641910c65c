"""Targets and probes shared by the DynamoDB tests (imported by conftest and test modules)."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3

from conformance.harness import ManualClock, fresh_namespace
from reference_backends.dynamodb import DynamoDbBackend
from reference_backends.dynamodb.client import make_client
from reference_backends.dynamodb.kit import DEFAULT_REGION, DEFAULT_TABLE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def dummy_session() -> boto3.session.Session:
    """moto accepts any credentials; these keep the tests independent of the environment."""
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")


_SERIAL = ThreadPoolExecutor(1, thread_name_prefix="pmcp-moto-tests")


@dataclass
class Target:
    """One way of reaching DynamoDB, and how to open a backend on it with a fresh client."""

    name: str
    endpoint_url: str | None
    serial: bool
    clients: list[Any] = field(default_factory=list)

    def read_after_failure(self) -> dict[str, int]:
        """What follows a failed condition: dynalite returns no item, so the backend reads it."""
        return {"GetItem": 1} if self.name == "dynalite" else {}

    async def logged(self, **options: Any) -> tuple[DynamoDbBackend, RequestLog]:
        """A backend on a fresh client, opened, and the log of what it sends from then on."""
        log = RequestLog(self.client())
        backend = self.backend(client=log.client, **options)
        await backend.open()
        log.take()  # the probe's requests (test_engines.py)
        return backend, log

    def client(self) -> DynamoDBClient:
        made = make_client(
            endpoint_url=self.endpoint_url, region_name=DEFAULT_REGION, session=dummy_session()
        )
        self.clients.append(made)
        return made

    def backend(
        self,
        *,
        namespace: str | None = None,
        clock: ManualClock | None = None,
        client: DynamoDBClient | None = None,
        table: str = DEFAULT_TABLE,
        **options: Any,
    ) -> DynamoDbBackend:
        if self.name == "dynalite":  # no TTL there; tests/dynamodb/test_engines.py checks it
            options.setdefault("missing_ttl", "ignore")
        return DynamoDbBackend.from_client(
            client or self.client(),
            table,
            namespace=namespace or fresh_namespace("dyn"),
            clock=clock or ManualClock(),
            executor=_SERIAL if self.serial else None,
            **options,
        )


class RequestLog:
    """DynamoDB operations sent by one client, counted per HTTP attempt (retries included)."""

    def __init__(self, client: DynamoDBClient) -> None:
        self.client = client
        self.sent: Counter[str] = Counter()
        self.threads: set[str] = set()
        client.meta.events.register_first("before-send.dynamodb", self._count)

    def _count(self, event_name: str, **_: Any) -> None:
        self.sent[event_name.rsplit(".", 1)[-1]] += 1
        self.threads.add(threading.current_thread().name)

    def take(self) -> dict[str, int]:
        """What was sent since the last call."""
        out = dict(self.sent)
        self.sent.clear()
        return out


async def stored(backend: DynamoDbBackend, key: str) -> tuple[bytes, int] | None:
    """``(data, version)`` of the live record at ``key`` as the backend reads it, or None."""
    record = await backend.get(key)
    return None if record is None else (record.data, record.version)
