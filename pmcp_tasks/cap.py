"""The per-owner cap: one slot record per task, claimed with create-if-absent.

An owner with cap N has at most N *slot records*, ``%q<owner partition>:<i>`` for i in
0..N-1. A create claims one with ``put_if_version(slot, ..., 0)`` before it writes its task, so
two creates can never hold the same slot and the owner can never hold more than N tasks: the
count is exact by construction, with no record that every create of the owner rewrites (one
count record per owner would be a hot spot whose size grew with the owner's tasks). Why this shape,
what it bounds and how it heals are argued in ``docs/domain.md`` ("The per-owner cap").

A slot lives until its task's expiry plus ``StoreConfig.dead_task_grace``, so a dead task keeps
counting until its record has surely been removed, which bounds what an owner keeps stored. A
slot may hold several tasks: live tasks whose own slot was lost are added to held slots when no
slot is free (*adopted*), so that the slots stay taken, in every process, until the owner is
back under the cap.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass

from pmcp_tasks.backend import MAX_VERSION, StorageBackend, VersionedRecord
from pmcp_tasks.config import StoreConfig
from pmcp_tasks.errors import (
    BackendError,
    BackendUnavailable,
    CapacityExceeded,
    ConcurrentModification,
    RecordNotFound,
    StorageError,
    StorageFailure,
    TaskLimitExceeded,
    VersionConflict,
)
from pmcp_tasks.ids import created_ms, is_task_id
from pmcp_tasks.keys import owner_partition, task_key
from pmcp_tasks.paging import walk
from pmcp_tasks.record import canonical_json, decode_json
from pmcp_tasks.timebase import Timebase
from pmcp_tasks.writes import OutcomeUnknown, backoff, cas, failure

logger = logging.getLogger("pmcp_tasks")

SLOT_PARTITION_MARK = "%q"
"""Prefix of an owner's slot partition. Percent-encoding never yields '%' before a non-hex
digit, so no owner partition (and no task key) can ever equal a slot key."""

RANDOM_PROBES = 24
"""Random slots a create tries before it lists the owner's slots. At a fill fraction f all of
them are taken with probability f**24 (0.02% at f = 0.7, 8% at f = 0.9), so the O(cap) listing,
which costs as much as hundreds of probes for a large cap, is rare until the owner is close to
the cap, where it is exactly what is needed. A probe is one round trip."""

SLOT_RECORD_BYTES = 64
"""Upper bound on a slot record of one task (``{"task":"<48 hex>"}`` is 59 bytes); a slot that
adopted tasks is 51 bytes more per task."""

WRITE_ROUNDS = 3
"""Times a finished task's slot is listed and rewritten before the store gives up (each round
lost to a create that rewrote the slot between the listing and the write)."""
EXISTS_BATCH = 16
"""Existence questions a refusal asks at once: enough to overlap round trips, few enough not
to open a connection each (a pool opens one per concurrent call)."""
REMEMBERED_CLAIMS = 10_000
"""Claims a store keeps to free a finished task's slot by key: about 1 MB at most; a task
finished by another process, or after its claim was forgotten, lists the owner's slots."""


@dataclass(frozen=True, slots=True)
class Claim:
    """A slot this create holds: enough to give it back with a compare-and-set."""

    key: str
    version: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Slot:
    """One listed slot record; ``tasks`` is empty when its data cannot be decoded."""

    index: int
    tasks: tuple[str, ...]
    version: int
    expires_at: float | None


@dataclass(frozen=True, slots=True)
class LiveTask:
    """A live task as the owner's task listing shows it, for the rebuild.

    ``final``: completed, failed or cancelled. Its record stays readable until it expires, but
    it no longer holds a slot, so that finishing or cancelling work lets the owner start more.
    """

    task_id: str
    expires_at: float | None
    final: bool = False


LiveTasks = Callable[[str], Awaitable[tuple[LiveTask, ...]]]
"""The owner's live tasks, read by the store (which knows how to decode them)."""


@dataclass(frozen=True, slots=True)
class SlotCount:
    """What an owner's slots hold: the tasks that count, the slots that keep them, and the
    free slots as (index, version to overwrite)."""

    held: frozenset[str]
    holding: tuple[Slot, ...]
    free: tuple[tuple[int, int], ...]


def count_slots(
    slots: Iterable[Slot], counting: Collection[str], finished: Collection[str], died_by: float
) -> SlotCount:
    """The slot accounting of the cap, apart from any storage: the subtle part.

    A task counts once, in the first slot that names it, while it is in ``counting`` (live
    or still young enough to be written) and not in ``finished``. A slot whose stored expiry
    is at most ``died_by`` was claimed for a task that is dead by now: it keeps counting its
    first task until it lapses (so a dead task counts until storage has surely removed it),
    unless that task finished or is counted elsewhere. Every other slot is free: undecodable,
    a second slot of one task, or one whose task was never written or was lost.
    """
    held: set[str] = set()
    holding: list[Slot] = []
    free: list[tuple[int, int]] = []
    for slot in slots:
        counted = {
            task_id
            for task_id in slot.tasks
            if task_id in counting and task_id not in held and task_id not in finished
        }
        died = slot.expires_at is not None and slot.expires_at <= died_by
        first = slot.tasks[0] if slot.tasks else None
        if not counted and died and first is not None and first not in held | set(finished):
            counted = {first}  # its tasks died: it counts until it lapses
        if counted:
            held |= counted
            holding.append(slot)
        else:
            free.append((slot.index, slot.version))
    return SlotCount(frozenset(held), tuple(holding), tuple(free))


def slot_prefix(owner: str) -> str:
    """The listing prefix of ``owner``'s slot records."""
    return f"{SLOT_PARTITION_MARK}{owner_partition(owner)}:"


def slot_data(*task_ids: str) -> bytes:
    """The bytes of a slot held by ``task_ids`` (one, unless the slot adopted orphans)."""
    if len(task_ids) == 1:
        return canonical_json({"task": task_ids[0]})
    return canonical_json({"tasks": list(task_ids)})


def slot_tasks(data: bytes) -> tuple[str, ...]:
    """The task ids a slot record names; none for anything this module did not write."""
    try:
        document = decode_json(data)
    except ValueError:
        return ()
    if isinstance(document, dict) and set(document) == {"task"}:
        named = [document["task"]]
    elif isinstance(document, dict) and set(document) == {"tasks"}:
        named = document["tasks"]
        if not isinstance(named, list) or len(named) < 2:
            return ()
    else:
        return ()
    if not all(isinstance(task_id, str) and is_task_id(task_id) for task_id in named):
        return ()
    return tuple(named)


class OwnerCap:
    """Claims and releases the slots of ``config.max_tasks_per_owner``."""

    def __init__(
        self,
        backend: StorageBackend,
        config: StoreConfig,
        timebase: Timebase,
        live_tasks: LiveTasks,
    ) -> None:
        self._backend = backend
        self._config = config
        self._time = timebase
        self._clock = timebase.now
        self._live_tasks = live_tasks
        self._held: OrderedDict[tuple[str, str], Claim] = OrderedDict()

    def slot_expiry(self, task_expires_at: float | None) -> float | None:
        """A slot outlives its task by the grace, so that a dead task counts until removed
        (stored padded by the clock margin, like its task: :mod:`pmcp_tasks.timebase`)."""
        if task_expires_at is None:
            return None
        return self._time.stored_expiry(task_expires_at + self._config.dead_task_grace)

    def _died_by(self) -> float:
        """A slot stored to expire by then was claimed for a task that is dead now."""
        return self._clock() + self._config.dead_task_grace + self._time.margin

    async def claim(self, owner: str, task_id: str, task_expires_at: float | None) -> Claim:
        """A slot for ``task_id``, or ``TaskLimitExceeded`` when the owner has none left.

        The claim is remembered (the latest :data:`REMEMBERED_CLAIMS`), so that when this
        process finishes the task, as the instance that created it usually does, its slot is
        freed by key without listing the owner's slots (:meth:`finished`).
        """
        claim = await self._claim(owner, task_id, task_expires_at)
        self._held[(owner, task_id)] = claim
        if len(self._held) > REMEMBERED_CLAIMS:
            self._held.popitem(last=False)
        return claim

    async def _claim(self, owner: str, task_id: str, task_expires_at: float | None) -> Claim:
        """See :meth:`claim`.

        O(1) round trips expected below the cap: random create-if-absent probes. Only when
        they all miss does it list the owner's slots and tasks (:meth:`_claim_by_listing`).
        """
        cap = self._config.max_tasks_per_owner
        assert cap is not None  # the store only builds an OwnerCap for a capped config
        prefix = slot_prefix(owner)
        data = slot_data(task_id)
        expires_at = self.slot_expiry(task_expires_at)
        for index in random.sample(range(cap), min(cap, RANDOM_PROBES)):
            probe = await self._try(prefix + str(index), data, 0, expires_at)
            if isinstance(probe, Claim):
                return probe
        outcome: Claim | VersionConflict | None = None
        for attempt in range(self._config.cas_attempts):
            if attempt:
                await backoff(self._config, attempt)
            outcome = await self._claim_by_listing(owner, data, expires_at, cap)
            if isinstance(outcome, Claim):
                return outcome
        assert not isinstance(outcome, Claim)
        expected, actual = (0, 0) if outcome is None else (outcome.expected, outcome.actual)
        raise ConcurrentModification(
            task_id,
            expected,
            actual,
            message=(
                f"every free task slot of this owner was taken by another create first, "
                f"{self._config.cas_attempts} rounds in a row (last: "
                f"{'none free' if outcome is None else repr(outcome.key)} expected version "
                f"{expected}, found {actual}); retry the request"
            ),
        )

    async def release(self, claim: Claim) -> None:
        """Give a slot back after its task could not be written; best effort.

        The slot is ended with a compare-and-set on the version the claim wrote, so a slot
        that someone else reclaimed meanwhile is left alone. If this fails, the rebuild frees
        the slot once ``dead_task_grace`` has passed.
        """
        try:
            await cas(
                self._backend, self._config, claim.key, claim.data, claim.version, self._clock()
            )
        except (BackendError, OutcomeUnknown) as exc:
            # A full noeviction Redis refuses this write as it refused the task's, but not a
            # delete, which frees memory. No other create can have taken the slot meanwhile:
            # it counts as ours while our task is younger than dead_task_grace.
            try:
                await self._backend.delete(claim.key)
            except StorageError as failed:
                logger.warning("could not release the task slot %r: %s; %s", claim.key, exc, failed)
        except StorageError as exc:
            logger.warning("could not release the task slot %r: %s", claim.key, exc)

    async def _try(
        self, key: str, data: bytes, expected: int, expires_at: float | None
    ) -> Claim | VersionConflict:
        """One compare-and-set on a slot; the conflict when another writer holds it."""
        try:
            version = await cas(self._backend, self._config, key, data, expected, expires_at)
        except VersionConflict as exc:
            return exc
        except RecordNotFound:  # the slot lapsed since it was listed: absent now
            return VersionConflict(key, expected, 0)
        except OutcomeUnknown:
            # The slot may be ours (a lost reply) or damaged below the store (the backend
            # refuses to compare with it): either way try another one. A slot of ours that
            # landed holds no task and is free again once the grace has passed.
            return VersionConflict(key, expected, 0)
        except StorageError as exc:
            raise failure("claiming a task slot", exc) from exc
        return Claim(key, version, data)

    async def _refused_by_slots(self, owner: str, slots: dict[int, Slot], cap: int) -> bool:
        """Whether the slots alone prove the owner full, without reading a task's body.

        A refusal that read all of an owner's tasks read megabytes when the tasks were big
        (100 tasks of 1 MB: 100 MB per refused create), and a client at its cap can call again
        and again. A finished task gives its slot back (:meth:`finished`), so a slot's task
        counts while it is young or its record still exists, which is asked of storage by a
        write that can never apply (:meth:`_exists`): one small round trip per slot, no body.
        Orphans (live tasks whose slot record was lost) go unseen, but they only add to the
        count, so this refuses only where the full read would.
        """
        named = {task_id for slot in slots.values() for task_id in slot.tasks}
        if len(named) < cap:
            return False  # cannot prove it full: the full read decides
        now_ms = self._clock() * 1000
        grace_ms = self._config.dead_task_grace * 1000
        young = {task_id for task_id in named if created_ms(task_id) > now_ms - grace_ms}
        asked = sorted(named - young)
        found: set[str] = set()
        for start in range(0, len(asked), EXISTS_BATCH):
            batch = asked[start : start + EXISTS_BATCH]
            answers = await asyncio.gather(*(self._exists(owner, task_id) for task_id in batch))
            if None in answers:
                return False  # storage could not tell: the full read decides
            found.update(task_id for task_id, exists in zip(batch, answers, strict=True) if exists)
        count = count_slots(slots.values(), young | found, (), self._died_by())
        return len(count.held) >= cap

    async def _exists(self, owner: str, task_id: str) -> bool | None:
        """Whether the task's record is live, asked without reading it (``None``: unknown).

        A compare-and-set expecting ``MAX_VERSION`` never writes: a record at any other version
        is a conflict, an absent one ``RecordNotFound``, and one at ``MAX_VERSION`` could not
        take another version (``CapacityExceeded``, KV-VER-1).
        """
        key = task_key(owner, task_id)
        try:
            await self._backend.put_if_version(key, b"{}", MAX_VERSION, expires_at=None)
        except (VersionConflict, CapacityExceeded):
            return True
        except RecordNotFound:
            return False
        except StorageError:
            return None
        return None  # unreachable on a backend that keeps KV-VER-1

    async def finished(self, owner: str, task_id: str) -> None:
        """A task of ``owner`` finished: its slot is free at once, so that finishing work lets
        the owner start more and a slot names only tasks that still count.

        The slot is found by listing the owner's slots (O(cap) small records) and ended, or
        rewritten without the task if it adopted others, by a compare-and-set, so a slot
        someone else rewrote meanwhile is listed again. Best effort: a failure is logged, and
        the slot then counts until its task expires plus ``dead_task_grace``.
        """
        cap = self._config.max_tasks_per_owner
        assert cap is not None  # the store only builds an OwnerCap for a capped config
        prefix = slot_prefix(owner)
        claim = self._held.pop((owner, task_id), None)
        try:
            if claim is not None and await self._free_claimed(claim, task_id):
                return
            for _ in range(WRITE_ROUNDS):
                slots = await self._list_slots(owner, cap)
                mine = [slot for slot in slots.values() if task_id in slot.tasks]
                if not mine or all([await self._free(prefix, slot, task_id) for slot in mine]):
                    return
        except StorageFailure as exc:
            logger.warning("could not free the task slot of a finished task: %s", exc)

    async def _free_claimed(self, claim: Claim, task_id: str) -> bool:
        """End the slot this process claimed for ``task_id`` by its key: one read, one
        compare-and-set. False when it no longer holds exactly that task at the claimed
        version (it adopted orphans, or lapsed and was claimed again): then it is listed."""
        try:
            stored = await self._backend.get(claim.key)
        except StorageError as exc:
            raise failure("reading a task slot", exc) from exc
        if stored is None or stored.version != claim.version:
            return False
        if slot_tasks(stored.data) != (task_id,):
            return False
        outcome = await self._try(claim.key, b"{}", claim.version, self._clock())
        return isinstance(outcome, Claim)

    async def _free(self, prefix: str, slot: Slot, task_id: str) -> bool:
        """Take ``task_id`` out of ``slot``; False when the slot changed since it was listed."""
        rest = tuple(other for other in slot.tasks if other != task_id)
        # Ended now, and naming no task, so that a backend whose clock is behind, which still
        # lists it for a while, shows a free slot and not a finished task's.
        data = slot_data(*rest) if rest else b"{}"
        expires_at = slot.expires_at if rest else self._clock()
        outcome = await self._try(prefix + str(slot.index), data, slot.version, expires_at)
        return isinstance(outcome, Claim)

    async def _claim_by_listing(
        self, owner: str, data: bytes, expires_at: float | None, cap: int
    ) -> Claim | VersionConflict | None:
        """Rebuild the owner's count from its slots *and* its live tasks, then claim.

        The owner is refused when the tasks its slots hold (:func:`count_slots`) plus the
        live tasks that have no slot (their slot record was lost) reach the cap, so a lost
        slot record cannot let the owner exceed the cap once it gets there; those tasks get
        a slot again, first when there is room, else before the owner is refused
        (:meth:`_adopt`).
        """
        slots = await self._list_slots(owner, cap)
        if await self._refused_by_slots(owner, slots, cap):
            raise _limit_exceeded(cap)
        count, orphans = await self._rebuild(owner, slots)
        free = [*count.free, *((index, 0) for index in range(cap) if index not in slots)]
        random.shuffle(free)
        if len(count.held) + len(orphans) >= cap:
            await self._adopt(owner, orphans, free, list(count.holding))
            raise _limit_exceeded(cap)
        prefix = slot_prefix(owner)
        await self._reslot(prefix, orphans, free, keep=1)  # tasks that lost their slot first
        outcome: Claim | VersionConflict | None = None
        for index, version in free:
            outcome = await self._try(prefix + str(index), data, version, expires_at)
            if isinstance(outcome, VersionConflict) and version == 0:
                outcome = await self._overwrite_damaged(outcome, data, expires_at)
            if isinstance(outcome, Claim):
                return outcome
        return outcome

    async def _rebuild(
        self, owner: str, slots: dict[int, Slot]
    ) -> tuple[SlotCount, list[LiveTask]]:
        """The slots counted against the owner's live tasks, and the live tasks no slot holds."""
        listed = await self._live_tasks(owner)
        finished = {task.task_id for task in listed if task.final}
        tasks = {task.task_id: task for task in listed if not task.final}
        now_ms = self._clock() * 1000
        grace_ms = self._config.dead_task_grace * 1000
        counting = set(tasks) | {
            task_id
            for slot in slots.values()
            for task_id in slot.tasks
            if created_ms(task_id) > now_ms - grace_ms
        }
        count = count_slots(slots.values(), counting, finished, self._died_by())
        return count, [task for task_id, task in tasks.items() if task_id not in count.held]

    async def _adopt(
        self, owner: str, orphans: list[LiveTask], free: list[tuple[int, int]], holding: list[Slot]
    ) -> None:
        """Give every orphan a slot before refusing its owner: a free one, else a held one.

        An owner at the cap with orphans got there because slot records were lost and creates
        took the freed indices. Were the orphans left without a slot, the next slot to lapse
        would look free to a probe in any process, and the owner would stay above the cap for
        as long as the orphans live. Added to the held slots that would lapse soonest, each
        orphan keeps one taken until the orphan too has died (the slot's expiry becomes the
        later of the two), so the owner gets no slot back before it is under the cap again.
        Best effort: a slot that changed since the listing is skipped, and the next refused
        create tries again.
        """
        prefix = slot_prefix(owner)
        await self._reslot(prefix, orphans, free, keep=0)
        if not orphans or not holding:
            return
        # The slots that would lapse soonest: those are the ones a probe would find free next.
        holding = sorted(
            holding, key=lambda slot: math.inf if slot.expires_at is None else slot.expires_at
        )
        adopted: dict[int, list[LiveTask]] = {}
        for position, orphan in enumerate(orphans):
            adopted.setdefault(position % len(holding), []).append(orphan)
        for position, extra in adopted.items():
            slot = holding[position]
            expiries = [slot.expires_at, *(self.slot_expiry(task.expires_at) for task in extra)]
            known = [expiry for expiry in expiries if expiry is not None]
            await self._adopt_into(
                prefix + str(slot.index),
                slot_data(*slot.tasks, *(task.task_id for task in extra)),
                slot.version,
                None if len(known) < len(expiries) else max(known),
            )

    async def _reslot(
        self, prefix: str, orphans: list[LiveTask], free: list[tuple[int, int]], keep: int
    ) -> None:
        """Give orphans free slots of their own, leaving ``keep`` free slots (popped from both)."""
        while orphans and len(free) > keep:
            orphan = orphans.pop()
            index, version = free.pop()
            await self._adopt_into(
                prefix + str(index),
                slot_data(orphan.task_id),
                version,
                self.slot_expiry(orphan.expires_at),
            )

    async def _adopt_into(
        self, key: str, data: bytes, version: int, expires_at: float | None
    ) -> None:
        """One adoption; a failure is logged, since the owner is refused either way."""
        try:
            await self._try(key, data, version, expires_at)
        except (StorageFailure, ValueError) as exc:  # ValueError: a record size limit
            logger.warning("could not give task slot %r to a task that lost its own: %s", key, exc)

    async def _overwrite_damaged(
        self, conflict: VersionConflict, data: bytes, expires_at: float | None
    ) -> Claim | VersionConflict:
        """A slot the listing skipped but that exists: damaged below the store, so free.

        Backends skip records they cannot decode in listings and raise ``BackendError`` from
        ``get`` on them (KV-DAMAGE-1); such a slot would otherwise hold its index for ever.
        It is overwritten with a compare-and-set on the version its conflict reported, so that
        of two creates doing this at once only one gets it; a backend that cannot compare with
        a damaged version has it deleted (the contract's repair) and then claimed as absent.
        A slot that reads fine was simply claimed by someone else since the listing.
        """
        try:
            await self._backend.get(conflict.key)
        except BackendUnavailable:
            return conflict
        except BackendError:
            if conflict.actual:
                outcome = await self._try(conflict.key, data, conflict.actual, expires_at)
                if isinstance(outcome, Claim):
                    return outcome
            try:
                await self._backend.delete(conflict.key)
            except StorageError:
                return conflict
            return await self._try(conflict.key, data, 0, expires_at)
        except StorageError:
            return conflict
        return conflict

    async def _list_slots(self, owner: str, cap: int) -> dict[int, Slot]:
        slots: dict[int, Slot] = {}
        prefix = slot_prefix(owner)
        try:
            async for key, stored in walk(self._backend, prefix):
                index = _slot_index(key[len(prefix) :], cap)
                if index is not None:
                    slots[index] = _slot(index, stored)
        except StorageError as exc:
            raise failure("listing task slots", exc) from exc
        return slots


def _limit_exceeded(cap: int) -> TaskLimitExceeded:
    return TaskLimitExceeded(
        f"this owner already has {cap} unfinished tasks, its cap (max_tasks_per_owner); a "
        "task stops counting as soon as it completes, fails or is cancelled"
    )


def _slot(index: int, stored: VersionedRecord) -> Slot:
    return Slot(index, slot_tasks(stored.data), stored.version, stored.expires_at)


def _slot_index(item: str, cap: int) -> int | None:
    """The index an item names, if it is one of the current cap's (a lowered cap ignores more)."""
    if not item.isdigit() or len(item) > len(str(cap)):
        return None
    index = int(item)
    return index if index < cap and str(index) == item else None
