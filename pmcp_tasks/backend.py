"""The StorageBackend contract: the only thing a storage layer has to get right.

The domain (``GenericTaskStore``) is written once over these six async methods, so a backend
stays a dumb, byte-oriented key-value store with compare-and-set on versions. Every clause of
the contract has a stable ID in ``docs/contract.md``; the conformance kit cites those IDs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

Clock = Callable[[], float]
"""Epoch seconds. Backends take one by injection so that expiry follows a single clock."""

MAX_VERSION = 2**63 - 1
"""Versions are exact Python ints in ``1 .. MAX_VERSION`` on every backend (KV-VER-1)."""


@dataclass(frozen=True, slots=True)
class VersionedRecord:
    """One stored value as a backend returns it.

    ``data`` is opaque to the backend and must round-trip byte-exact; ``version`` is what
    ``put_if_version`` compares against; ``expires_at`` is the epoch second at which the
    record stops being live (``None``: never).
    """

    data: bytes
    version: int
    expires_at: float | None


@dataclass(frozen=True, slots=True, init=False)
class BackendCapabilities:
    """What a backend promises beyond the base contract; the kit verifies each claim.

    ``max_record_bytes``: largest ``data`` accepted (``None``: no limit).
    ``shared_in_process``: a second instance opened in the same process on the same namespace
    sees the same data and competes on the same CAS. ``shared_across_processes``: so does an
    instance in another process (or host), which is why one runs Redis or DynamoDB at all; it
    implies ``shared_in_process``, and the kit checks it from a second process.
    ``injectable_clock``: expiry follows the clock handed to the factory (else the kit falls
    back to short real waits).

    ``shared`` is the old spelling of ``shared_in_process`` (it never said which kind of sharing
    was meant, and the kit only ever checked it inside one process), still accepted so that
    factories written for it keep working; it emits a ``DeprecationWarning``.
    """

    max_record_bytes: int | None
    shared_in_process: bool
    shared_across_processes: bool
    injectable_clock: bool

    def __init__(
        self,
        max_record_bytes: int | None = None,
        shared_in_process: bool = False,
        injectable_clock: bool = True,
        *,
        shared_across_processes: bool = False,
        shared: bool | None = None,
    ) -> None:
        if shared is not None:
            warnings.warn(
                "BackendCapabilities(shared=...) is the old spelling of shared_in_process=...; "
                "declare shared_across_processes=True as well if instances in other processes "
                "see the same data",
                DeprecationWarning,
                stacklevel=2,
            )
            shared_in_process = shared_in_process or shared
        object.__setattr__(self, "max_record_bytes", max_record_bytes)
        object.__setattr__(self, "shared_in_process", shared_in_process or shared_across_processes)
        object.__setattr__(self, "shared_across_processes", shared_across_processes)
        object.__setattr__(self, "injectable_clock", injectable_clock)

    @property
    def shared(self) -> bool:
        """The old name of :attr:`shared_in_process`, for code that still reads it."""
        return self.shared_in_process


@runtime_checkable
class StorageBackend(Protocol):
    """The six-method async key-value contract (plus ``aclose``).

    Keys are ``partition:item`` (KV-KEY-*); a record is live iff ``expires_at is None or
    clock() < expires_at`` and a record that is not live is absent for every method
    (KV-LIVE-*). Only ``StorageError`` subclasses and ``ValueError`` escape a backend.
    """

    capabilities: BackendCapabilities

    async def get(self, key: str) -> VersionedRecord | None:
        """The live record at ``key``, or ``None``."""
        ...

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        """Unconditional atomic upsert; 1 when absent, else previous version + 1."""
        ...

    async def put_if_version(
        self,
        key: str,
        data: bytes,
        expected_version: int,
        *,
        expires_at: float | None = None,
    ) -> int:
        """Compare-and-set. 0 means create-if-absent; returns the new version."""
        ...

    async def delete(self, key: str) -> bool:
        """True iff a live record was removed."""
        ...

    async def list_by_prefix(
        self,
        prefix: str,
        *,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[tuple[str, VersionedRecord]]:
        """Live records under ``prefix`` (which names a partition), ascending by key."""
        ...

    async def cleanup_expired(self) -> int:
        """Physically remove records that are not live now; return how many."""
        ...

    async def aclose(self) -> None:
        """Release connections; safe to call more than once."""
        ...


def is_live(expires_at: float | None, now: float) -> bool:
    """KV-LIVE-1, in one place so that no backend gets the boundary wrong."""
    return expires_at is None or now < expires_at
