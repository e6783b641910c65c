"""Every class of every argument (:mod:`conformance.inputs`), each clause with its own test.

The other areas check each sentence of the contract with a few chosen values; these tests run
the same sentences over the whole input domain, because a backend that stores, escapes,
compares or converts values some particular way breaks on a class nobody chose: a character
that a storage escapes, a length where a column changes type, an ``after`` its driver cannot
encode, a size that crosses a chunk, an expiry past its number range, a version past 32 bits.
Each failure names the class and the value, and every value read back is checked for its
exact type: ``bytes``, ``int``, ``bool``, ``float``, not a subclass or a look-alike.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import pytest

from conformance.contract.base import (
    listed_keys,
    raised,
    requires_manual_clock,
    requires_seed,
    run_concurrently,
)
from conformance.contract.keys import assert_all_value_errors
from conformance.harness import KitTarget, ManualClock
from conformance.inputs import (
    CLOCK_JUMPS,
    VERSION_MAGNITUDES,
    Example,
    after_examples,
    bad_key_examples,
    data_of,
    data_sizes,
    expiry_examples,
    expiry_int_examples,
    key_character_examples,
    key_length_examples,
    limit_examples,
)
from pmcp_tasks.backend import MAX_VERSION, BackendCapabilities, StorageBackend, VersionedRecord
from pmcp_tasks.errors import CapacityExceeded, StorageError, VersionConflict

Call = Callable[[], Awaitable[object]]
T = TypeVar("T")


def exact_record(
    clause: str, what: str, record: object, want: tuple[bytes, int, float | None]
) -> None:
    """``record`` is a ``VersionedRecord`` holding exactly ``want``, each field of its exact
    type (``bytes``; ``int``, not ``bool``; ``float``/``int`` or ``None``)."""
    assert isinstance(record, VersionedRecord), (
        f"{clause}: {what} returned {record!r}, not a VersionedRecord"
    )
    data, version, expires_at = want
    assert type(record.data) is bytes, (
        f"KV-DATA-1: {what} returned data of type {type(record.data).__name__}, not bytes"
    )
    assert type(record.version) is int, (
        f"KV-VER-1: {what} returned a version of type {type(record.version).__name__}, not int"
    )
    assert record.expires_at is None or type(record.expires_at) in (float, int), (
        f"KV-LIVE-4: {what} returned expires_at of type {type(record.expires_at).__name__}"
    )
    if record.data != data:
        raise AssertionError(
            f"KV-DATA-1: {what} returned {len(record.data)} bytes that differ from the "
            f"{len(data)} written{_first_difference(record.data, data)}"
        )
    assert record.version == version, f"{clause}: {what} returned version {record.version!r}"
    assert record.expires_at == expires_at, (
        f"KV-LIVE-4: {what} returned expires_at={record.expires_at!r}; written: {expires_at!r}"
    )


def _first_difference(got: bytes, want: bytes) -> str:
    for index, (a, b) in enumerate(zip(got, want, strict=False)):
        if a != b:
            return f" (first at byte {index}: {a:#04x}, written {b:#04x})"
    return ""


def exact_int(clause: str, what: str, got: object, want: int) -> None:
    said = f"{clause}: {what} returned {got!r} ({type(got).__name__}); the contract says {want}"
    assert type(got) is int, said
    assert got == want, said


async def in_batches(calls: list[Callable[[], Awaitable[T]]], size: int = 16) -> list[T]:
    """Every call's result in order, ``size`` at a time: a network backend's round trips
    overlap (KV-CONC-1 allows it), so hundreds of keys cost a few seconds, not minutes."""
    results: list[T] = []
    for start in range(0, len(calls), size):
        batch = await run_concurrently(calls[start : start + size])
        for result in batch:
            if isinstance(result, BaseException):
                raise result
        results += batch
    return results


def _partition(key: str) -> str:
    return key.split(":", 1)[0] + ":"


async def _store_list_delete(
    backend: StorageBackend, clause: str, examples: list[Example[str]]
) -> None:
    """Put every key, read it back, list every partition, delete every key."""
    await _stored_and_read_back(backend, clause, examples)
    await _listed_by_partition(backend, clause, examples)
    await _deleted(backend, examples)


async def _stored_and_read_back(
    backend: StorageBackend, clause: str, examples: list[Example[str]]
) -> None:
    puts = await in_batches([partial(backend.put, e.value, e.value.encode()) for e in examples])
    for example, got in zip(examples, puts, strict=True):
        exact_int(clause, f"put({example.value!r}) [{example.cls}]", got, 1)
    records = await in_batches([partial(backend.get, e.value) for e in examples])
    for example, record in zip(examples, records, strict=True):
        what = f"get({example.value!r}) [{example.cls}]"
        exact_record(clause, what, record, (example.value.encode(), 1, None))


async def _listed_by_partition(
    backend: StorageBackend, clause: str, examples: list[Example[str]]
) -> None:
    partitions = sorted({_partition(example.value) for example in examples})
    pages = await in_batches([partial(listed_keys, backend, prefix) for prefix in partitions])
    for prefix, got_keys in zip(partitions, pages, strict=True):
        want = sorted(e.value for e in examples if e.value.startswith(prefix))
        assert got_keys == want, (
            f"{clause}: list_by_prefix({prefix!r}) returned {got_keys!r}; stored: {want!r}"
        )


async def _deleted(backend: StorageBackend, examples: list[Example[str]]) -> None:
    deletes = await in_batches([partial(backend.delete, e.value) for e in examples])
    for example, deleted in zip(examples, deletes, strict=True):
        assert deleted is True, (
            f"KV-DEL-1: delete({example.value!r}) [{example.cls}] returned {deleted!r}"
        )
    gone = await in_batches([partial(backend.get, e.value) for e in examples])
    left = [e.value for e, record in zip(examples, gone, strict=True) if record is not None]
    assert left == [], f"KV-DEL-1: get still finds {left!r} after each was deleted"


async def _written_with_expiry(
    backend: StorageBackend, now: float, index: int, name: str, expires_at: float | None
) -> bool:
    """Write ``expires_at`` by ``put`` and by ``put_if_version`` and read each back: live
    exactly as given while the clock is before it, gone from ``get`` once it is not. Whether
    the records are live."""
    stored_as = None if expires_at is None else float(expires_at)
    live = stored_as is None or now < stored_as
    for way, key in (("put", f"p:put{index:02d}"), ("put_if_version", f"p:cas{index:02d}")):
        what = f"{way}({key!r}, expires_at={expires_at!r}) [{name}]"
        try:
            if way == "put":
                await backend.put(key, b"e", expires_at=expires_at)
            else:
                await backend.put_if_version(key, b"e", 0, expires_at=expires_at)
        except ValueError as exc:
            raise AssertionError(
                f"KV-ARG-3: {what} raised ValueError ({exc}); it is a finite number"
            ) from exc
        record = await backend.get(key)
        if not live:
            assert record is None, f"KV-LIVE-1: get after {what} at clock {now!r}: {record}"
            continue
        assert record is not None, f"KV-LIVE-1: get after {what} at clock {now!r}: None"
        exact_record("KV-LIVE-4", f"get after {what}", record, (b"e", 1, stored_as))
    return live


class InputDomainContract:
    """The contract's clauses over every input class of every argument."""

    pytestmark = pytest.mark.anyio

    @pytest.mark.pmcp_clause("KV-KEY-1", "KV-PUT-1", "KV-LIST-2", "KV-DEL-1")
    async def test_every_key_character_in_every_position_is_stored_listed_and_deleted(
        self, backend: StorageBackend
    ) -> None:
        await _store_list_delete(backend, "KV-KEY-1", key_character_examples())

    @pytest.mark.pmcp_clause("KV-KEY-2", "KV-PUT-1", "KV-LIST-2", "KV-DEL-1")
    async def test_keys_of_every_length_up_to_the_limit_are_stored_listed_and_deleted(
        self, backend: StorageBackend
    ) -> None:
        await _store_list_delete(backend, "KV-KEY-2", key_length_examples())

    @pytest.mark.pmcp_clause("KV-KEY-1", "KV-KEY-2")
    async def test_every_invalid_key_class_is_refused_by_every_method(
        self, backend: StorageBackend
    ) -> None:
        loose: Any = backend
        calls: list[tuple[str, Call]] = []
        for example in bad_key_examples():
            key = example.value
            calls += [
                (f"get({key!r}) [{example.cls}]", partial(loose.get, key)),
                (f"put({key!r}) [{example.cls}]", partial(loose.put, key, b"x")),
                (
                    f"put_if_version({key!r}, 0) [{example.cls}]",
                    partial(loose.put_if_version, key, b"x", 0),
                ),
                (f"delete({key!r}) [{example.cls}]", partial(loose.delete, key)),
            ]
        await assert_all_value_errors(calls)

    @pytest.mark.pmcp_clause("KV-LIST-4", "KV-ARG-4", "KV-LIST-3")
    async def test_after_of_every_class(self, backend: StorageBackend) -> None:
        """``after`` may be any ``str``: NUL, lone surrogates, non-ASCII, longer than a key."""
        keys = sorted(f"p:{item}" for item in ("%", "-", ".", "0", "A", "_", "a", "a%", "a-", "~"))
        for key in keys:
            await backend.put(key, b"")
        for neighbour in ("o:~", "p0:a", "pa:a"):
            await backend.put(neighbour, b"")
        for example in after_examples("p", keys):
            after = example.value
            what = f"list_by_prefix('p:', after={after!r:.60}) [{example.cls}]"
            try:
                got = await listed_keys(backend, "p:", after=after)
            except Exception as exc:  # any str is valid: no error at all is allowed
                raise AssertionError(
                    f"KV-ARG-4: {what} raised {exc!r}; any str is a valid after"
                ) from exc
            want = [key for key in keys if after is None or key > after]
            assert got == want, f"KV-LIST-4: {what} returned {got!r}; keys > after: {want!r}"
            page = await listed_keys(backend, "p:a", after=after, limit=1)
            first = [key for key in want if key.startswith("p:a")][:1]
            assert page == first, (
                f"KV-LIST-4: list_by_prefix('p:a', after={after!r:.60}, limit=1) [{example.cls}] "
                f"returned {page!r}; the first key > after under 'p:a': {first!r}"
            )

    @pytest.mark.pmcp_clause("KV-LIST-5", "KV-ARG-4")
    async def test_limit_of_every_class(self, backend: StorageBackend) -> None:
        """Any ``int >= 1``: page boundaries and limits no storage API would take as is."""
        keys = [f"p:{index:02d}" for index in range(7)]
        for key in keys:
            await backend.put(key, b"")
        for example in limit_examples(len(keys)):
            limit = example.value
            what = f"list_by_prefix('p:', limit={limit!r}) [{example.cls}]"
            try:
                got = await listed_keys(backend, "p:", limit=limit)
            except Exception as exc:  # any int >= 1 is valid: no error at all is allowed
                raise AssertionError(f"KV-ARG-4: {what} raised {exc!r}") from exc
            want = keys if limit is None else keys[:limit]
            assert got == want, f"KV-LIST-5: {what} returned {got!r}; the contract says {want!r}"
            if limit is None:
                continue
            seen: list[str] = []
            after: str | None = None
            for _ in range(len(keys) + 1):
                page = await listed_keys(backend, "p:", after=after, limit=limit)
                seen += page
                if len(page) < limit:
                    break
                after = page[-1]
            assert seen == keys, f"KV-LIST-5: paging by {limit} [{example.cls}] visited {seen!r}"

    @pytest.mark.pmcp_clause("KV-DATA-1", "KV-SIZE-2", "KV-PUT-1", "KV-CAS-4")
    async def test_data_of_every_size_class_round_trips_growing_and_shrinking(
        self, backend: StorageBackend, capabilities: BackendCapabilities
    ) -> None:
        """Every size, written fresh, over a smaller record and over a larger one: a storage
        that counts the old and the new record together refuses a replacement it should take."""
        sizes = data_sizes(capabilities.max_record_bytes)
        order = {"grow": sizes, "shrink": sizes[::-1]}
        for name, run in order.items():
            previous = b""
            for version, example in enumerate(run, start=1):
                data = data_of(example.value, version)
                cas = version % 2 == 0  # alternate the two ways of writing
                key = f"p:{name}"
                what = f"{'put_if_version' if cas else 'put'}({key!r}, <{example.cls}>)"
                try:
                    if cas:
                        got = await backend.put_if_version(key, data, version - 1)
                    else:
                        got = await backend.put(key, data)
                except StorageError as exc:
                    raise AssertionError(
                        f"KV-SIZE-2: {what} over a record of {len(previous)} bytes raised "
                        f"{exc!r}; {example.value} bytes are within max_record_bytes"
                    ) from exc
                previous = data
                exact_int("KV-PUT-1", what, got, version)
                exact_record(
                    "KV-PUT-1", f"get after {what}", await backend.get(key), (data, version, None)
                )
            fresh = f"p:fresh-{name}"
            last = run[-1]
            await backend.put(fresh, data_of(last.value))
            page = await backend.list_by_prefix(fresh)
            assert len(page) == 1, f"KV-DATA-1: listing {fresh!r} returned {len(page)} records"
            exact_record(
                "KV-DATA-1",
                f"list_by_prefix({fresh!r})",
                page[0][1],
                (data_of(last.value), 1, None),
            )

    @pytest.mark.pmcp_clause("KV-LIVE-1", "KV-LIVE-4", "KV-ARG-3", "KV-CLEAN-1")
    async def test_expiries_across_the_whole_finite_range(
        self, backend: StorageBackend, capabilities: BackendCapabilities, clock: ManualClock
    ) -> None:
        """Any finite ``expires_at`` is stored as given and decides liveness exactly."""
        requires_manual_clock(capabilities, "KV-LIVE-1 (exact expiries)")
        now = clock()
        examples: list[tuple[str, float | int | None]] = [
            (e.cls, e.value) for e in expiry_examples(now)
        ]
        examples += [(e.cls, e.value) for e in expiry_int_examples(now)]
        dead = 0
        for index, (name, expires_at) in enumerate(examples):
            dead += not await _written_with_expiry(backend, now, index, name, expires_at)
        want = sorted(
            f"p:{way}{i:02d}"
            for i, (_, e) in enumerate(examples)
            if e is None or now < float(e)
            for way in ("put", "cas")
        )
        got_keys = await listed_keys(backend, "p:")
        assert got_keys == want, f"KV-LIVE-1: list_by_prefix('p:') at clock {now!r}: {got_keys}"
        removed = await backend.cleanup_expired()
        exact_int(
            "KV-CLEAN-1", "cleanup_expired() after the dead ones were written", removed, 2 * dead
        )

    @pytest.mark.pmcp_clause("KV-LIVE-3", "KV-LIVE-1")
    async def test_clock_jumps_of_every_size_both_ways(
        self, backend: StorageBackend, capabilities: BackendCapabilities, clock: ManualClock
    ) -> None:
        """The injected clock decides, whatever it did before: forward to each expiry, then
        back by the same jump (the record lives again: nothing was cleaned up)."""
        requires_manual_clock(capabilities, "KV-LIVE-3 (clock jumps)")
        start = clock()
        for index, jump in enumerate(CLOCK_JUMPS):
            expires_at = math.nextafter(start, math.inf) if jump.value == 0 else start + jump.value
            key = f"p:j{index}"
            await backend.put(key, b"j", expires_at=expires_at)
            for when, live, clause in (
                (math.nextafter(expires_at, -math.inf), True, "KV-LIVE-1"),
                (expires_at, False, "KV-LIVE-1"),
                (start, True, "KV-LIVE-3"),  # back: the clock decides, not what it showed
            ):
                clock.set(when)
                record = await backend.get(key)
                what = (
                    f"get({key!r}) with expires_at={expires_at!r} [{jump.cls} ahead] "
                    f"at clock {when!r}"
                )
                assert (record is not None) is live, (
                    f"{clause}: {what} returned {record!r}; the record is "
                    f"{'live' if live else 'dead'} on the injected clock"
                )
        clock.set(start)

    @pytest.mark.pmcp_clause("KV-VER-1", "KV-PUT-1", "KV-CAS-3", "KV-CAS-4")
    async def test_versions_of_every_magnitude_count_on_exactly(
        self, kit_target: KitTarget
    ) -> None:
        hooks = requires_seed(kit_target, "KV-VER-1")
        backend = kit_target.backend
        for example in VERSION_MAGNITUDES:
            version = example.value
            key = f"p:v{version}"
            await hooks.seed(key, b"s", version, None)
            what = f"put({key!r}) over version {version} [{example.cls}]"
            exact_int("KV-VER-1", what, await backend.put(key, b"t"), version + 1)
            conflict = await raised(
                VersionConflict,
                f"put_if_version({key!r}, expected={version})",
                backend.put_if_version(key, b"u", version),
            )
            exact_int(
                "KV-CAS-3", f"VersionConflict.actual [{example.cls}]", conflict.actual, version + 1
            )
            exact_record(
                "KV-VER-1",
                f"get({key!r}) [{example.cls}]",
                await backend.get(key),
                (b"t", version + 1, None),
            )
            if version + 1 == MAX_VERSION:
                await raised(
                    CapacityExceeded,
                    f"put_if_version({key!r}, expected={MAX_VERSION})",
                    backend.put_if_version(key, b"u", MAX_VERSION),
                )
                continue
            got = await backend.put_if_version(key, b"u", version + 1)
            exact_int(
                "KV-VER-1", f"put_if_version({key!r}, expected={version + 1})", got, version + 2
            )
        page = await backend.list_by_prefix("p:")
        for key, record in page:
            assert type(record.version) is int, (
                f"KV-VER-1: listed version of {key!r}: {record.version!r}"
            )
