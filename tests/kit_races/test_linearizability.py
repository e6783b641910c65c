"""The linearizability checker on hand-made histories with a known answer."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.linearizability import (
    UNKNOWN,
    Op,
    Result,
    check_history,
    format_window,
)
from conformance.model import NOT_FOUND, Conflict, KVModel, Record

K = "p:k"


def op(
    kind: str,
    invoke: float,
    complete: float | None,
    result: Result,
    *,
    data: bytes = b"",
    expected: int = 0,
    key: str = K,
    client: str = "",
) -> Op:
    return Op(kind, key, invoke, complete, result, data, expected, client)  # type: ignore[arg-type]


def rec(data: bytes, version: int) -> Record:
    return Record(data, version, None)


def test_sequential_history_of_every_operation_is_linearizable() -> None:
    history = [
        op("get", 0, 1, None),
        op("cas", 2, 3, NOT_FOUND, data=b"x", expected=4),
        op("cas", 4, 5, 1, data=b"a", expected=0),
        op("cas", 6, 7, Conflict(1), data=b"x", expected=0),
        op("put", 8, 9, 2, data=b"b"),
        op("cas", 10, 11, Conflict(2), data=b"x", expected=1),
        op("cas", 12, 13, 3, data=b"c", expected=2),
        op("get", 14, 15, rec(b"c", 3)),
        op("delete", 16, 17, True),
        op("delete", 18, 19, False),
        op("put", 20, 21, 1, data=b"d"),
    ]
    result = check_history(history)
    assert result.status == "linearizable"
    assert result.ops_checked == len(history)


def test_overlapping_calls_may_take_effect_in_either_order() -> None:
    history = [
        op("put", 0, 1, 1, data=b"a"),
        op("cas", 2, 7, 3, data=b"b", expected=2),  # overlaps the put below, which went first
        op("put", 3, 6, 2, data=b"c"),
        op("get", 4, 5, rec(b"c", 2)),  # reads between the two writes
        op("get", 8, 9, rec(b"b", 3)),
    ]
    assert check_history(history).status == "linearizable"


def test_two_cas_winners_on_one_version_are_caught_in_a_two_operation_window() -> None:
    history = [
        op("put", 0, 1, 1, data=b"a"),
        op("get", 2, 3, rec(b"a", 1)),
        op("cas", 4, 7, 2, data=b"w0", expected=1, client="w0"),
        op("get", 5, 8, rec(b"a", 1)),
        op("cas", 6, 9, 2, data=b"w1", expected=1, client="w1"),
        op("get", 10, 11, rec(b"w1", 2)),
    ]
    result = check_history(history)
    assert result.status == "violation"
    assert result.key == K
    window = result.window
    assert window is not None
    assert [o.client for o in window.ops] == ["w0", "w1"]
    assert window.start_states == frozenset([rec(b"a", 1)])
    assert window.culprit.client == "w1"
    # the window is a proof on its own: from its start states it is still not linearizable
    alone = check_history(window.ops, initial={K: rec(b"a", 1)})
    assert alone.status == "violation"


def test_read_of_an_overwritten_value_after_the_write_returned_is_a_violation() -> None:
    history = [
        op("put", 0, 1, 1, data=b"old"),
        op("put", 2, 3, 2, data=b"new"),
        op("get", 4, 5, rec(b"old", 1)),
    ]
    result = check_history(history)
    assert result.status == "violation"
    assert result.window is not None
    assert [o.kind for o in result.window.ops] == ["get"]
    assert result.window.start_states == frozenset([rec(b"new", 2)])


def test_conflict_must_carry_the_real_current_version() -> None:
    history = [
        op("put", 0, 1, 1, data=b"a"),
        op("put", 2, 3, 2, data=b"b"),
        op("cas", 4, 5, Conflict(1), data=b"x", expected=1),
    ]
    assert check_history(history).status == "violation"


def test_concurrent_puts_returning_one_version_are_a_violation() -> None:
    history = [
        op("put", 0, 3, 1, data=b"a"),
        op("put", 1, 2, 1, data=b"b"),
    ]
    result = check_history(history)
    assert result.status == "violation"
    assert result.window is not None
    assert len(result.window.ops) == 2


def test_delete_of_an_absent_key_cannot_report_true() -> None:
    assert check_history([op("delete", 0, 1, True)]).status == "violation"


def test_unknown_outcome_may_have_taken_effect() -> None:
    history = [
        op("put", 0, 1, 1, data=b"a"),
        op("cas", 2, None, UNKNOWN, data=b"b", expected=1),
        op("get", 3, 4, rec(b"b", 2)),
    ]
    assert check_history(history).status == "linearizable"


def test_unknown_outcome_may_not_have_taken_effect() -> None:
    history = [
        op("put", 0, 1, 1, data=b"a"),
        op("put", 2, None, UNKNOWN, data=b"b"),
        op("get", 3, 4, rec(b"a", 1)),
        op("get", 5, 6, rec(b"a", 1)),
    ]
    assert check_history(history).status == "linearizable"


def test_unknown_outcome_cannot_be_undone_once_seen() -> None:
    history = [
        op("put", 0, 1, 1, data=b"a"),
        op("cas", 2, None, UNKNOWN, data=b"b", expected=1),
        op("get", 3, 4, rec(b"b", 2)),
        op("get", 5, 6, rec(b"a", 1)),
    ]
    result = check_history(history)
    assert result.status == "violation"
    assert result.window is not None
    assert UNKNOWN in [o.result for o in result.window.ops]  # needed to explain the first read


def test_keys_are_checked_independently_and_the_bad_key_is_named() -> None:
    good = [op("put", t, t + 1, t // 2 + 1, data=b"%d" % t, key="p:good") for t in range(0, 40, 2)]
    bad = [
        op("put", 1, 2, 1, data=b"a", key="p:bad"),
        op("get", 3, 4, None, key="p:bad"),
    ]
    result = check_history(good + bad)
    assert result.status == "violation"
    assert result.key == "p:bad"
    assert result.ops_checked == len(good) + len(bad)


def test_initial_state_is_taken_into_account() -> None:
    history = [op("cas", 0, 1, 8, data=b"x", expected=7)]
    assert check_history(history).status == "violation"
    assert check_history(history, initial={K: rec(b"s", 7)}).status == "linearizable"


def test_budget_exhaustion_reports_unknown_instead_of_hanging() -> None:
    # 16 writes of unknown outcome in flight together, then a read nothing can explain: the
    # search would have to try every subset of the writes before saying "violation".
    history = [op("put", t, None, UNKNOWN, data=b"%d" % t, client=f"w{t}") for t in range(16)] + [
        op("get", 20, 21, rec(b"never written", 99))
    ]
    # Without the budget the search would end in "violation": "unknown" shows it stopped early.
    result = check_history(history, budget=0.05)
    assert result.status == "unknown"
    assert result.key == K


def test_window_report_shows_the_state_before_and_the_culprit() -> None:
    history = [
        op("put", 0, 1, 1, data=b"a", client="setup"),
        op("cas", 2, 5, 2, data=b"w0", expected=1, client="w0"),
        op("cas", 3, 4, 2, data=b"w1", expected=1, client="w1"),
    ]
    result = check_history(history)
    assert result.window is not None
    text = format_window(result.window)
    assert "state before the window: version 1, data b'a'" in text
    lines = text.splitlines()
    culprit = [line for line in lines if "first result no order explains" in line]
    assert len(culprit) == 1
    assert "w0: put_if_version(b'w0', expected=1) -> 2" in culprit[0]
    assert "setup" not in text


# -- against a brute-force oracle --------------------------------------------------------------

DATAS = (b"a", b"b")


def _replay(order: Sequence[Op], start: Record | None) -> bool:
    """Run ``order`` through a fresh sequential model; True iff every result matches."""
    model = KVModel(now=0.0)
    if start is not None:
        model.records[K] = start
    for item in order:
        if item.kind == "get":
            got: object = model.get(K)
        elif item.kind == "put":
            got = model.put(K, item.data, None)
        elif item.kind == "cas":
            got = model.put_if_version(K, item.data, item.expected, None)
        else:
            got = model.delete(K)
        if item.result is not UNKNOWN and (
            type(got) is not type(item.result) or got != item.result
        ):
            return False
    return True


def brute_force(ops: Sequence[Op], start: Record | None = None) -> bool:
    """Every real-time-respecting order, every subset of the unknown-outcome operations."""
    unknown = [item for item in ops if item.result is UNKNOWN]
    for taken in itertools.product([False, True], repeat=len(unknown)):
        dropped = {id(item) for item, keep in zip(unknown, taken, strict=True) if not keep}
        kept = [item for item in ops if id(item) not in dropped]
        for order in itertools.permutations(kept):
            respects_time = all(
                not (later.complete is not None and later.complete < earlier.invoke)
                for position, earlier in enumerate(order)
                for later in order[position + 1 :]
            )
            if respects_time and _replay(order, start):
                return True
    return False


RESULTS: dict[str, st.SearchStrategy[Result]] = {
    "get": st.none() | st.builds(rec, st.sampled_from(DATAS), st.integers(1, 3)),
    "put": st.integers(1, 3),
    "cas": st.integers(1, 3) | st.just(NOT_FOUND) | st.builds(Conflict, st.integers(1, 3)),
    "delete": st.booleans(),
}


@st.composite
def small_histories(draw: st.DrawFn) -> list[Op]:
    """Up to 6 overlapping operations on one key: linearizable by construction (results from
    an order of points inside the intervals), then maybe one result changed (a near miss),
    then maybe one or two outcomes lost."""
    shapes = []
    for _ in range(draw(st.integers(1, 6))):
        invoke = draw(st.integers(0, 12))
        complete = invoke + draw(st.integers(1, 6))
        kind = draw(st.sampled_from(["get", "put", "cas", "delete"]))
        data, expected = draw(st.sampled_from(DATAS)), draw(st.integers(0, 3))
        point = draw(st.floats(invoke, complete))
        shapes.append((point, invoke, complete, kind, data, expected))
    model = KVModel(now=0.0)
    ops: list[Op] = []
    for _point, invoke, complete, kind, data, expected in sorted(shapes):
        result: Result
        if kind == "get":
            result = model.get(K)
        elif kind == "put":
            result = model.put(K, data, None)
        elif kind == "cas":
            result = model.put_if_version(K, data, expected, None)
        else:
            result = model.delete(K)
        ops.append(op(kind, invoke, complete, result, data=data, expected=expected))
    if draw(st.booleans()):
        index = draw(st.integers(0, len(ops) - 1))
        ops[index] = replace(ops[index], result=draw(RESULTS[ops[index].kind]))
    lost = draw(st.lists(st.integers(0, len(ops) - 1), max_size=2, unique=True))
    return [
        replace(item, complete=None, result=UNKNOWN) if index in lost else item
        for index, item in enumerate(ops)
    ]


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(small_histories())
def test_checker_agrees_with_brute_force(history: list[Op]) -> None:
    result = check_history(history)
    expected = "linearizable" if brute_force(history) else "violation"
    assert result.status == expected
    if result.window is not None:  # the window is a proof from every state it may start in
        window = result.window
        assert window.culprit in window.ops
        assert not any(brute_force(window.ops, start) for start in window.start_states)
