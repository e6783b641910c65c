"""Every argument of every public method, each given every hostile value: documented errors only.

The first test is exhaustive over a fixed list of the values that used to escape as raw
exceptions or as megabyte-long messages: integers of thousands of digits (``repr`` raises
``ValueError``), values nested deeper than the interpreter's recursion limit (``repr`` raises
``RecursionError``), strings of 10 MB, mixed-type keys (``sorted`` raises ``TypeError``),
wrong types. Each call, on a fresh task of its own, either succeeds or raises a ``TaskError``
with -32602 whose message is short, and a refused one writes nothing; nothing else. The
arguments a server wires once (the store's backend, config and clock, the context's store and
clock) are the exception: a short ``ValueError`` naming the argument. The property tests after
it draw any argument of the store or of ``TaskContext`` and a value from wider families:
integers of any size, nesting of any depth, wrong types for keys and names, long strings. All
run on every backend (memory, fakeredis, a redis-server, moto); test_hostile_input.py draws
whole hostile calls with owners, ids and variables.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reliability_support import opened

from conformance.harness import BackendFactory, ManualClock
from pmcp_tasks import (
    GenericTaskStore,
    LeaseLost,
    StoreConfig,
    TaskCancelled,
    TaskContext,
    TaskError,
    TaskStatus,
)

pytestmark = pytest.mark.anyio

MAX_MESSAGE_CHARS = 1000
"""Messages echo at most 80 characters of any value and 300 of a path (docs/domain.md)."""
OWNER = "alice"
KEY = "k#1"
"""The key of the input request every fresh task is asked (``request_input({"k": ...})``)."""


def _deep(depth: int, as_dict: bool) -> object:
    value: object = 0
    for _ in range(depth):
        value = {"d": value} if as_dict else [value]
    return value


class _Weird:
    """An object whose ``repr`` raises: no message may be built from it."""

    def __repr__(self) -> str:
        raise RuntimeError("repr of a hostile object")


HOSTILE: dict[str, object] = {
    "10**5000": 10**5000,
    "-10**5000": -(10**5000),
    "2**64": 2**64,
    "deep list": _deep(10_000, as_dict=False),
    "deep dict": _deep(10_000, as_dict=True),
    "deep tuple": (_deep(10_000, as_dict=False),),
    "10 MB str": "x" * 10_000_000,
    "lone surrogate": "\ud800",
    "mixed keys": {1: "a", "b": 2, (1, 2): 3},
    "huge int key": {10**5000: 1},
    "bytes": b"bytes",
    "set": {1, 2},
    "nan": float("nan"),
    "-inf": float("-inf"),
    "True": True,
    "-1": -1,
    "object": _Weird(),
}

Call = Callable[[GenericTaskStore, str, Any], Awaitable[Any]]
ContextCall = Callable[[TaskContext, Any], Awaitable[Any]]
ERROR = {"code": 1, "message": "m"}
REQUEST = {"method": "elicitation/create"}

OWNED: dict[str, Callable[[GenericTaskStore, Any, Any], Awaitable[Any]]] = {
    "get": lambda s, o, t: s.get(o, t),
    "get_result": lambda s, o, t: s.get_result(o, t),
    "update_status": lambda s, o, t: s.update_status(o, t, "working"),
    "set_variables": lambda s, o, t: s.set_variables(o, t, {"a": 1}),
    "set_status_message": lambda s, o, t: s.set_status_message(o, t, "m"),
    "set_result": lambda s, o, t: s.set_result(o, t, 1),
    "complete": lambda s, o, t: s.complete(o, t, 1),
    "fail": lambda s, o, t: s.fail(o, t),
    "require_input": lambda s, o, t: s.require_input(o, t),
    "resume": lambda s, o, t: s.resume(o, t),
    "cancel": lambda s, o, t: s.cancel(o, t),
    "request_cancel": lambda s, o, t: s.request_cancel(o, t),
    "request_input": lambda s, o, t: s.request_input(o, t, {"q": REQUEST}),
    "answer_input": lambda s, o, t: s.answer_input(o, t, {KEY: {"action": "accept"}}),
    "take_input_responses": lambda s, o, t: s.take_input_responses(o, t, [KEY]),
    "renew_lease": lambda s, o, t: s.renew_lease(o, t, "w", 60),
    "get_checking_lease": lambda s, o, t: s.get_checking_lease(o, t),
    "take_over_lease": lambda s, o, t: s.take_over_lease(o, t, "w", 60),
}
"""Every method that addresses one task, called validly but for its owner and task id."""


def _as_owner(call: Callable[[GenericTaskStore, Any, Any], Awaitable[Any]]) -> Call:
    return lambda s, t, v: call(s, v, t)


def _as_task_id(call: Callable[[GenericTaskStore, Any, Any], Awaitable[Any]]) -> Call:
    return lambda s, t, v: call(s, OWNER, v)


async def _lapsed_with(store: GenericTaskStore, task_id: str, **fields: object) -> bool:
    """``lease_lapsed`` of the task as read, with ``fields`` replaced (a TaskRecord a caller
    built or altered itself)."""
    return store.lease_lapsed(replace(await store.get(OWNER, task_id), **fields))


STORE_SLOTS: dict[str, Call] = {
    **{f"{name} owner": _as_owner(call) for name, call in OWNED.items()},
    **{f"{name} task_id": _as_task_id(call) for name, call in OWNED.items()},
    "list owner": lambda s, t, v: s.list(v),
    "list cursor": lambda s, t, v: s.list(OWNER, cursor=v),
    "list limit": lambda s, t, v: s.list(OWNER, limit=v),
    "create owner": lambda s, t, v: s.create(v),
    "create ttl": lambda s, t, v: s.create(OWNER, ttl=v),
    "create variables": lambda s, t, v: s.create(OWNER, variables=v),
    "create variable value": lambda s, t, v: s.create(OWNER, variables={"a": v}),
    "create status_message": lambda s, t, v: s.create(OWNER, status_message=v),
    "create worker": lambda s, t, v: s.create(OWNER, worker=v, lease=60),
    "create lease": lambda s, t, v: s.create(OWNER, worker="w", lease=v),
    "update_status status": lambda s, t, v: s.update_status(OWNER, t, v),
    "update_status status_message": lambda s, t, v: s.update_status(
        OWNER, t, "working", status_message=v
    ),
    "update_status worker": lambda s, t, v: s.update_status(OWNER, t, "working", worker=v),
    "set_variables changes": lambda s, t, v: s.set_variables(OWNER, t, v),
    "set_variables value": lambda s, t, v: s.set_variables(OWNER, t, {"a": v}),
    "set_status_message status_message": lambda s, t, v: s.set_status_message(OWNER, t, v),
    "set_status_message worker": lambda s, t, v: s.set_status_message(OWNER, t, "m", worker=v),
    "set_result result": lambda s, t, v: s.set_result(OWNER, t, v),
    "set_result status": lambda s, t, v: s.set_result(OWNER, t, 1, status=v),
    "set_result status_message": lambda s, t, v: s.set_result(OWNER, t, 1, status_message=v),
    "set_result worker": lambda s, t, v: s.set_result(OWNER, t, 1, worker=v),
    "check_result result": lambda s, t, v: s.check_result(v),
    "complete result": lambda s, t, v: s.complete(OWNER, t, v),
    "complete status_message": lambda s, t, v: s.complete(OWNER, t, 1, status_message=v),
    "complete worker": lambda s, t, v: s.complete(OWNER, t, 1, worker=v),
    "fail status_message": lambda s, t, v: s.fail(OWNER, t, v),
    "fail result": lambda s, t, v: s.fail(OWNER, t, result=v),
    "fail error": lambda s, t, v: s.fail(OWNER, t, error=v),
    "fail error code": lambda s, t, v: s.fail(OWNER, t, error={"code": v, "message": "m"}),
    "fail error data": lambda s, t, v: s.fail(OWNER, t, error={**ERROR, "data": v}),
    "fail error mixed keys": lambda s, t, v: s.fail(OWNER, t, error={**ERROR, 1: v, "x": v}),
    "fail worker": lambda s, t, v: s.fail(OWNER, t, worker=v),
    "require_input status_message": lambda s, t, v: s.require_input(OWNER, t, v),
    "require_input worker": lambda s, t, v: s.require_input(OWNER, t, worker=v),
    "resume status_message": lambda s, t, v: s.resume(OWNER, t, v),
    "cancel status_message": lambda s, t, v: s.cancel(OWNER, t, v),
    "request_cancel status_message": lambda s, t, v: s.request_cancel(OWNER, t, v),
    "request_input requests": lambda s, t, v: s.request_input(OWNER, t, v),
    "request_input request": lambda s, t, v: s.request_input(OWNER, t, {"q": v}),
    "request_input params": lambda s, t, v: s.request_input(
        OWNER, t, {"q": {**REQUEST, "params": v}}
    ),
    "request_input status_message": lambda s, t, v: s.request_input(
        OWNER, t, {"q": REQUEST}, status_message=v
    ),
    "request_input worker": lambda s, t, v: s.request_input(OWNER, t, {"q": REQUEST}, worker=v),
    "answer_input responses": lambda s, t, v: s.answer_input(OWNER, t, v),
    "answer_input response": lambda s, t, v: s.answer_input(OWNER, t, {KEY: v}),
    "take_input_responses keys": lambda s, t, v: s.take_input_responses(OWNER, t, v),
    "take_input_responses key": lambda s, t, v: s.take_input_responses(OWNER, t, [v]),
    "renew_lease worker": lambda s, t, v: s.renew_lease(OWNER, t, v, 60),
    "renew_lease lease": lambda s, t, v: s.renew_lease(OWNER, t, "w", v),
    "take_over_lease worker": lambda s, t, v: s.take_over_lease(OWNER, t, v, 60),
    "take_over_lease lease": lambda s, t, v: s.take_over_lease(OWNER, t, "w", v),
    "lease_lapsed record": lambda s, t, v: s.lease_lapsed(v),
    "lease_lapsed record status": lambda s, t, v: _lapsed_with(s, t, status=v),
    "lease_lapsed record lease_expires_ms": lambda s, t, v: _lapsed_with(s, t, lease_expires_ms=v),
}

CONTEXT_SLOTS: dict[str, ContextCall] = {
    "report message": lambda c, v: c.report(v),
    "report progress": lambda c, v: c.report("m", progress=v),
    "report total": lambda c, v: c.report("m", progress=1, total=v),
    "get_variable name": lambda c, v: c.get_variable(v),
    "get_variable default": lambda c, v: c.get_variable("missing", v),
    "set_variables changes": lambda c, v: c.set_variables(v),
    "set_variable name": lambda c, v: c.set_variable(v, 1),
    "set_variable value": lambda c, v: c.set_variable("a", v),
    "complete result": lambda c, v: c.complete(v),
    "complete status_message": lambda c, v: c.complete(1, status_message=v),
    "fail status_message": lambda c, v: c.fail(v),
    "fail result": lambda c, v: c.fail(result=v),
    "fail error": lambda c, v: c.fail(error=v),
    "require_input status_message": lambda c, v: c.require_input(v),
    "resume status_message": lambda c, v: c.resume(v),
    "cancel status_message": lambda c, v: c.cancel(v),
}

WIRING_SLOTS: dict[str, Callable[[GenericTaskStore, str, Any], object]] = {
    "TaskContext store": lambda s, t, v: TaskContext(v, OWNER, t),
    "TaskContext clock": lambda s, t, v: TaskContext(s, OWNER, t, clock=v),
    "GenericTaskStore backend": lambda s, t, v: GenericTaskStore(v),
    "GenericTaskStore config": lambda s, t, v: GenericTaskStore(s.backend, v),
    "GenericTaskStore clock": lambda s, t, v: GenericTaskStore(s.backend, s.config, v),
    "GenericTaskStore check_skew": lambda s, t, v: GenericTaskStore(
        s.backend, s.config, check_skew=v
    ),
}
"""What a server wires once at start-up: a wrong value is the server's mistake, not a
client's, so it is a short ``ValueError`` naming the argument (docs/domain.md), never -32602."""
ASKING_SLOTS: dict[str, ContextCall] = {
    "request_input requests": lambda c, v: c.request_input({"q": v}),
    "request_input status_message": lambda c, v: c.request_input({"q": REQUEST}, v),
}
"""``TaskContext`` calls that ask the client and wait for its answer once they accept."""
WAITING_SLOTS: dict[str, ContextCall] = {
    "sleep seconds": lambda c, v: c.sleep(v),
    "wait_for_input keys": lambda c, v: c.wait_for_input(v),
    "wait_for_input key": lambda c, v: c.wait_for_input({"q": v}),
}
"""``TaskContext`` calls that wait once they accept (for answers already asked, or time)."""


@dataclass
class Outcome:
    """What one call did: ``None`` when it was fine, else what was wrong."""

    slot: str
    value: str
    problem: str | None


def _judge(slot: str, value: str, error: BaseException | None) -> Outcome:
    if error is None:
        return Outcome(slot, value, None)
    if isinstance(error, LeaseLost):
        return Outcome(slot, value, None)  # a valid worker that does not hold the lease
    if not isinstance(error, TaskError):
        return Outcome(slot, value, f"raw {type(error).__name__}")
    if error.code != -32602:
        return Outcome(slot, value, f"code {error.code}: {error.message[:200]}")
    if len(error.message) > MAX_MESSAGE_CHARS:
        return Outcome(slot, value, f"message of {len(error.message)} characters")
    return Outcome(slot, value, None)


async def _fresh(store: GenericTaskStore) -> str:
    """A task waiting for the answer under ``KEY``, with a worker's lease to renew."""
    task = await store.create(OWNER, worker="w", lease=60)
    _, keys = await store.request_input(OWNER, task.task_id, {"k": REQUEST})
    assert keys == {"k": KEY}
    return task.task_id


@asynccontextmanager
async def _store(
    factory: BackendFactory, label: str
) -> AsyncIterator[tuple[GenericTaskStore, ManualClock]]:
    """A store without a cap (every call takes a fresh task) on a clock moved by hand."""
    clock = ManualClock(start=1_800_000_000.0)
    async with opened(factory, clock, label) as backend:
        yield GenericTaskStore(backend, StoreConfig(max_tasks_per_owner=None), clock), clock


async def _attempt(call: Callable[..., Any], *args: Any) -> BaseException | None:
    """Run ``call`` (a coroutine function, or a plain one such as ``check_result``)."""
    try:
        outcome = call(*args)
        if inspect.isawaitable(outcome):
            await outcome
    except Exception as exc:  # judged by the caller: any raw exception is a finding
        return exc
    return None


async def test_every_argument_refuses_every_hostile_value_with_a_documented_error(
    factory: BackendFactory,
) -> None:
    async with _store(factory, "hostile-args") as (store, clock):
        outcomes: list[Outcome] = []
        for slot, call in STORE_SLOTS.items():
            for name, value in HOSTILE.items():
                task_id = await _fresh(store)
                before = await store.get(OWNER, task_id)
                error = await _attempt(call, store, task_id, value)
                outcomes.append(_judge(slot, name, error))
                if error is not None:  # a refused call writes nothing
                    assert await store.get(OWNER, task_id) == before, (slot, name)
        for slot, ctx_call in CONTEXT_SLOTS.items():
            for name, value in HOSTILE.items():
                outcomes.append(await _context_judged(store, clock, slot, name, ctx_call, value))
        for slot in ("owner", "task_id", "worker"):
            for name, value in HOSTILE.items():
                task_id = await _fresh(store)
                args = {"owner": OWNER, "task_id": task_id, slot: value}
                error = await _attempt(_construct, store, args)
                outcomes.append(_judge(f"TaskContext({slot})", name, error))
        for slot, wiring in WIRING_SLOTS.items():
            for name, value in HOSTILE.items():
                error = await _attempt(wiring, store, await _fresh(store), value)
                outcomes.append(_judge_wiring(slot, name, error))
        for slot, ctx_call in ASKING_SLOTS.items():
            for name, value in HOSTILE.items():
                outcomes.append(await _asking_judged(store, slot, name, ctx_call, value))
        for slot, ctx_call in WAITING_SLOTS.items():
            for name, value in HOSTILE.items():
                outcomes.append(await _waiting_judged(store, slot, name, ctx_call, value))
    problems = [o for o in outcomes if o.problem is not None]
    assert not problems, f"{len(problems)} of {len(outcomes)} calls: {problems}"


async def _construct(store: GenericTaskStore, args: dict[str, Any]) -> TaskContext:
    return TaskContext(store, args["owner"], args["task_id"], worker=args.get("worker"))


def _judge_wiring(slot: str, value: str, error: BaseException | None) -> Outcome:
    """Accepted, or a ``ValueError`` naming the argument in a short message."""
    argument = slot.split()[-1]
    if error is None or (
        isinstance(error, ValueError)
        and str(error).startswith(f"{argument} ")
        and len(str(error)) <= MAX_MESSAGE_CHARS
    ):
        return Outcome(slot, value, None)
    return Outcome(slot, value, f"{type(error).__name__}: {str(error)[:200]}")


async def _context_judged(
    store: GenericTaskStore,
    clock: ManualClock,
    slot: str,
    name: str,
    call: ContextCall,
    value: object,
) -> Outcome:
    """One ``TaskContext`` call; a refused one writes nothing and holds nothing back.

    A held report would be written by a later :meth:`TaskContext.flush` (the MCP worker's
    watcher flushes every interval), so a refused one must not be held: once the report
    interval has passed, the flush finds nothing to write.
    """
    task_id = await _fresh(store)
    before = await store.get(OWNER, task_id)
    context = TaskContext(store, OWNER, task_id, clock=clock)
    error = await _attempt(call, context, value)
    if error is not None:
        assert await store.get(OWNER, task_id) == before, (slot, name)
        clock.advance(context.report_interval)
        try:
            if await context.flush():
                return Outcome(f"TaskContext.{slot}", name, "held, then written by flush()")
        except TaskError as held:
            return Outcome(f"TaskContext.{slot}", name, f"held, flush() raises {held!r:.200}")
    return _judge(f"TaskContext.{slot}", name, error)


async def _asking_judged(
    store: GenericTaskStore, slot: str, name: str, call: ContextCall, value: object
) -> Outcome:
    """``TaskContext.request_input`` waits for answers when it accepts: watch, do not wait.

    Accepting any of these values would be the finding, so the call runs beside a watcher
    that stops it once the task shows the request.
    """
    task_id = await _fresh(store)
    await store.answer_input(OWNER, task_id, {KEY: {"action": "accept"}})
    context = TaskContext(store, OWNER, task_id)
    waiting = asyncio.ensure_future(call(context, value))
    while not waiting.done():
        if (await store.get(OWNER, task_id)).status is TaskStatus.INPUT_REQUIRED:
            waiting.cancel()
            return Outcome(f"TaskContext.{slot}", name, "accepted")
        await asyncio.sleep(0)
    return _judge(f"TaskContext.{slot}", name, waiting.exception())


async def _waiting_judged(
    store: GenericTaskStore, slot: str, name: str, call: ContextCall, value: object
) -> Outcome:
    """``sleep`` and ``wait_for_input`` wait when they accept: make acceptance show instead.

    Their context is marked cancelled first, so a call that accepts its argument stops with
    ``TaskCancelled`` instead of waiting; one that refuses it raises the argument's error
    first.
    """
    context = TaskContext(store, OWNER, await _fresh(store))
    context.mark_cancelled()
    error = await _attempt(call, context, value)
    if isinstance(error, TaskCancelled):
        return Outcome(f"TaskContext.{slot}", name, "accepted")
    return _judge(f"TaskContext.{slot}", name, error)


def _sized_int(digits: int, sign: int) -> int:
    return sign * 10**digits


KEYS_ANY = st.one_of(
    st.text(max_size=8),
    st.integers(),
    st.builds(_sized_int, st.integers(0, 6000), st.sampled_from([1, -1])),
    st.none(),
    st.tuples(st.integers()),
    st.frozensets(st.integers(), max_size=2),
)
ANY_HOSTILE = st.one_of(
    st.integers(),
    st.builds(_sized_int, st.integers(0, 10_000), st.sampled_from([1, -1])),
    st.builds(_deep, st.integers(0, 5000), st.booleans()),
    st.floats(),
    st.none(),
    st.booleans(),
    st.binary(max_size=8),
    st.text(max_size=20),
    st.builds(lambda n: "y" * n, st.integers(60_000, 200_000)),
    st.lists(KEYS_ANY, max_size=3),
    st.sets(st.integers(), max_size=3),
    st.dictionaries(KEYS_ANY, st.integers(), max_size=3),
    st.builds(_Weird),
)


@settings(max_examples=2 * settings().max_examples)
@given(slot=st.sampled_from(sorted(STORE_SLOTS)), value=ANY_HOSTILE)
async def test_any_argument_given_any_hostile_value_raises_a_documented_error(
    factory: BackendFactory, slot: str, value: object
) -> None:
    async with _store(factory, "hostile-any") as (store, _):
        task_id = await _fresh(store)
        before = await store.get(OWNER, task_id)
        error = await _attempt(STORE_SLOTS[slot], store, task_id, value)
        outcome = _judge(slot, type(value).__name__, error)
        assert outcome.problem is None, outcome
        if error is not None:
            assert await store.get(OWNER, task_id) == before


@settings(max_examples=settings().max_examples)
@given(slot=st.sampled_from(sorted({*CONTEXT_SLOTS, *WAITING_SLOTS})), value=ANY_HOSTILE)
async def test_any_context_argument_given_any_hostile_value_raises_a_documented_error(
    factory: BackendFactory, slot: str, value: object
) -> None:
    """As above for ``TaskContext``; values drawn here may be valid, so accepting is fine."""
    async with _store(factory, "hostile-context") as (store, clock):
        name = type(value).__name__
        if slot in WAITING_SLOTS:
            outcome = await _waiting_judged(store, slot, name, WAITING_SLOTS[slot], value)
        else:
            outcome = await _context_judged(store, clock, slot, name, CONTEXT_SLOTS[slot], value)
    assert outcome.problem in (None, "accepted"), outcome
