"""Broken backends for listing: bounds, order, ``after`` and full pages.

``conformance/suite/test_listing.py`` must fail each one on the clause its ``@zoo`` declares
(``tests/kit/test_teeth.py``).
"""

from __future__ import annotations

from pmcp_tasks.backend import VersionedRecord, is_live
from pmcp_tasks.keys import check_page, check_prefix

from .base import FrozenClock, Seedable, zoo


@zoo("limit_before_expiry_filter", breaks="KV-LIST-5")
class LimitBeforeExpiryFilter(Seedable):
    """Fetches ``limit`` records, then drops the dead ones: short pages mid-listing."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        check_prefix(prefix)
        check_page(after, limit)
        with self.inside.lock:
            everything = [
                (key, record)
                for key, record in self._all()
                if key.startswith(prefix) and (after is None or key > after)
            ]
        page = everything[:limit] if limit is not None else everything
        now = self.inside.clock()
        return [(k, r) for k, r in page if is_live(r.expires_at, now)]

    def _all(self) -> list[tuple[str, VersionedRecord]]:
        return sorted(
            (f"{partition}:{item}", record)
            for partition, part in self.inside.partitions.items()
            for item, record in part.records.items()
        )


@zoo("prefix_not_bounded", breaks="KV-LIST-2")
class PrefixNotBounded(LimitBeforeExpiryFilter):
    """Lists every key that starts with the prefix minus its ':' (``a:`` also gets ``ab:1``)."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        partition, item_prefix = check_prefix(prefix)
        check_page(after, limit)
        now = self.inside.clock()
        with self.inside.lock:
            found = [
                (key, record)
                for key, record in self._all()
                if key.startswith(partition)
                and key.partition(":")[2].startswith(item_prefix)
                and (after is None or key > after)
                and is_live(record.expires_at, now)
            ]
        return found[:limit] if limit is not None else found


@zoo("after_inclusive", breaks="KV-LIST-4")
class AfterInclusive(Seedable):
    """Treats ``after`` as inclusive."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        if isinstance(after, str) and after:
            after = after[:-1] + chr(ord(after[-1]) - 1) + "\U0010ffff"
        return await super().list_by_prefix(prefix, after=after, limit=limit)


@zoo("listing_unsorted", breaks="KV-LIST-3")
class ListingUnsorted(Seedable):
    """Returns records newest-first instead of by key."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        found = await super().list_by_prefix(prefix, after=after)
        found.reverse()
        return found[:limit] if limit is not None else found


@zoo("lists_in_batches", breaks="KV-LIST-5")
class ListsInBatches(Seedable):
    """Reads 50 raw entries after ``after``, drops the dead ones and returns what is left:
    a page comes back short whenever a run of dead records is longer than the batch."""

    BATCH = 50

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        if limit is None:
            return await super().list_by_prefix(prefix, after=after)
        saved, self.inside.clock = self.inside.clock, FrozenClock(float("-inf"))
        try:
            raw = await super().list_by_prefix(prefix, after=after, limit=max(self.BATCH, limit))
        finally:
            self.inside.clock = saved
        now = self.inside.clock()
        return [(k, r) for k, r in raw if is_live(r.expires_at, now)][:limit]


@zoo("listing_stops_at_one_scan", breaks="KV-LIST-2")
class ListingStopsAtOneScan(Seedable):
    """A listing without ``limit`` returns one scan's worth (500 entries) and stops."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        return await super().list_by_prefix(prefix, after=after, limit=limit or 500)


@zoo("after_ascii_only", breaks="KV-LIST-4")
class AfterAsciiOnly(Seedable):
    """Encodes ``after`` as ASCII, dropping what does not fit (``p:a\u00e9`` -> ``p:a``)."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        if isinstance(after, str):
            after = after.encode("ascii", errors="ignore").decode()
        return await super().list_by_prefix(prefix, after=after, limit=limit)


@zoo("after_compared_as_utf16", breaks="KV-LIST-4")
class AfterComparedAsUtf16(Seedable):
    """Compares keys with ``after`` by their UTF-16 encoding (as a store keeping text in
    little-endian UTF-16 buffers would), not by code point."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        check_page(after, limit)
        everything = await super().list_by_prefix(prefix)
        if after is not None:
            bound = after.encode("utf-16-le", errors="surrogatepass")
            everything = [(k, r) for k, r in everything if k.encode("utf-16-le") > bound]
        return everything if limit is None else everything[:limit]
