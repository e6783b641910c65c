"""DynamoDB targets for the backend's tests: moto in-process and moto's server over HTTP.

Both share moto's process-wide state, each test works in a fresh namespace, and both serialize
requests, because moto checks a condition and applies the write in separate Python steps where
DynamoDB is atomic per item: in-process backends share one single-thread pool (as the kit
factory does), and the server runs one request at a time behind a lock while the clients stay
concurrent. Without that, rare thread switches inside moto would fail linearizability checks
for reasons that are not the backend's.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from conformance.harness import BackendFactory, ManualClock, fresh_namespace
from reference_backends.dynamodb import DynamoDbBackend, kit_factory
from reference_backends.dynamodb.backend import make_client
from reference_backends.dynamodb.kit import DEFAULT_REGION, DEFAULT_TABLE

if False:  # typing only; mypy_boto3_dynamodb is a lint dependency
    from mypy_boto3_dynamodb import DynamoDBClient


class OneRequestAtATime:
    """WSGI middleware that gives moto's server DynamoDB's per-item atomicity."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()
        self.requests = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            self.requests += 1
            return list(self._app(environ, start_response))


@dataclass
class MotoHttp:
    url: str
    app: OneRequestAtATime


@pytest.fixture(scope="session")
def moto_http() -> Iterator[MotoHttp]:
    """moto's ThreadedMotoServer on a free loopback port for the whole session."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    # Before the port is handed out no request can arrive, so wrapping the app here is safe.
    wsgi = server._server
    assert wsgi is not None
    app = OneRequestAtATime(wsgi.app)
    wsgi.app = app
    host, port = server.get_host_and_port()
    yield MotoHttp(f"http://{host}:{port}", app)
    server.stop()


@pytest.fixture(scope="session")
def moto_http_factory(moto_http: MotoHttp) -> BackendFactory:
    return partial(kit_factory, dynamodb_endpoint=moto_http.url)


@pytest.fixture(scope="session")
def inprocess_factory() -> BackendFactory:
    return kit_factory


_SERIAL = ThreadPoolExecutor(1, thread_name_prefix="pmcp-moto-tests")


@dataclass
class Target:
    """One way of reaching DynamoDB, and how to open a backend on it with a fresh client."""

    name: str
    endpoint_url: str | None
    serial: bool
    clients: list[Any] = field(default_factory=list)

    def client(self) -> DynamoDBClient:
        made = make_client(endpoint_url=self.endpoint_url, region_name=DEFAULT_REGION)
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
        return DynamoDbBackend(
            table,
            namespace=namespace or fresh_namespace("dyn"),
            clock=clock or ManualClock(),
            client=client or self.client(),
            executor=_SERIAL if self.serial else None,
            **options,
        )


@pytest.fixture(params=["inprocess", "http"])
def target(
    request: pytest.FixtureRequest, inprocess_factory: BackendFactory
) -> Iterator[Target]:
    """Each test runs on moto in-process and on moto's server over HTTP."""
    # The kit factory starts moto and creates the table (once per process and target).
    if request.param == "inprocess":
        kit_factory(namespace="warm-up", clock=ManualClock())
        made = Target("inprocess", None, serial=True)
    else:
        url = request.getfixturevalue("moto_http").url
        kit_factory(namespace="warm-up", clock=ManualClock(), dynamodb_endpoint=url)
        made = Target("http", url, serial=False)
    yield made
    for client in made.clients:
        client.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def backend(target: Target, clock: ManualClock) -> AsyncIterator[DynamoDbBackend]:
    opened = target.backend(clock=clock)
    yield opened
    await opened.kit_drop_namespace()
    await opened.aclose()


class RequestLog:
    """DynamoDB operations sent by one client, counted per HTTP attempt (retries included)."""

    def __init__(self, client: DynamoDBClient) -> None:
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
