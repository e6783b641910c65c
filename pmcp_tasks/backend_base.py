"""An optional base class for backend authors: the contract's preamble, written once.

Every backend has to check its arguments the same way (KV-KEY-*, KV-ARG-*, KV-LIST-1), refuse
oversized data before sending it (KV-SIZE-1), turn ``after`` into a bound on its partition's
items (KV-LIST-4) and let nothing but ``StorageError`` and ``ValueError`` escape (KV-ERR-1).
Getting any of these subtly wrong fails the kit in ways that look like storage bugs, so
:class:`BackendBase` does them in its six public methods and hands the storage-specific part to
six protected hooks that receive arguments already checked. Subclassing it is optional: the
contract is the :class:`~pmcp_tasks.StorageBackend` protocol, and the ``check_*`` helpers in
:mod:`pmcp_tasks.keys` serve a backend that does not inherit from it.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable
from typing import TypeVar

from pmcp_tasks.backend import MAX_VERSION, BackendCapabilities, VersionedRecord
from pmcp_tasks.errors import BackendError, CapacityExceeded, StorageError
from pmcp_tasks.keys import (
    check_data,
    check_expected_version,
    check_expires_at,
    check_key,
    check_page,
    check_prefix,
    check_size,
)

T = TypeVar("T")

logger = logging.getLogger("pmcp_tasks.backend")
"""Where backends report damaged records they skip (a child of the ``pmcp_tasks`` logger)."""


class BackendBase(ABC):
    """Validation, bounds and error translation around six storage hooks.

    A subclass sets ``capabilities`` (its ``max_record_bytes`` is enforced here) and implements
    the hooks; each public method checks its arguments in the order the kit expects, then awaits
    its hook. ``ValueError`` means a bad argument, and only these checks raise it: once they
    have accepted the arguments, the contract allows any of them, so a hook may raise only
    ``StorageError`` subclasses (``RecordNotFound``, ``VersionConflict``, ``CapacityExceeded``,
    ``BackendError``); anything else it raises, from a client library or a bug, becomes a
    ``BackendError`` naming the operation and the key, with the original as ``__cause__``. That
    includes the ``ValueError`` subclasses drivers raise on values they cannot carry
    (``UnicodeEncodeError`` for an ``after`` holding a lone surrogate, ``UnicodeDecodeError``,
    ``json.JSONDecodeError``): the caller's argument was valid. Liveness stays with
    the hooks (use :func:`~pmcp_tasks.is_live`), because only the storage can decide it
    atomically with a write.
    """

    capabilities: BackendCapabilities

    async def get(self, key: str) -> VersionedRecord | None:
        """The live record at ``key``, or ``None``."""
        key = check_key(key)
        return await self._guard("get", key, self._get(key))

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        """Unconditional atomic upsert; 1 when absent, else previous version + 1."""
        key = check_key(key)
        data, expires_at = check_data(data), check_expires_at(expires_at)
        check_size(key, data, self.capabilities.max_record_bytes)
        return await self._guard("put", key, self._put(key, data, expires_at))

    async def put_if_version(
        self,
        key: str,
        data: bytes,
        expected_version: int,
        *,
        expires_at: float | None = None,
    ) -> int:
        """Compare-and-set. 0 means create-if-absent; returns the new version."""
        key = check_key(key)
        data, expires_at = check_data(data), check_expires_at(expires_at)
        expected_version = check_expected_version(expected_version)
        check_size(key, data, self.capabilities.max_record_bytes)
        write = self._put_if_version(key, data, expected_version, expires_at)
        return await self._guard("put_if_version", key, write)

    async def delete(self, key: str) -> bool:
        """True iff a live record was removed."""
        key = check_key(key)
        return await self._guard("delete", key, self._delete(key))

    async def list_by_prefix(
        self,
        prefix: str,
        *,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[tuple[str, VersionedRecord]]:
        """Live records under ``prefix``, ascending by key; ``after`` becomes an item bound.

        ``after`` may be any string. Keys of the partition all start with ``partition:``, so an
        ``after`` that does not start with it is either below all of them (no bound) or above
        all of them (an empty page, without asking the storage); one that does start with it
        bounds the items: the hook returns only items greater than ``after_item``.
        """
        partition, item_prefix = check_prefix(prefix)
        after, limit = check_page(after, limit)
        head = partition + ":"
        after_item: str | None = None
        if after is not None:
            if after.startswith(head):
                after_item = after[len(head) :]
            elif after > head:
                return []  # every key of this partition sorts before `after`
        page = self._list(partition, item_prefix, after_item, limit)
        return await self._guard("list_by_prefix", prefix, page)

    async def cleanup_expired(self) -> int:
        """Physically remove records that are not live now; return how many."""
        return await self._guard("cleanup_expired", None, self._cleanup())

    # -- hooks: arguments arrive checked --------------------------------------------------

    @abstractmethod
    async def aclose(self) -> None:
        """Release connections; safe to call more than once (public: the store calls it)."""

    @abstractmethod
    async def _get(self, key: str) -> VersionedRecord | None:
        """The live record at ``key`` (valid; :func:`~pmcp_tasks.keys.split_key` splits it)."""

    @abstractmethod
    async def _put(self, key: str, data: bytes, expires_at: float | None) -> int:
        """Upsert, atomically; ``data`` already fits ``max_record_bytes``."""

    @abstractmethod
    async def _put_if_version(
        self, key: str, data: bytes, expected_version: int, expires_at: float | None
    ) -> int:
        """Compare-and-set; ``expected_version`` is in ``0 .. MAX_VERSION``."""

    @abstractmethod
    async def _delete(self, key: str) -> bool:
        """Remove the record at ``key``; True iff it was live."""

    @abstractmethod
    async def _list(
        self, partition: str, item_prefix: str, after_item: str | None, limit: int | None
    ) -> list[tuple[str, VersionedRecord]]:
        """Live records of ``partition`` whose item starts with ``item_prefix``, by key.

        Only items greater than ``after_item`` (when given; it may hold any character), at
        most ``limit`` of them and fewer only when no more match (KV-LIST-5). Return full keys
        (``partition + ":" + item``).
        """

    @abstractmethod
    async def _cleanup(self) -> int:
        """Remove records that are not live now; how many."""

    async def _guard(self, operation: str, key: str | None, call: Awaitable[T]) -> T:
        """Await a hook; whatever it raises besides StorageError: BackendError."""
        try:
            return await call
        except StorageError:
            raise
        except Exception as exc:
            where = "" if key is None else f" on {key!r}"
            raise BackendError(
                f"{type(self).__name__}.{operation}{where} failed: {type(exc).__name__}: {exc}"
            ) from exc


def next_version(key: str, version: int) -> int:
    """``version + 1``, or ``CapacityExceeded`` past ``MAX_VERSION`` (KV-VER-1)."""
    if version >= MAX_VERSION:
        raise CapacityExceeded(f"version of key {key!r} would exceed {MAX_VERSION}")
    return version + 1


def skip_damaged(key: str, error: BaseException) -> None:
    """Log that a listing skipped ``key``, whose stored record could not be decoded.

    One damaged record must not hide an owner's other records, so a listing leaves it out and
    says so here; ``get`` of that key raises ``BackendError`` instead, naming it.
    """
    logger.warning("skipping the damaged record at key %r: %s", key, error)
