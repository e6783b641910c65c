"""The lost-reply write protocol: one ``put_if_version`` whose outcome the store can trust.

A network backend may fail a write *after* it landed (the reply was lost). Every write of the
store (task records and cap slots alike) goes through :func:`cas`, which settles such a failure
by reading the key back instead of guessing, so that no change is ever applied twice and no
conflict is reported that never happened. Kept apart from the lifecycle code because it is the
part a reviewer of durability has to read, and it reads the same for every kind of record.
"""

from __future__ import annotations

import asyncio
import random

from pmcp_tasks.backend import StorageBackend
from pmcp_tasks.config import StoreConfig
from pmcp_tasks.errors import (
    BackendError,
    BackendUnavailable,
    RecordNotFound,
    StorageError,
    StorageFailure,
    VersionConflict,
)

WRITE_ATTEMPTS = 3
"""Sends of one write whose reply was lost while the key stayed unchanged (see :func:`cas`)."""


class OutcomeUnknown(Exception):
    """A write whose reply was lost and whose effect could not be established by reading."""

    def __init__(self, cause: BackendError) -> None:
        super().__init__(str(cause))
        self.cause = cause


def failure(action: str, exc: StorageError, *, unknown: bool = False) -> StorageFailure:
    """The ``StorageFailure`` a caller sees: the action, the backend's error, and the outcome."""
    outcome = (
        "; the change may or may not have been applied: read the task to find out"
        if unknown
        else ""
    )
    return StorageFailure(f"storage failed while {action}: {type(exc).__name__}: {exc}{outcome}")


async def backoff(config: StoreConfig, attempt: int) -> None:
    """Full jitter: spreads writers that collided so that the next round mostly doesn't."""
    ceiling = min(config.cas_backoff_cap, config.cas_backoff * 2 ** min(attempt, 30))
    await asyncio.sleep(random.uniform(0, ceiling))


async def cas(
    backend: StorageBackend,
    config: StoreConfig,
    key: str,
    data: bytes,
    expected: int,
    expires_at: float | None,
) -> int:
    """``put_if_version`` that settles a lost reply instead of guessing; the new version.

    A ``BackendError`` from a write may come after the write landed (the reply was lost).
    Retrying blindly could apply the change twice, and recomputing it after the conflict
    with its own write would report a conflict (or an invalid transition) that never
    happened. So the key is read back: its own bytes at ``expected + 1`` mean the write
    landed (success); the key still at ``expected`` means it has not, and the very same bytes
    are sent again, so that at most one of the attempts can ever land. Any other state
    (someone else wrote, or the read fails) leaves the outcome unknown: :class:`OutcomeUnknown`,
    never a silent second application. After :data:`WRITE_ATTEMPTS` failed sends with the key
    unchanged the last ``BackendError`` is raised: as far as the store can tell, nothing was
    written.

    ``VersionConflict`` and ``RecordNotFound`` escape only when no attempt was ambiguous, and so
    does ``BackendUnavailable`` (nothing was sent), which needs no read-back.
    """
    lost: BackendError | None = None
    for attempt in range(WRITE_ATTEMPTS):
        if attempt:
            await backoff(config, attempt)
        try:
            return await backend.put_if_version(key, data, expected, expires_at=expires_at)
        except BackendUnavailable:
            if lost is None:
                raise  # nothing was sent, so nothing can have landed: not applied
            # An earlier attempt's reply was lost: the read below tells whether it landed.
        except BackendError as exc:
            lost = exc
        except (VersionConflict, RecordNotFound):
            if lost is None:
                raise
            # Possibly our own earlier attempt, landed late: the read below tells.
        landed = await _read_back(backend, key, data, expected, lost)
        if landed is not None:
            return landed
    assert lost is not None  # the loop only goes round after a failed write
    raise lost  # not landed, as far as the last read could tell


async def _read_back(
    backend: StorageBackend, key: str, data: bytes, expected: int, lost: BackendError
) -> int | None:
    """After a lost reply: the version our write landed at, or ``None`` when the key is
    unchanged (nothing landed: send again); anything else is :class:`OutcomeUnknown`."""
    try:
        stored = await backend.get(key)
    except StorageError as exc:
        raise OutcomeUnknown(lost) from exc
    if stored is not None and stored.version == expected + 1 and stored.data == data:
        return stored.version
    if expected == 0:
        unchanged = stored is None
    else:
        unchanged = stored is not None and stored.version == expected
    if not unchanged:
        raise OutcomeUnknown(lost)
    return None
