"""What every part of the kit uses to open and drive a backend under test.

The kit owns the clock (time travel without sleeping), hands every test a fresh namespace, and
opens backends through a factory (docs/conformance.md), which may be a plain or an async
function. A factory returns either the backend itself or a :class:`KitTarget`: the backend plus
an object of **hooks**, the kit's ways around the contract (any version, a whole namespace, a
record the backend cannot decode). They live beside the factory, not on the backend, so that
code using the backend in production never sees a method that bypasses the contract. Each hook
is optional and found by name; a test that needs a missing one skips, naming it and the clause:

* ``async seed(key, data, version, expires_at)`` stores a record with an arbitrary version,
  which lets the kit test versions near 2**53 and 2**63-1 without 2**53 writes (KV-VER-1).
* ``async drop_namespace()`` removes everything stored under the backend's namespace; the kit
  calls it after each test so that a run against a real server leaves nothing behind.
* ``async plant_damaged(key, kind) -> bool`` stores at ``key`` a record of the damage ``kind``
  that the backend cannot decode, or returns False when that kind cannot happen in this
  backend's storage (KV-DAMAGE-1; :data:`DAMAGE_KINDS` lists the kinds the kit asks for).
"""

from __future__ import annotations

import difflib
import inspect
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pmcp_tasks.backend import Clock, StorageBackend

BackendFactory = Callable[..., "StorageBackend | KitTarget | Awaitable[StorageBackend | KitTarget]"]
"""``factory(*, namespace: str, clock: Clock, **options: str)``."""

DAMAGE_KINDS = (
    "bad-version",
    "fractional-version",
    "huge-version",
    "zero-version",
    "bad-expiry",
    "expiry-of-another-type",
    "missing-data",
    "wrong-type",
    "bad-index-member",
)
"""The damage kinds KV-DAMAGE-1 plants, each where a backend's storage could hold it:

* ``bad-version``: a version that is not a number (text such as ``abc``);
* ``fractional-version``: a version that is a number but not a whole one (``1.5``);
* ``huge-version``: an integer version past 2**63-1;
* ``zero-version``: an integer version below 1 (``0``);
* ``bad-expiry``: an expiry that is not a finite number (``inf``, text);
* ``expiry-of-another-type``: an expiry stored as a type the backend never writes there
  (DynamoDB: a number where it writes text), for backends whose storage is typed;
* ``missing-data``: a record without its data;
* ``wrong-type``: the record stored as another type (a Redis string for a hash, DynamoDB data
  as text instead of binary);
* ``bad-index-member``: in ``key``'s partition, a listing index entry that names no decodable
  key (not UTF-8), while ``key`` itself holds no record: only listings are checked for it.

Every kind but the last is a record at ``key`` that ``get`` reports and writes replace; apart
from its damage it is what a first ``put`` without expiry stores (version 1, no expiry), so that
a backend whose conditional write still reads the version can be checked against it.
"""


@runtime_checkable
class SupportsSeed(Protocol):
    async def seed(self, key: str, data: bytes, version: int, expires_at: float | None) -> None: ...


@runtime_checkable
class SupportsDropNamespace(Protocol):
    async def drop_namespace(self) -> None: ...


@runtime_checkable
class SupportsPlantDamaged(Protocol):
    async def plant_damaged(self, key: str, kind: str) -> bool: ...


@dataclass(frozen=True)
class KitTarget:
    """What a factory may return instead of a bare backend: the backend and its kit hooks.

    ``hooks`` is any object; the kit looks each hook up by name, so an object with only
    ``drop_namespace`` is fine. A factory returning a plain backend is the same as
    ``KitTarget(backend)``: every hook missing, engine not named.
    """

    backend: StorageBackend
    hooks: object = None
    engine: str | None = None
    """What the backend runs on, for the run's summary (``"fakeredis 2.41.0, in process"``)."""

    async def dispose(self) -> None:
        """Drop what the test stored (when the hooks can), then close the backend."""
        try:
            if isinstance(self.hooks, SupportsDropNamespace):
                await self.hooks.drop_namespace()
        finally:
            await self.backend.aclose()


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


HOOK_NAMES = ("seed", "drop_namespace", "plant_damaged")


def hooks_found(hooks: object) -> tuple[str, ...]:
    """The hooks ``hooks`` offers, by name; ``ValueError`` for a name that looks like one of
    them misspelled (``drop_namspace``), which the kit, looking hooks up by name, would
    otherwise pass over in silence and skip the tests that need it."""
    for name in dir(hooks):
        if name.startswith("_") or name in HOOK_NAMES:
            continue
        close = difflib.get_close_matches(name, HOOK_NAMES, n=1, cutoff=0.8)
        if close:
            raise ValueError(
                f"the factory's hooks ({type(hooks).__qualname__}) have {name!r}, which looks "
                f"like the hook {close[0]!r} misspelled; the kit finds hooks by their exact name"
            )
    return tuple(name for name in HOOK_NAMES if callable(getattr(hooks, name, None)))


async def open_target(
    factory: BackendFactory, *, namespace: str, clock: Clock, **options: str
) -> KitTarget:
    """Call a plain or async factory; a bare backend becomes a target without hooks."""
    made: Any = factory(namespace=namespace, clock=clock, **options)
    if inspect.isawaitable(made):
        made = await made
    target = made if isinstance(made, KitTarget) else KitTarget(made)
    try:
        hooks_found(target.hooks)
    except ValueError:
        await target.backend.aclose()
        raise
    return target
