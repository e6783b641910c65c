"""The cap's slot accounting as a pure function (``pmcp_tasks.cap.count_slots``): no storage,
so each rule of docs/domain.md ("The per-owner cap") is one small case."""

from __future__ import annotations

from pmcp_tasks.cap import Slot, count_slots

A, B, C = ("a" * 48, "b" * 48, "c" * 48)
NOW = 1_000.0
LATER = NOW + 100  # a slot stored to expire then still has a live task


def _slot(index: int, *tasks: str, expires_at: float | None = LATER) -> Slot:
    return Slot(index, tasks, version=index + 1, expires_at=expires_at)


def test_a_live_task_holds_its_slot_and_a_second_slot_of_it_is_free() -> None:
    count = count_slots([_slot(0, A), _slot(1, A)], {A}, (), NOW)
    assert count.held == {A}
    assert [slot.index for slot in count.holding] == [0]
    assert count.free == ((1, 2),)  # index 1 at its version, to overwrite


def test_undecodable_lost_or_never_written_slots_are_free() -> None:
    count = count_slots([_slot(0), _slot(1, B)], {A}, (), NOW)
    assert count.held == frozenset()
    assert count.free == ((0, 1), (1, 2))


def test_a_dead_tasks_slot_counts_until_it_lapses_unless_finished() -> None:
    dead = _slot(0, A, expires_at=NOW)  # stored expiry reached: its task died
    assert count_slots([dead], set(), (), NOW).held == {A}
    assert count_slots([dead], set(), {A}, NOW).held == frozenset()
    assert count_slots([dead, _slot(1, A)], {A}, (), NOW).held == {A}  # counted once


def test_finished_tasks_do_not_count() -> None:
    count = count_slots([_slot(0, A), _slot(1, B)], {A, B}, {B}, NOW)
    assert count.held == {A}
    assert count.free == ((1, 2),)


def test_a_slot_that_adopted_orphans_counts_each_of_them() -> None:
    count = count_slots([_slot(0, A, B), _slot(1, C)], {A, B, C}, (), NOW)
    assert count.held == {A, B, C}
    assert len(count.holding) == 2


def test_a_slot_that_never_expires_never_died() -> None:
    assert count_slots([_slot(0, A, expires_at=None)], set(), (), NOW).held == frozenset()
