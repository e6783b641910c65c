"""Damaged records (KV-DAMAGE-1): one record the backend cannot decode never hides the others.

Only the backend's own storage layout says what an undecodable record looks like, so the
factory's ``plant_damaged`` hook stores it (:data:`conformance.harness.DAMAGE_KINDS`). Each kind
is planted between two healthy records, so that a listing that stops, fails or comes back short
at the damaged one shows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import pytest

from conformance.contract.base import (
    racing_puts,
    raised,
    requires_plant_damaged,
    run_concurrently,
    stored,
)
from conformance.harness import DAMAGE_KINDS, KitTarget, SupportsPlantDamaged
from pmcp_tasks.backend import StorageBackend
from pmcp_tasks.errors import BackendError, BackendUnavailable, RecordNotFound, VersionConflict

CLAUSE = "KV-DAMAGE-1"
LOGGER = "pmcp_tasks"
DAMAGED = "p:b"
HEALTHY = [("p:a", b"first"), ("p:c", b"third")]
INDEX_ONLY = "bad-index-member"
"""The kind that is no record at ``key``, only an index entry naming no key: listings only."""
RECORD_KINDS = tuple(kind for kind in DAMAGE_KINDS if kind != INDEX_ONLY)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def warnings_logged() -> Iterator[list[str]]:
    """The warnings logged on ``pmcp_tasks`` (or a child of it) while the block runs."""
    logger = logging.getLogger(LOGGER)
    handler = _Collect()
    level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@dataclass(frozen=True)
class Planted:
    """A damaged record at :data:`DAMAGED` between the healthy ones, and how to plant it again."""

    kind: str
    hooks: SupportsPlantDamaged

    async def again(self) -> None:
        assert await self.hooks.plant_damaged(DAMAGED, self.kind)


async def plant(kit_target: KitTarget, kind: str) -> Planted:
    """The two healthy records and the damaged one between them; skip a kind that cannot be."""
    hooks = requires_plant_damaged(kit_target, CLAUSE)
    for key, data in HEALTHY:
        await kit_target.backend.put(key, data)
    if not await hooks.plant_damaged(DAMAGED, kind):
        pytest.skip(
            reason=f"{type(hooks).__qualname__}.plant_damaged says damage kind {kind!r} cannot "
            f"occur in this backend's storage; {CLAUSE} checks the kinds it accepts"
        )
    return Planted(kind, hooks)


def names_the_key(error: BackendError, what: str) -> None:
    """A damaged record's error: BackendError, not the outage kind, with the key in its words."""
    assert not isinstance(error, BackendUnavailable), (
        f"{what} raised BackendUnavailable ({error}); a damaged record is no outage (a retry "
        "cannot help): the contract says BackendError"
    )
    assert DAMAGED in str(error), f"{what} raised {error!r}, whose message omits the key"


async def listing(
    backend: StorageBackend, kind: str, *, after: str | None = None, limit: int | None = None
) -> list[tuple[str, bytes]]:
    call = f"list_by_prefix('p:', after={after!r}, limit={limit!r})"
    try:
        found = await backend.list_by_prefix("p:", after=after, limit=limit)
    except Exception as exc:
        raise AssertionError(
            f"{call} with a record damaged as {kind} at {DAMAGED!r} raised {exc!r}; the "
            "contract says the listing leaves it out and returns the others"
        ) from exc
    return [(key, record.data) for key, record in found]


class DamageContract:
    """A damaged record is reported by ``get``, skipped by listings, replaced by writes."""

    pytestmark = pytest.mark.anyio

    @pytest.fixture(params=RECORD_KINDS)
    async def damaged_record(
        self, kit_target: KitTarget, request: pytest.FixtureRequest
    ) -> Planted:
        """Each kind that is a record at the key (``get`` and writes apply)."""
        return await plant(kit_target, request.param)

    @pytest.fixture(params=DAMAGE_KINDS)
    async def any_damage(self, kit_target: KitTarget, request: pytest.FixtureRequest) -> Planted:
        """Every kind (listings apply to all)."""
        return await plant(kit_target, request.param)

    @pytest.mark.pmcp_clause(CLAUSE)
    async def test_get_of_a_damaged_record_raises_backend_error_naming_the_key(
        self, backend: StorageBackend, damaged_record: Planted
    ) -> None:
        kind = damaged_record.kind
        what = f"get({DAMAGED!r}) of a record damaged as {kind}"
        names_the_key(await raised(BackendError, what, backend.get(DAMAGED)), what)
        for key, data in HEALTHY:
            assert await stored(backend, key) == (data, 1, None)

    @pytest.mark.pmcp_clause(CLAUSE)
    async def test_listing_skips_a_damaged_record_with_a_warning(
        self, backend: StorageBackend, any_damage: Planted
    ) -> None:
        kind = any_damage.kind
        with warnings_logged() as logged:
            assert await listing(backend, kind) == HEALTHY, (
                "the healthy records, without the damaged one"
            )
        assert logged, (
            f"list_by_prefix('p:') skipped a record damaged as {kind} without a warning on the "
            f"{LOGGER!r} logger (or a child of it)"
        )
        if kind != INDEX_ONLY:
            assert any(DAMAGED in message for message in logged), (
                f"no warning names the damaged key {DAMAGED!r}: {logged}"
            )
        # Skipping must not shorten a page: a short page means the listing is complete.
        assert await listing(backend, kind, limit=2) == HEALTHY
        assert await listing(backend, kind, after="p:a", limit=1) == HEALTHY[1:]

    @pytest.mark.pmcp_clause(CLAUSE)
    async def test_a_listing_names_every_damaged_record_it_skips(
        self, backend: StorageBackend, kit_target: KitTarget
    ) -> None:
        """Several damaged records in one page: each is left out and named in a warning."""
        hooks = requires_plant_damaged(kit_target, CLAUSE)
        healthy: list[tuple[str, bytes]] = []
        damaged: list[str] = []
        for position, kind in enumerate(RECORD_KINDS):
            healthy.append((f"p:k{position}a", kind.encode()))
            await backend.put(*healthy[-1])
            if await hooks.plant_damaged(f"p:k{position}b", kind):
                damaged.append(f"p:k{position}b")
        if len(damaged) < 2:
            pytest.skip(
                reason=f"the backend can hold {len(damaged)} of the damage kinds; this "
                "test needs two in one listing"
            )
        with warnings_logged() as logged:
            assert await listing(backend, "several kinds") == healthy, (
                "the healthy records, without the damaged ones"
            )
        unnamed = [key for key in damaged if not any(key in message for message in logged)]
        assert not unnamed, (
            f"list_by_prefix('p:') skipped {len(damaged)} damaged records ({damaged}) but no "
            f"warning names {unnamed}: {logged}"
        )

    @pytest.mark.pmcp_clause(CLAUSE)
    async def test_put_and_delete_repair_a_damaged_record(
        self, backend: StorageBackend, damaged_record: Planted
    ) -> None:
        kind = damaged_record.kind
        on = f"on a record damaged as {kind}"
        version = await backend.put(DAMAGED, b"put")
        assert type(version) is int, f"put {on} returned {version!r}"
        assert version >= 1, f"put {on} returned {version!r}"
        assert await stored(backend, DAMAGED) == (b"put", version, None)

        await damaged_record.again()
        await backend.delete(DAMAGED)
        assert await backend.get(DAMAGED) is None
        with warnings_logged() as logged:
            assert await listing(backend, kind) == HEALTHY
        assert not any(DAMAGED in message for message in logged), (
            f"delete {on} left something the listing still warns about: {logged}"
        )

    @pytest.mark.pmcp_clause(CLAUSE, "KV-PUT-2")
    async def test_concurrent_puts_over_a_damaged_record_all_succeed(
        self, backend: StorageBackend, damaged_record: Planted
    ) -> None:
        """Writers that race to replace a damaged record: each put succeeds with its own
        version, as over an absent one; a backend that gives up after losing the race to the
        first replacement (instead of writing over it) fails here."""
        await racing_puts(
            backend, 8, None, f"a record damaged as {damaged_record.kind}", key=DAMAGED
        )

    @pytest.mark.pmcp_clause(CLAUSE, "KV-CAS-5")
    async def test_concurrent_creates_over_a_damaged_record_have_one_winner(
        self, backend: StorageBackend, damaged_record: Planted
    ) -> None:
        """``put_if_version(key, data, 0)`` racing over a damaged record: either every call
        refuses (``BackendError``), or one creates the record and every other one conflicts
        with it, as over an absent record (the record is no longer damaged once one won)."""
        kind = damaged_record.kind
        results = await run_concurrently(
            [partial(backend.put_if_version, DAMAGED, f"w{i}".encode(), 0) for i in range(8)]
        )
        won = [r for r in results if type(r) is int]
        shown = [r if type(r) is int else repr(r) for r in results]
        if not won:
            assert all(
                isinstance(r, BackendError) and not isinstance(r, BackendUnavailable)
                for r in results
            ), f"8 concurrent creates over a record damaged as {kind}, none won: {shown}"
            return
        assert len(won) == 1, f"8 concurrent creates over a record damaged as {kind}: {shown}"
        assert all(isinstance(r, VersionConflict) for r in results if type(r) is not int), (
            f"8 concurrent creates over a record damaged as {kind}: one won, so every other "
            f"must conflict with it, as over an absent record; got {shown}"
        )

    @pytest.mark.pmcp_clause(CLAUSE)
    async def test_cas_on_a_damaged_record_treats_it_as_absent_compares_or_refuses(
        self, backend: StorageBackend, damaged_record: Planted
    ) -> None:
        """Each call answers in one of the three allowed ways; only what it writes shows up
        (a refusal or a conflict leaves the record damaged)."""
        kind = damaged_record.kind
        for expected in (1, 0):
            await damaged_record.again()
            call = f"put_if_version({DAMAGED!r}, b'cas', {expected}) on a record damaged as {kind}"
            outcome: object
            try:
                outcome = await backend.put_if_version(DAMAGED, b"cas", expected)
            except (RecordNotFound, VersionConflict, BackendError) as exc:
                outcome = exc
            written = cas_answer(outcome, expected, kind, call)
            if written is None:  # nothing written: the record is still damaged
                await raised(BackendError, f"get after {call}", backend.get(DAMAGED))
            else:
                after = await stored(backend, DAMAGED)
                assert after == (b"cas", written, None)


ANSWERS: dict[str, dict[int, object]] = {
    "absent": {1: "RecordNotFound", 0: 1},
    "compared": {1: 2, 0: "VersionConflict(actual=1)"},
    "refused": {1: "BackendError", 0: "BackendError"},
}
"""What put_if_version(expected) answers on a damaged record, in each allowed way (KV-DAMAGE-1):
the hooks plant version 1 where the damage spares the version."""


def cas_answer(outcome: object, expected: int, kind: str, call: str) -> int | None:
    """Fail unless ``outcome`` is one of the allowed answers; the version it wrote, if any."""
    if isinstance(outcome, VersionConflict):
        got: object = f"VersionConflict(actual={outcome.actual})"
    elif isinstance(outcome, BackendError):
        names_the_key(outcome, call)
        got = "BackendError"
    elif isinstance(outcome, RecordNotFound):
        got = "RecordNotFound"
    else:
        got = outcome
    ways = {way: answers[expected] for way, answers in ANSWERS.items()}
    if kind in ("bad-version", "huge-version"):
        del ways["compared"]  # no version left to compare with
    allowed = ", ".join(f"{answer!r} ({way})" for way, answer in ways.items())
    assert got in ways.values(), f"{call} answered {got!r}; the contract allows {allowed}"
    return got if isinstance(got, int) else None
