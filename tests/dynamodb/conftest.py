"""DynamoDB targets for the backend's tests: moto in-process, moto's server and dynalite.

Each test works in a fresh namespace. The two moto targets share moto's process-wide state and
serialize requests, because moto checks a condition and applies the write in separate Python
steps where DynamoDB is atomic per item: in-process backends share one single-thread pool (as
the kit factory does), and the server runs one request at a time behind a lock while the
clients stay concurrent. Without that, rare thread switches inside moto would fail
linearizability checks for reasons that are not the backend's. dynalite is atomic per item on
its own.

The whole kit runs on moto in-process in tox's ``pytest --backend dynamodb``, and on dynalite
here (``test_kit_dynalite.py``: HTTP, concurrent clients, the read-back path, a second process)
less the model state machine and three volume tests, which the in-process run covers; a run on
moto's server would repeat the dynalite one over the same HTTP path with moto's semantics,
which the in-process run already shows, so the backend tests below cover moto's server
instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from dynamodb_targets import Target

from conformance.harness import ManualClock
from reference_backends.dynamodb import DynamoDbBackend, kit_factory
from reference_backends.dynamodb.kit import DynamoDbKitHooks


@pytest.fixture(params=["inprocess", "http", "dynalite"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """Each test runs on moto in-process, on moto's server over HTTP and on dynalite."""
    # The kit factory starts moto and creates the table (once per process and target).
    if request.param == "inprocess":
        kit_factory(namespace="warm-up", clock=ManualClock())
        made = Target("inprocess", None, serial=True)
    else:
        if request.param == "http":
            url = request.getfixturevalue("moto_http").url
        else:
            url = request.getfixturevalue("dynalite")
        kit_factory(
            namespace="warm-up", clock=ManualClock(), dynamodb_endpoint=url, missing_ttl="ignore"
        )
        made = Target(request.param, url, serial=False)
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
    await DynamoDbKitHooks(opened).drop_namespace()
    await opened.aclose()
