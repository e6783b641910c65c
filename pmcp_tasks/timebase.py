"""One clock for every process of a deployment: the storage server's, or a refusal.

Expiry, the cap's slot reclaim and lease lapses compare times written by one process with the
clock of another. Hosts' clocks disagree (a missing NTP, a VM resumed from a snapshot), and a
disagreement of an hour made a store delete live tasks, fail healthy leases and lock owners out
(docs/reliability.md, "Clock skew"). So a store whose backend can tell the server's time
(:class:`ServerClock`) measures its own clock against it when first used and every
:data:`CHECK_INTERVAL` seconds, and from then on decides every time on the server's clock (its
own reading plus the measured offset). A skew beyond ``StoreConfig.max_clock_skew`` is refused
(:class:`~pmcp_tasks.errors.ClockSkewExceeded`): the backend still decides liveness on the
process's raw clock, and the store pads what it stores (:attr:`Timebase.margin`) only by the
tolerance.

An injected clock is a test's time machine (the kit moves it by hours against a real Redis), so
by default only a store on the real clock, :func:`time.time`, checks; ``check_skew=True`` turns
the check on for an injected clock, and a backend without ``server_time`` keeps today's single
process clock.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

from pmcp_tasks.backend import Clock
from pmcp_tasks.errors import ClockSkewExceeded, StorageError
from pmcp_tasks.writes import failure

CHECK_INTERVAL = 60.0
"""Seconds (of :func:`time.monotonic`) between two measurements: a clock that steps (NTP, a
resumed VM) is noticed within this long, at the cost of one small round trip per minute."""


SAMPLES = 2
"""Readings per measurement; the one with the shortest round trip is kept."""

RESOLUTION = 1.0
"""The coarsest step of a server clock we read (an HTTP ``Date`` has whole seconds): a skew
within it and half the round trip is no skew the measurement can see."""


@runtime_checkable
class ServerClock(Protocol):
    """A backend capability beyond the six-method contract: the storage server's time.

    Redis answers ``TIME``; DynamoDB's replies carry an HTTP ``Date`` (1 s steps); the memory
    backend, whose "server" is the process, answers its own clock.
    """

    async def server_time(self) -> float:
        """The server's clock now, in epoch seconds."""
        ...


class Timebase:
    """The store's clock: its own reading, corrected to the server's once measured."""

    def __init__(
        self, clock: Clock, server: object, tolerance: float | None, check: bool | None
    ) -> None:
        wanted = clock is time.time if check is None else check
        self._clock = clock
        self._server: ServerClock | None = None
        self._tolerance = 0.0
        if wanted and tolerance is not None and isinstance(server, ServerClock):
            self._server, self._tolerance = server, tolerance
        self._offset = 0.0
        self._due = -float("inf")  # monotonic time of the next measurement
        self._refused: ClockSkewExceeded | None = None
        self._lock = asyncio.Lock()

    @property
    def margin(self) -> float:
        """Seconds every stored expiry is padded by, so that a backend whose raw clock is up to
        the tolerance ahead never takes a live record for dead (0 when nothing is checked)."""
        return self._tolerance

    def now(self) -> float:
        """Epoch seconds on the server's clock (the process's own when nothing is checked)."""
        return self._clock() + self._offset

    def stored_expiry(self, expires_at: float | None) -> float | None:
        """The expiry handed to the backend for a record that dies at ``expires_at``."""
        return None if expires_at is None else expires_at + self.margin

    async def check(self) -> None:
        """Measure the skew when due; ``ClockSkewExceeded`` while it is beyond the tolerance.

        A refused store measures again on every call, so it recovers as soon as the host's
        clock is fixed.
        """
        if self._server is None or (self._refused is None and time.monotonic() < self._due):
            return
        async with self._lock:
            if self._refused is None and time.monotonic() < self._due:
                return  # another call measured while this one waited
            await self._measure(self._server)
        if self._refused is not None:
            raise self._refused

    async def _measure(self, server: ServerClock) -> None:
        """The skew from the sample with the shortest round trip: the first call of a backend
        may open its connection (or probe its table), which says nothing about the clocks."""
        samples = [await self._sample(server) for _ in range(SAMPLES)]
        local, server_now, uncertainty = min(samples, key=lambda sample: sample[2])
        skew = local - server_now
        self._due = time.monotonic() + CHECK_INTERVAL
        if abs(skew) - uncertainty > self._tolerance:
            self._refused = ClockSkewExceeded(local, server_now, self._tolerance)
            return
        self._refused = None
        # A skew the measurement cannot tell from none is left alone: correcting it would only
        # move a clock that agrees with the server by the error of the measurement.
        self._offset = 0.0 if abs(skew) <= uncertainty else -skew

    async def _sample(self, server: ServerClock) -> tuple[float, float, float]:
        """(our clock, the server's, how far apart they may be though they agree)."""
        before = self._clock()
        try:
            server_now = await server.server_time()
        except StorageError as exc:
            raise failure("reading the storage server's clock", exc) from exc
        after = self._clock()
        # The server answered somewhere within the round trip; its clock has steps of up to
        # RESOLUTION (DynamoDB's Date header).
        return (before + after) / 2, server_now, abs(after - before) / 2 + RESOLUTION
