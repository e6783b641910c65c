"""What every part of the kit uses to open and drive a backend under test.

The kit owns the clock (time travel without sleeping), hands every test a fresh namespace, and
opens backends through a factory (docs/conformance.md), which may be a plain or an async function.
Backends may offer two optional hooks, found by name:

* ``async kit_drop_namespace()`` removes everything stored under the backend's namespace; the
  kit calls it after each test so that a run against a real server leaves nothing behind.
* ``async kit_seed(key, data, version, expires_at)`` stores a record with an arbitrary version,
  which lets the kit test versions near 2**53 and 2**63-1 without 2**53 writes (KV-VER-1).
"""

from __future__ import annotations

import inspect
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from pmcp_tasks.backend import Clock, StorageBackend

BackendFactory = Callable[..., "StorageBackend | Awaitable[StorageBackend]"]
"""``factory(*, namespace: str, clock: Clock, **options: str)``."""


@runtime_checkable
class SupportsDropNamespace(Protocol):
    async def kit_drop_namespace(self) -> None: ...


@runtime_checkable
class SupportsSeed(Protocol):
    async def kit_seed(
        self, key: str, data: bytes, version: int, expires_at: float | None
    ) -> None: ...


class ManualClock:
    """A clock the kit moves by hand; thread-safe because backends may read it from threads.

    It starts at the real time so that a server's own expiry (Redis ``PEXPIREAT``, DynamoDB
    TTL), which follows the real clock, never removes a record earlier than this clock says:
    the kit only moves it forward past real time, or back to no earlier than where it started.
    """

    def __init__(self, start: float | None = None) -> None:
        self._now = float(int(time.time())) if start is None else float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, now: float) -> None:
        with self._lock:
            self._now = float(now)


def fresh_namespace(label: str = "kit") -> str:
    """A namespace no other test, xdist worker or earlier run has used."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"{label}-{worker}-{uuid.uuid4().hex[:12]}"


async def open_backend(
    factory: BackendFactory, *, namespace: str, clock: Clock, **options: str
) -> StorageBackend:
    """Call a plain or async factory and return the backend."""
    made: Any = factory(namespace=namespace, clock=clock, **options)
    if inspect.isawaitable(made):
        made = await made
    return made  # type: ignore[no-any-return]
