"""The StorageBackend contract: the only thing a storage layer has to get right.

The domain (``GenericTaskStore``) is written once over these six async methods, so a backend
stays a dumb, byte-oriented key-value store with compare-and-set on versions. Every clause of
the contract has a stable ID in ``docs/contract.md``; the conformance kit cites those IDs.
"""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class BackendCapabilities:
    """What a backend promises beyond the base contract; the kit verifies each claim.

    ``max_record_bytes``: largest ``data`` accepted (``None``: no limit). ``shared``: a second
    instance opened on the same namespace sees the same data and competes on the same CAS.
    ``injectable_clock``: expiry follows the clock handed to the factory (else the kit falls
    back to short real waits).
    """

    max_record_bytes: int | None = None
    shared: bool = False
    injectable_clock: bool = True


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
