"""The kit's linearizability checker for histories of get, put, CAS and delete.

A history is a list of :class:`Op`: what was called, when it was invoked, when it returned and
what it returned. It is linearizable when every operation can be given one instant between its
invocation and its return such that, taken in that order, the operations replay the sequential
contract (:mod:`conformance.model`). The check is Wing & Gong's search with Lowe's memoisation
(as in Knossos and Porcupine):

* **P-compositionality**: operations on different keys commute, so each key's sub-history is
  checked on its own, which turns one exponential search into several small ones.
* **Search**: walk the time-ordered list of call and return events; at a call, try to
  linearize that operation now (the state machine must accept its recorded result); at a
  return whose operation is not linearized yet, backtrack. Every (set of linearized
  operations, state) pair is explored once.
* **Unknown outcomes**: an operation that raised ``BackendError`` (timeout, lost reply) may or
  may not have taken effect. It never returns (its return event sits at the end of time) and
  its result matches anything. "Did not take effect" needs no case of its own: an operation
  that never returns can always be placed after everything else, where its effect is seen by
  nobody.
* **State sets**: the search carries a set of possible states (Porcupine's power-set
  construction), which lets a shrunk window start from every state its prefix could leave.
* **Budget**: the search is exponential in the worst case; past ``budget`` seconds it answers
  ``unknown`` instead of hanging.

On a violation, :func:`check_history` shrinks the key's history to a *window* that is still not
linearizable, using only steps that keep the window a proof of the violation: cut at the first
return that cannot be explained (later operations become pending), start at the last quiescent
instant before it (replaced by the set of states possible there), and drop read-only operations
(reads, failed CAS, deletes of nothing) that are not needed.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from conformance.model import (
    Conflict,
    NotFoundOutcome,
    Record,
    apply_cas,
    apply_put,
)

OpKind = Literal["get", "put", "cas", "delete"]
State = Record | None
StateSet = frozenset[State]


class UnknownOutcome(enum.Enum):
    """The operation raised ``BackendError``: it may or may not have taken effect."""

    UNKNOWN = "unknown"

    def __repr__(self) -> str:
        return "unknown (BackendError)"


UNKNOWN = UnknownOutcome.UNKNOWN
Result = Record | None | int | bool | Conflict | NotFoundOutcome | UnknownOutcome
"""get: the record or None; put: the version; cas: the version, Conflict or NOT_FOUND;
delete: bool; any operation: UNKNOWN."""


@dataclass(frozen=True, slots=True)
class Op:
    """One operation of a history. Times are any increasing numbers (ns, a logical counter)."""

    kind: OpKind
    key: str
    invoke: float
    complete: float | None  # None: never returned (outcome unknown)
    result: Result
    data: bytes = b""
    expected: int = 0
    client: str = ""

    def describe(self) -> str:
        """The call as the report shows it, e.g. ``put_if_version(b'w1', expected=3)``."""
        if self.kind == "get":
            return "get()"
        if self.kind == "delete":
            return "delete()"
        if self.kind == "put":
            return f"put({self.data!r})"
        return f"put_if_version({self.data!r}, expected={self.expected})"

    @property
    def read_only(self) -> bool:
        """True when the recorded result says the operation changed nothing."""
        if self.result is UNKNOWN:
            return self.kind == "get"
        if self.kind == "get":
            return True
        if self.kind == "cas":
            return not isinstance(self.result, int)
        if self.kind == "delete":
            return self.result is False
        return False


Status = Literal["linearizable", "violation", "unknown"]


@dataclass(frozen=True, slots=True)
class Window:
    """A sub-history of one key that is still not linearizable, with the states it starts in."""

    key: str
    ops: tuple[Op, ...]
    start_states: StateSet
    culprit: Op  # the first operation whose result cannot be explained

    def to_dict(self) -> dict[str, Any]:
        """The window as JSON data, for the reports that draw it instead of printing it."""
        return {
            "key": self.key,
            "start_states": [_describe_state(state) for state in _sorted_states(self.start_states)],
            "ops": [
                {
                    "client": op.client or "-",
                    "call": op.describe(),
                    "result": _describe_result(op),
                    "invoke": op.invoke,
                    "complete": op.complete,
                    "culprit": op is self.culprit,
                }
                for op in self.ops
            ],
        }


class NotLinearizable(AssertionError):
    """A test failure that carries the windows proving it, for the kit's reports to draw."""

    def __init__(self, message: str, windows: Sequence[Window]) -> None:
        super().__init__(message)
        self.windows = tuple(windows)


@dataclass(frozen=True, slots=True)
class CheckResult:
    status: Status
    key: str | None = None  # the key whose history is not linearizable (or ran out of budget)
    window: Window | None = None
    ops_checked: int = 0
    elapsed: float = 0.0


class BudgetExceeded(Exception):
    """Internal: the search ran past its deadline."""


def _effect(state: State, op: Op) -> State:
    """The state after ``op`` took effect, whatever it returned."""
    if op.kind == "put":
        return apply_put(state, op.data, None)
    if op.kind == "cas":
        return apply_cas(state, op.data, op.expected, None)[0]
    if op.kind == "delete":
        return None
    return state


def _step(state: State, op: Op) -> State | _NoState:
    """The state after ``op`` if the sequential contract allows its recorded result, else NO."""
    if op.result is UNKNOWN:
        return _effect(state, op)
    if op.kind == "get":
        got = op.result
        if state is None:
            return state if got is None else NO
        return state if got == state else NO
    if op.kind == "put":
        new = apply_put(state, op.data, None)
        return new if type(op.result) is int and op.result == new.version else NO
    if op.kind == "cas":
        new_state, outcome = apply_cas(state, op.data, op.expected, None)
        if type(outcome) is not type(op.result) or outcome != op.result:
            return NO
        return new_state
    if state is None:
        return None if op.result is False else NO
    return None if op.result is True else NO


class _NoState(enum.Enum):
    NO = "no"


NO = _NoState.NO


def _step_set(states: StateSet, op: Op) -> StateSet:
    out: set[State] = set()
    for state in states:
        new = _step(state, op)
        if new is not NO:
            out.add(new)
    return frozenset(out)


@dataclass(slots=True)
class _Search:
    """Wing & Gong over one key's operations, with Lowe's memo of (linearized, states)."""

    ops: Sequence[Op]
    deadline: float
    steps: int = 0
    # event list as arrays: event i is the call (or return) of op ev_op[i]
    ev_op: list[int] = field(default_factory=list)
    ev_call: list[bool] = field(default_factory=list)
    nxt: list[int] = field(default_factory=list)
    prv: list[int] = field(default_factory=list)
    ret_of: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        end = float("inf")
        events: list[tuple[float, int, int]] = []  # (time, 0 call / 1 return, op)
        for index, op in enumerate(self.ops):
            events.append((op.invoke, 0, index))
            events.append((end if op.complete is None else op.complete, 1, index))
        # at equal times calls sort first: operations that touch in time count as concurrent
        events.sort()
        count = len(events)
        head = count  # sentinel: the list runs head -> 0 -> 1 -> ... -> count - 1 -> -1
        self.ev_op = [index for _, _, index in events] + [-1]
        self.ev_call = [kind == 0 for _, kind, _ in events] + [False]
        self.nxt = [*range(1, count), -1, 0 if count else -1] if count else [-1]
        self.prv = [head, *range(0, count - 1), -1] if count else [-1]
        self.ret_of = [0] * len(self.ops)
        for position, (_, kind, index) in enumerate(events):
            if kind == 1:
                self.ret_of[index] = position

    def _lift(self, position: int) -> None:
        for pos in (position, self.ret_of[self.ev_op[position]]):
            prv, nxt = self.prv[pos], self.nxt[pos]
            self.nxt[prv] = nxt
            if nxt != -1:
                self.prv[nxt] = prv

    def _unlift(self, position: int) -> None:
        for pos in (self.ret_of[self.ev_op[position]], position):
            prv, nxt = self.prv[pos], self.nxt[pos]
            self.nxt[prv] = pos
            if nxt != -1:
                self.prv[nxt] = pos

    def run(self, start: StateSet, *, all_ends: bool = False) -> StateSet:
        """Linearize from ``start``. Returns the end states of the first linearization found
        (empty when there is none); with ``all_ends``, the union over every linearization."""
        head = len(self.ev_op) - 1
        states = start
        linearized = 0
        seen: set[tuple[int, StateSet]] = set()
        calls: list[tuple[int, StateSet]] = []
        ends: set[State] = set()
        position = self.nxt[head]
        while True:
            if self.nxt[head] == -1:  # every operation is linearized
                if not all_ends:
                    return states
                ends.update(states)
                position = -1  # record, then backtrack to look for other orders
            elif self.ev_call[position]:
                self.steps += 1
                if not self.steps & 0x3FF and time.monotonic() > self.deadline:
                    raise BudgetExceeded
                op_index = self.ev_op[position]
                new_states = _step_set(states, self.ops[op_index])
                if new_states:
                    new_linearized = linearized | (1 << op_index)
                    memo = (new_linearized, new_states)
                    if memo not in seen:
                        seen.add(memo)
                        calls.append((position, states))
                        states, linearized = new_states, new_linearized
                        self._lift(position)
                        position = self.nxt[head]
                        continue
                position = self.nxt[position]
                continue
            # a return whose operation is not linearized yet (or a full order): backtrack
            if not calls:
                return frozenset(ends)
            position, states = calls.pop()
            linearized &= ~(1 << self.ev_op[position])
            self._unlift(position)
            position = self.nxt[position]


def _linearizable(ops: Sequence[Op], start: StateSet, deadline: float) -> bool:
    return bool(_Search(ops, deadline).run(start)) if ops else bool(start)


def check_history(
    ops: Iterable[Op],
    *,
    initial: dict[str, State] | None = None,
    budget: float = 10.0,
    minimise: bool = True,
) -> CheckResult:
    """Check a whole history, key by key. ``initial`` gives keys' states before the history
    (absent by default). ``budget`` (seconds) bounds the search and the shrinking."""
    started = time.monotonic()
    deadline = started + budget
    by_key: dict[str, list[Op]] = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    total = sum(len(key_ops) for key_ops in by_key.values())
    for key in sorted(by_key):
        key_ops = by_key[key]
        start: StateSet = frozenset([(initial or {}).get(key)])
        try:
            if _linearizable(key_ops, start, deadline):
                continue
        except BudgetExceeded:
            return CheckResult("unknown", key, None, total, time.monotonic() - started)
        window = _shrink(key, key_ops, start, deadline) if minimise else None
        if window is None:
            window = Window(key, tuple(key_ops), start, key_ops[-1])
        return CheckResult("violation", key, window, total, time.monotonic() - started)
    return CheckResult("linearizable", None, None, total, time.monotonic() - started)


def _truncate(ops: Sequence[Op], at: float) -> list[Op]:
    """The history as seen at instant ``at``: later calls vanish, unfinished ones are pending."""
    out = []
    for op in ops:
        if op.invoke > at:
            continue
        if op.complete is not None and op.complete > at:
            op = replace(op, complete=None, result=UNKNOWN)
        out.append(op)
    return out


def _shrink(key: str, ops: Sequence[Op], start: StateSet, deadline: float) -> Window | None:
    """A small window of ``ops`` that is still not linearizable (see the module docstring).

    Each step keeps the implication "window not linearizable => history not linearizable", so
    the window is a proof, not a guess. Returns None when the budget runs out.
    """
    try:
        returns = sorted({op.complete for op in ops if op.complete is not None})
        low, high = 0, len(returns) - 1  # the first cut that is not linearizable
        while low < high:
            middle = (low + high) // 2
            if _linearizable(_truncate(ops, returns[middle]), start, deadline):
                low = middle + 1
            else:
                high = middle
        cut = returns[low]
        window = _truncate(ops, cut)
        culprit = next(op for op in window if op.complete == cut)
        window, states = _start_at_last_quiescence(window, start, cut, deadline)
        for op in sorted(window, key=lambda op: op.invoke, reverse=True):
            if op is culprit or not op.read_only:
                continue
            smaller = [other for other in window if other is not op]
            if not _linearizable(smaller, states, deadline):
                window = smaller
        return Window(key, tuple(sorted(window, key=lambda op: op.invoke)), states, culprit)
    except BudgetExceeded:
        return None


def _start_at_last_quiescence(
    ops: Sequence[Op], start: StateSet, cut: float, deadline: float
) -> tuple[list[Op], StateSet]:
    """Drop everything before the last instant (before ``cut``) with no operation in flight,
    replaced by the set of states it can leave, replayed one quiescent segment at a time."""
    end = float("inf")
    events = sorted(
        [(op.invoke, 0) for op in ops]
        + [(end if op.complete is None else op.complete, 1) for op in ops]
    )
    in_flight = 0
    states = start
    previous = -end
    for instant, kind in events:
        in_flight += 1 if kind == 0 else -1
        if in_flight or instant >= cut:
            continue
        segment = [op for op in ops if previous < op.invoke < instant]
        states = _Search(segment, deadline).run(states, all_ends=True)
        previous = instant
    return [op for op in ops if op.invoke > previous], states


def format_window(window: Window) -> str:
    """The window as a table and a timeline, oldest invocation first."""
    ops = window.ops
    instants = sorted(
        {op.invoke for op in ops} | {op.complete for op in ops if op.complete is not None}
    )
    column = {instant: index for index, instant in enumerate(instants)}
    width = len(instants) + 1
    described = [f"{op.client or '-'}: {op.describe()} -> {_describe_result(op)}" for op in ops]
    label_width = max(len(text) for text in described)
    lines = [
        f"key {window.key!r}; state before the window: "
        + " or ".join(_describe_state(state) for state in _sorted_states(window.start_states)),
    ]
    for op, text in zip(ops, described, strict=True):
        first = column[op.invoke]
        last = width - 1 if op.complete is None else column[op.complete]
        tail = ">" if op.complete is None else "|"
        bar = " " * first + "|" + "-" * max(0, last - first - 1) + tail
        marker = "   <- first result no order explains" if op is window.culprit else ""
        lines.append(f"  {text.ljust(label_width)}  {bar.ljust(width + 1)}{marker}")
    lines.append(
        "  (each bar runs from invocation to return, in event order; '>' = never returned)"
    )
    return "\n".join(lines)


def _sorted_states(states: StateSet) -> list[State]:
    def order(state: State) -> tuple[int, bytes]:
        return (0, b"") if state is None else (state.version, state.data)

    return sorted(states, key=order)


def _describe_result(op: Op) -> str:
    if op.kind == "get" and (op.result is None or isinstance(op.result, Record)):
        return _describe_state(op.result)
    return repr(op.result)


def _describe_state(state: State) -> str:
    return "absent" if state is None else f"version {state.version}, data {state.data!r}"
