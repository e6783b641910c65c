"""A StorageBackend wrapper that injects the faults real storage has: delays, errors, lost replies.

Reliability tests need faults that are both realistic and reproducible. :class:`FaultyBackend`
wraps any backend and, per call, may

* delay it (``delay_rate``, up to ``max_delay`` seconds) so that concurrent callers interleave
  differently;
* fail it before it reaches storage (``error_rate``): ``BackendError``, nothing written;
* commit it and then lose the reply (``ambiguous_rate``, writes only): the write is applied and
  the caller still gets ``BackendError``, as after a connection that drops between the server's
  commit and its answer. This is the fault that tempts callers into double-applying a change or
  into reporting a conflict with their own write;
* fail it now and apply it later (``Fault.LATE``, queued only, writes only): the caller gets
  ``BackendError`` and the write lands just before the next write to the same key, like an
  HTTP request that timed out on the client and was still executed by the server.

Random faults come from a seeded ``random.Random``, so a failing run replays exactly (with the
same interleaving of callers). Tests that need one fault at one precise call queue it with
:meth:`FaultyBackend.queue`; queued faults come before random ones. :meth:`FaultyBackend.calm`
turns injection off, for reading back what really got stored. Every call is logged in
:attr:`FaultyBackend.log`, including whether a write really landed.
"""

from __future__ import annotations

import asyncio
import enum
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pmcp_tasks.backend import StorageBackend, VersionedRecord
from pmcp_tasks.errors import BackendError

WRITES = frozenset({"put", "put_if_version", "delete", "cleanup_expired"})
"""Methods whose effect can land while their reply is lost."""

METHODS = WRITES | {"get", "list_by_prefix"}


class Fault(enum.Enum):
    """What happens to one call."""

    NONE = "none"
    DELAY = "delay"
    ERROR = "error"  # fails before reaching storage: nothing applied
    AMBIGUOUS = "ambiguous"  # applied, then the reply is lost
    LATE = "late"  # fails now, lands just before the next write to the same key


class InjectedFault(ConnectionResetError):
    """The ``__cause__`` of every injected ``BackendError``, so tests can tell them apart."""


@dataclass(frozen=True, slots=True)
class Call:
    """One logged call: ``applied`` is True when the inner backend ran it without raising."""

    method: str
    key: str | None
    fault: Fault
    applied: bool
    result: Any = None


@dataclass(slots=True)
class _Queued:
    fault: Fault
    then: Callable[[], Awaitable[None]] | None


class FaultyBackend:
    """Wraps ``inner`` and injects faults; a :class:`~pmcp_tasks.StorageBackend` itself.

    ``methods`` limits random faults to some methods (default: all). ``then`` of a queued
    ambiguous fault runs after the write landed and before the lost reply is reported: the
    moment another client could slip in.
    """

    def __init__(
        self,
        inner: StorageBackend,
        *,
        seed: int = 0,
        error_rate: float = 0.0,
        ambiguous_rate: float = 0.0,
        delay_rate: float = 0.0,
        max_delay: float = 0.001,
        methods: frozenset[str] = METHODS,
    ) -> None:
        for name, rate in (
            ("error_rate", error_rate),
            ("ambiguous_rate", ambiguous_rate),
            ("delay_rate", delay_rate),
        ):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be in 0..1, not {rate}")
        if error_rate + ambiguous_rate > 1.0:
            raise ValueError("error_rate + ambiguous_rate must not exceed 1")
        if max_delay < 0:
            raise ValueError(f"max_delay must be >= 0, not {max_delay}")
        unknown = methods - METHODS
        if unknown:
            raise ValueError(f"unknown methods: {', '.join(sorted(unknown))}")
        self.inner = inner
        self.capabilities = inner.capabilities
        self.log: list[Call] = []
        self._random = random.Random(seed)
        self._error_rate = error_rate
        self._ambiguous_rate = ambiguous_rate
        self._delay_rate = delay_rate
        self._max_delay = max_delay
        self._methods = methods
        self._queued: dict[str, deque[_Queued]] = {}
        self._late: dict[str | None, list[tuple[str, Callable[[], Awaitable[Any]]]]] = {}
        self._calm = 0

    # ------------------------------------------------------------------------------ control

    def queue(
        self,
        method: str,
        fault: Fault,
        *,
        times: int = 1,
        then: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Give the next ``times`` calls of ``method`` this fault (before any random one)."""
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}")
        if fault in (Fault.AMBIGUOUS, Fault.LATE) and method not in WRITES:
            raise ValueError(f"{method} writes nothing, so it cannot commit ambiguously")
        self._queued.setdefault(method, deque()).extend(_Queued(fault, then) for _ in range(times))

    @contextmanager
    def calm(self) -> Iterator[None]:
        """No faults (queued or random) inside this block: for reading back the truth."""
        self._calm += 1
        try:
            yield
        finally:
            self._calm -= 1

    def faults(self, fault: Fault) -> list[Call]:
        """The logged calls that got ``fault``."""
        return [call for call in self.log if call.fault is fault]

    # ------------------------------------------------------------------------------ engine

    def _draw(self, method: str) -> _Queued:
        if self._calm:
            return _Queued(Fault.NONE, None)
        pending = self._queued.get(method)
        if pending:
            return pending.popleft()
        if method not in self._methods:
            return _Queued(Fault.NONE, None)
        roll = self._random.random()
        if roll < self._error_rate:
            return _Queued(Fault.ERROR, None)
        if method in WRITES and roll < self._error_rate + self._ambiguous_rate:
            return _Queued(Fault.AMBIGUOUS, None)
        if self._random.random() < self._delay_rate:
            return _Queued(Fault.DELAY, None)
        return _Queued(Fault.NONE, None)

    async def _call(self, method: str, key: str | None, run: Callable[[], Awaitable[Any]]) -> Any:
        if method in WRITES:
            for late_method, late_run in self._late.pop(key, []):
                await self._land_late(late_method, key, late_run)
        drawn = self._draw(method)
        if drawn.fault is Fault.LATE:
            self._late.setdefault(key, []).append((method, run))
            self.log.append(Call(method, key, drawn.fault, applied=False))
            raise BackendError(f"injected fault: {method} of {key!r} timed out") from (
                InjectedFault("no reply before the timeout; the request is still on its way")
            )
        if drawn.fault is Fault.DELAY:
            await asyncio.sleep(self._random.uniform(0, self._max_delay))
        elif drawn.fault is Fault.ERROR:
            self.log.append(Call(method, key, drawn.fault, applied=False))
            raise BackendError(f"injected fault: {method} of {key!r} failed") from InjectedFault(
                "connection reset before the request was sent"
            )
        try:
            result = await run()
        except BaseException:
            self.log.append(Call(method, key, drawn.fault, applied=False))
            raise
        self.log.append(Call(method, key, drawn.fault, applied=True, result=result))
        if drawn.fault is Fault.AMBIGUOUS:
            if drawn.then is not None:
                await drawn.then()
            raise BackendError(
                f"injected fault: {method} of {key!r} was applied but its reply was lost"
            ) from InjectedFault("connection reset after the server committed")
        return result

    async def _land_late(
        self, method: str, key: str | None, run: Callable[[], Awaitable[Any]]
    ) -> None:
        """Apply a delayed write; its own outcome reaches nobody, as on a real server."""
        try:
            result = await run()
        except Exception:
            self.log.append(Call(method, key, Fault.LATE, applied=False))
        else:
            self.log.append(Call(method, key, Fault.LATE, applied=True, result=result))

    # ---------------------------------------------------------------------------- contract

    async def get(self, key: str) -> VersionedRecord | None:
        result: VersionedRecord | None = await self._call("get", key, lambda: self.inner.get(key))
        return result

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        result: int = await self._call(
            "put", key, lambda: self.inner.put(key, data, expires_at=expires_at)
        )
        return result

    async def put_if_version(
        self,
        key: str,
        data: bytes,
        expected_version: int,
        *,
        expires_at: float | None = None,
    ) -> int:
        result: int = await self._call(
            "put_if_version",
            key,
            lambda: self.inner.put_if_version(key, data, expected_version, expires_at=expires_at),
        )
        return result

    async def delete(self, key: str) -> bool:
        result: bool = await self._call("delete", key, lambda: self.inner.delete(key))
        return result

    async def list_by_prefix(
        self,
        prefix: str,
        *,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[tuple[str, VersionedRecord]]:
        result: list[tuple[str, VersionedRecord]] = await self._call(
            "list_by_prefix",
            prefix,
            lambda: self.inner.list_by_prefix(prefix, after=after, limit=limit),
        )
        return result

    async def cleanup_expired(self) -> int:
        result: int = await self._call("cleanup_expired", None, self.inner.cleanup_expired)
        return result

    async def aclose(self) -> None:
        """Closing is never faulted: tests must always be able to release the inner backend."""
        await self.inner.aclose()
