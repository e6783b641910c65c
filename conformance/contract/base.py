"""Fixtures and requirements every contract test class shares.

Fixtures live on a class rather than in the plugin so that the kit claims no fixture names in
projects that merely have pmcp-tasks installed; a third party gets them by subclassing
:class:`conformance.BackendContract` and only has to provide ``backend_factory``.

Requirements follow SQLAlchemy's idea: a test states what it needs from the backend, and when
the backend does not declare it the test is skipped with a reason that names the capability
and the clause, never silently.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any, Protocol, TypeVar

import anyio
import pytest

from conformance import time_limits
from conformance.harness import (
    BackendFactory,
    KitTarget,
    ManualClock,
    SupportsPlantDamaged,
    SupportsSeed,
    fresh_namespace,
    open_target,
)
from conformance.report import PROP_CAPABILITIES
from pmcp_tasks.backend import BackendCapabilities, StorageBackend, VersionedRecord
from pmcp_tasks.errors import VersionConflict

OpenClient = Callable[..., Awaitable[StorageBackend]]
"""``await open_client(namespace=None)``: another client, same namespace unless given."""

FAR = 3600.0
"""Seconds of kit clock ahead of now for records that must stay live during a test.

Far beyond any test's real duration, because a server's own expiry follows the real clock."""


Snapshot = tuple[bytes, int, "float | None"]


async def stored(backend: StorageBackend, key: str) -> Snapshot | None:
    """``(data, version, expires_at)`` of the live record at ``key``: one comparable value."""
    record = await backend.get(key)
    return None if record is None else (record.data, record.version, record.expires_at)


async def listed_keys(backend: StorageBackend, prefix: str, **page: Any) -> list[str]:
    """The keys of one page, each an exact ``str`` with a ``VersionedRecord`` (KV-LIST-2), in
    ascending order (KV-LIST-3): listing tests read through here, so an unsorted listing is
    named for its order, not for whatever else each test compares."""
    found = await backend.list_by_prefix(prefix, **page)
    assert type(found) is list, f"KV-LIST-2: list_by_prefix returned a {type(found).__name__}"
    keys = []
    for key, record in found:
        assert type(key) is str, f"KV-LIST-2: list_by_prefix returned a key {key!r}, not a str"
        assert isinstance(record, VersionedRecord), f"KV-LIST-2: listed {record!r} at {key!r}"
        keys.append(key)
    assert keys == sorted(keys), (
        f"KV-LIST-3: list_by_prefix({prefix!r}, {page}) returned keys out of code-point order: "
        f"{keys!r}"
    )
    return keys


class ContractFixtures:
    """The fixtures of docs/conformance.md's "Plugging in a backend", as class members."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        """The kit drives backends from asyncio (the reference clients are asyncio clients)."""
        return "asyncio"

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()

    @pytest.fixture
    def namespace(self) -> str:
        return fresh_namespace()

    @pytest.fixture
    async def kit_target(
        self,
        backend_factory: BackendFactory,
        namespace: str,
        clock: ManualClock,
        request: pytest.FixtureRequest,
    ) -> AsyncIterator[KitTarget]:
        """The factory's backend with its hooks; tests that need a hook take this one."""
        opened = await time_limits.bounded(
            request,
            "in its setup (opening the backend)",
            open_target(backend_factory, namespace=namespace, clock=clock),
        )
        declared = dataclasses.asdict(opened.backend.capabilities)
        request.node.user_properties.append((PROP_CAPABILITIES, json.dumps(declared)))
        try:
            yield opened
        finally:
            await time_limits.bounded(
                request,
                "in its teardown (dropping its namespace, closing the backend)",
                opened.dispose(),
            )

    @pytest.fixture
    def backend(self, kit_target: KitTarget) -> StorageBackend:
        return kit_target.backend

    @pytest.fixture
    async def open_client(
        self,
        backend: StorageBackend,
        backend_factory: BackendFactory,
        namespace: str,
        clock: ManualClock,
        request: pytest.FixtureRequest,
    ) -> AsyncIterator[OpenClient]:
        opened: list[tuple[KitTarget, bool]] = []

        async def open_client(namespace: str | None = None) -> StorageBackend:
            chosen = namespace or default_namespace
            client = await open_target(backend_factory, namespace=chosen, clock=clock)
            opened.append((client, chosen != default_namespace))
            return client.backend

        default_namespace = namespace
        try:
            yield open_client
        finally:
            for client, own_namespace in reversed(opened):
                # The default namespace is dropped by ``kit_target``; a client the test may
                # already have closed is only closed (again: KV-CLOSE-1 allows it).
                await time_limits.bounded(
                    request,
                    "in its teardown (closing the clients it opened)",
                    client.dispose() if own_namespace else client.backend.aclose(),
                )

    @pytest.fixture
    def capabilities(self, backend: StorageBackend) -> BackendCapabilities:
        return backend.capabilities

    @pytest.fixture
    def timeline(self, clock: ManualClock, capabilities: BackendCapabilities) -> Timeline:
        return Timeline(clock, capabilities)


class CasClient(Protocol):
    """What :func:`conflicts_seen_both_ways` needs: a backend, or a client in another process."""

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int: ...


async def conflicts_seen_both_ways(first: CasClient, second: CasClient) -> None:
    """CAS on one key from two clients, alternating: each sees the version the other wrote."""
    await first.put_if_version("p:k", b"a", 0)
    with pytest.raises(VersionConflict) as caught:
        await second.put_if_version("p:k", b"b", 0)
    assert caught.value.actual == 1
    assert await second.put_if_version("p:k", b"b", 1) == 2
    with pytest.raises(VersionConflict) as caught:
        await first.put_if_version("p:k", b"c", 1)
    assert caught.value.actual == 2


def requires_shared(capabilities: BackendCapabilities, clause: str) -> None:
    if not capabilities.shared_in_process:
        why = (
            f"backend declares shared_in_process=False; {clause} needs a second instance on the "
            "same namespace to see the same data"
        )
        pytest.skip(reason=why)


def requires_size_limit(capabilities: BackendCapabilities, clause: str) -> int:
    limit = capabilities.max_record_bytes
    if limit is None:
        pytest.skip(reason=f"backend declares max_record_bytes=None; {clause} needs a limit")
    return limit


def requires_room_for(capabilities: BackendCapabilities, size: int, clause: str) -> None:
    limit = capabilities.max_record_bytes
    if limit is not None and size > limit:
        why = f"backend declares max_record_bytes={limit}; {clause} needs room for {size} bytes"
        pytest.skip(reason=why)


def requires_seed(target: KitTarget, clause: str) -> SupportsSeed:
    hooks = target.hooks
    if not isinstance(hooks, SupportsSeed):
        why = (
            f"the factory gives no seed hook (KitTarget hooks: {_named(hooks)}); {clause} needs "
            "it to store a version near 2**63-1 without that many writes"
        )
        pytest.skip(reason=why)
    return hooks


def requires_plant_damaged(target: KitTarget, clause: str) -> SupportsPlantDamaged:
    hooks = target.hooks
    if not isinstance(hooks, SupportsPlantDamaged):
        why = (
            f"the factory gives no plant_damaged hook (KitTarget hooks: {_named(hooks)}); "
            f"{clause} needs it to store a record the backend cannot decode (a backend that "
            "keeps no encoded records, such as one holding Python objects, has none to damage)"
        )
        pytest.skip(reason=why)
    return hooks


def _named(hooks: object) -> str:
    return "none" if hooks is None else type(hooks).__qualname__


def requires_manual_clock(capabilities: BackendCapabilities, clause: str) -> None:
    if not capabilities.injectable_clock:
        why = (
            f"backend declares injectable_clock=False; {clause} needs the kit to set the "
            "clock exactly (real waits cannot hit a boundary or go back in time)"
        )
        pytest.skip(reason=why)


class Timeline:
    """Expiry times and the passing of time for one test.

    With ``injectable_clock`` the kit moves its own clock (no sleeping, exact). Without it,
    expiries are a fraction of a second of real time ahead and the kit really waits, so the
    same tests still run, only slower and without exact boundaries.
    """

    REAL_STEP = 0.5

    def __init__(self, clock: ManualClock, capabilities: BackendCapabilities) -> None:
        self.clock = clock
        self.manual = capabilities.injectable_clock

    def now(self) -> float:
        return self.clock() if self.manual else time.time()

    def soon(self) -> float:
        """An expiry the test will pass with :meth:`pass_expiry`."""
        return self.now() + (60.0 if self.manual else self.REAL_STEP)

    def later(self) -> float:
        """An expiry still in the future after :meth:`pass_expiry` (and after the test)."""
        return self.now() + FAR

    async def pass_expiry(self, expires_at: float) -> None:
        """Move time to just past ``expires_at`` (exactly to it, on the kit's clock)."""
        if self.manual:
            self.clock.set(max(self.clock(), expires_at))
        else:
            await anyio.sleep(max(0.0, expires_at - time.time()) + 0.05)


E = TypeVar("E", bound=BaseException)


async def raised(error: type[E], what: str, call: Awaitable[object]) -> E:
    """The ``error`` that ``call`` must raise; when it returns instead, fail showing what it
    returned (``pytest.raises`` only says "DID NOT RAISE")."""
    try:
        result = await call
    except error as exc:
        return exc
    raise AssertionError(f"{what} returned {result!r}; the contract says {error.__name__}")


async def run_concurrently(calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Start every call at once; each result is the return value or the exception raised.

    Starting them in one task group lets a backend that awaits between a read and the write
    that depends on it interleave with itself, which is how the kit catches non-atomic writes
    without sleeping.
    """
    results: list[Any] = [None] * len(calls)

    async def run(index: int) -> None:
        try:
            results[index] = await calls[index]()
        except Exception as exc:  # reported to the test, which decides what was allowed
            results[index] = exc

    async with anyio.create_task_group() as group:
        for index in range(len(calls)):
            group.start_soon(run, index)
    return results


async def racing_puts(
    backend: StorageBackend, writers: int, first: int | None, over: str, key: str = "p:k"
) -> None:
    """``writers`` concurrent puts on ``key`` (which holds ``over``) hand out exactly the
    versions ``first .. first + writers - 1`` (KV-PUT-2; ``first=None``: from any version >= 1),
    and the last one's data is stored."""
    results = await run_concurrently(
        [partial(backend.put, key, f"w{i}".encode()) for i in range(writers)]
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, f"concurrent puts over {over} failed: {errors!r}"
    if first is None:
        first = max(1, min(results))
    last = first + writers - 1
    assert sorted(results) == list(range(first, last + 1)), (
        f"concurrent puts over {over} returned versions {sorted(results)}; expected each of "
        f"{first}..{last} exactly once"
    )
    final = await backend.get(key)
    assert final is not None, f"get({key!r}) after concurrent puts over {over} returned None"
    assert final.version == last, f"stored version {final.version} after puts over {over}"
    assert final.data == f"w{results.index(last)}".encode(), "the stored data is not the last put's"
