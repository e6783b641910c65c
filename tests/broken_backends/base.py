"""What every zoo backend is made of, and the registry each one declares itself in.

A zoo backend is a class with ``@zoo(name, breaks=clause)`` on it, in the module of the
contract area whose suite must catch it (this package mirrors ``conformance/contract/``), so
the name a test passes to ``--backend broken_backends:<name>``, the clause it must fail and
the code of the bug are read in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from conformance.harness import KitTarget
from pmcp_tasks.backend import Clock
from reference_backends.memory import (
    InMemoryBackend,
    MemoryInternals,
    MemoryKitHooks,
    MemoryStore,
)

_STORE = MemoryStore()


class Seedable(InMemoryBackend):
    """The reference backend on this module's own store, with the memory kit hooks as methods
    (a broken write uses ``seed`` to store the version it got wrong); the zoo's factories hand
    each backend to the kit as its own hooks. A broken backend reaches the records, the lock
    and the clock through ``inside``, the memory backend's door."""

    def __init__(
        self,
        *,
        namespace: str,
        clock: Clock,
        max_record_bytes: int | None = None,
        store: MemoryStore | None = None,
    ) -> None:
        super().__init__(
            namespace=namespace,
            clock=clock,
            max_record_bytes=max_record_bytes,
            store=_STORE if store is None else store,
        )
        self.inside = MemoryInternals(self)

    async def seed(self, key: str, data: bytes, version: int, expires_at: float | None) -> None:
        await MemoryKitHooks(self).seed(key, data, version, expires_at)

    async def drop_namespace(self) -> None:
        await MemoryKitHooks(self).drop_namespace()


@dataclass
class FrozenClock:
    now: float

    def __call__(self) -> float:
        return self.now


KitFactory = Callable[..., KitTarget]


@dataclass(frozen=True)
class Broken:
    """A broken backend, the clause it breaks and the suite module that must catch it."""

    cls: Callable[..., Any]
    clause: str
    area: str


BROKEN: dict[str, Broken] = {}
"""Every broken backend by its zoo name: ``tests/kit/test_teeth.py`` runs the kit on each."""

FACTORIES: dict[str, KitFactory] = {}
"""The kit factory of every named zoo backend, broken or not, by its zoo name."""

_Backend = TypeVar("_Backend", bound=type)


def zoo(name: str, *, breaks: str | None = None) -> Callable[[_Backend], _Backend]:
    """Declare the class below as zoo backend ``name`` that breaks clause ``breaks`` (None: a
    correct backend a test names). Its area is the module it is declared in."""

    def declare(cls: _Backend) -> _Backend:
        assert name not in FACTORIES, f"two zoo backends are named {name!r}"
        FACTORIES[name] = _named_factory(name, cls)
        if breaks is not None:
            BROKEN[name] = Broken(cls, breaks, cls.__module__.rpartition(".")[2])
        return cls

    return declare


def _named_factory(name: str, cls: Callable[..., Any]) -> KitFactory:
    """A kit factory on this module's store, reachable as ``broken_backends:<name>``: the kit
    finds a factory again in a child process (KV-SHARED-2) by its module and qualified name."""

    def factory(*, namespace: str, clock: Clock) -> KitTarget:
        backend = cls(namespace=namespace, clock=clock)
        return KitTarget(backend, backend)

    factory.__doc__ = cls.__doc__
    factory.__module__ = __name__.rpartition(".")[0]
    factory.__name__ = factory.__qualname__ = name
    return factory


def factory_for(cls: Callable[..., Any]) -> KitFactory:
    """A kit factory whose backends share one fresh store, so second clients see the same
    data and nothing is left over from another test."""
    store = MemoryStore()

    def factory(*, namespace: str, clock: Clock) -> KitTarget:
        backend = cls(namespace=namespace, clock=clock, store=store)
        return KitTarget(backend, backend)

    return factory
