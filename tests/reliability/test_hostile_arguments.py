"""Every argument of every public method, each given every hostile value: documented errors only.

The first test is exhaustive over a fixed list of the values that used to escape as raw
exceptions or as megabyte-long messages: integers of thousands of digits (``repr`` raises
``ValueError``), values nested deeper than the interpreter's recursion limit (``repr`` raises
``RecursionError``), strings of 10 MB, mixed-type keys (``sorted`` raises ``TypeError``),
wrong types. Each call, on a fresh task of
its own, either succeeds or raises a ``TaskError`` with -32602 whose message is short; nothing
else. The property test after it draws any argument of the store and a value from wider
families: integers of any size, nesting of any depth, wrong types for keys and names, long
strings. Both run on every backend (memory, fakeredis, a redis-server, moto);
test_hostile_input.py draws whole hostile calls with owners, ids and variables.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reliability_support import opened

from conformance.harness import BackendFactory, ManualClock
from pmcp_tasks import GenericTaskStore, LeaseLost, StoreConfig, TaskContext, TaskError, TaskStatus

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

STORE_SLOTS: dict[str, Call] = {
    "get owner": lambda s, t, v: s.get(v, t),
    "get task_id": lambda s, t, v: s.get(OWNER, v),
    "list owner": lambda s, t, v: s.list(v),
    "list cursor": lambda s, t, v: s.list(OWNER, cursor=v),
    "list limit": lambda s, t, v: s.list(OWNER, limit=v),
    "get_result task_id": lambda s, t, v: s.get_result(OWNER, v),
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
    "set_variables changes": lambda s, t, v: s.set_variables(OWNER, t, v),
    "set_variables value": lambda s, t, v: s.set_variables(OWNER, t, {"a": v}),
    "set_result result": lambda s, t, v: s.set_result(OWNER, t, v),
    "set_result status": lambda s, t, v: s.set_result(OWNER, t, 1, status=v),
    "complete result": lambda s, t, v: s.complete(OWNER, t, v),
    "complete status_message": lambda s, t, v: s.complete(OWNER, t, 1, status_message=v),
    "fail status_message": lambda s, t, v: s.fail(OWNER, t, v),
    "fail result": lambda s, t, v: s.fail(OWNER, t, result=v),
    "fail error": lambda s, t, v: s.fail(OWNER, t, error=v),
    "fail error code": lambda s, t, v: s.fail(OWNER, t, error={"code": v, "message": "m"}),
    "fail error data": lambda s, t, v: s.fail(OWNER, t, error={**ERROR, "data": v}),
    "fail error mixed keys": lambda s, t, v: s.fail(OWNER, t, error={**ERROR, 1: v, "x": v}),
    "require_input status_message": lambda s, t, v: s.require_input(OWNER, t, v),
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
    "answer_input responses": lambda s, t, v: s.answer_input(OWNER, t, v),
    "answer_input response": lambda s, t, v: s.answer_input(OWNER, t, {KEY: v}),
    "take_input_responses keys": lambda s, t, v: s.take_input_responses(OWNER, t, v),
    "take_input_responses key": lambda s, t, v: s.take_input_responses(OWNER, t, [v]),
    "renew_lease worker": lambda s, t, v: s.renew_lease(OWNER, t, v, 60),
    "renew_lease lease": lambda s, t, v: s.renew_lease(OWNER, t, "w", v),
    "get_checking_lease task_id": lambda s, t, v: s.get_checking_lease(OWNER, v),
}

CONTEXT_SLOTS: dict[str, ContextCall] = {
    "sleep seconds": lambda c, v: c.sleep(v),
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


async def _attempt(call: Callable[..., Awaitable[Any]], *args: Any) -> BaseException | None:
    try:
        await call(*args)
    except Exception as exc:  # judged by the caller: any raw exception is a finding
        return exc
    return None


async def test_every_argument_refuses_every_hostile_value_with_a_documented_error(
    factory: BackendFactory,
) -> None:
    clock = ManualClock(start=1_800_000_000.0)
    async with opened(factory, clock, "hostile-args") as backend:
        store = GenericTaskStore(backend, StoreConfig(max_tasks_per_owner=None), clock)
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
                context = TaskContext(store, OWNER, await _fresh(store))
                error = await _attempt(ctx_call, context, value)
                outcomes.append(_judge(f"TaskContext.{slot}", name, error))
        for slot in ("owner", "task_id"):
            for name, value in HOSTILE.items():
                task_id = await _fresh(store)
                args = {"owner": OWNER, "task_id": task_id, slot: value}
                error = await _attempt(_construct, store, args)
                outcomes.append(_judge(f"TaskContext({slot})", name, error))
        for name, value in HOSTILE.items():
            outcomes.append(await _request_input_judged(store, value, name))
    problems = [o for o in outcomes if o.problem is not None]
    assert not problems, f"{len(problems)} of {len(outcomes)} calls: {problems}"


async def _construct(store: GenericTaskStore, args: dict[str, Any]) -> TaskContext:
    return TaskContext(store, args["owner"], args["task_id"])


async def _request_input_judged(store: GenericTaskStore, value: object, name: str) -> Outcome:
    """``TaskContext.request_input`` waits for answers when it accepts: watch, do not wait.

    Accepting any of these values would be the finding, so the call runs beside a watcher
    that stops it once the task shows the request.
    """
    task_id = await _fresh(store)
    await store.answer_input(OWNER, task_id, {KEY: {"action": "accept"}})
    context = TaskContext(store, OWNER, task_id)
    waiting = asyncio.ensure_future(context.request_input({"q": value}))
    while not waiting.done():
        if (await store.get(OWNER, task_id)).status is TaskStatus.INPUT_REQUIRED:
            waiting.cancel()
            return Outcome("TaskContext.request_input requests", name, "accepted")
        await asyncio.sleep(0)
    return _judge("TaskContext.request_input requests", name, waiting.exception())


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
    clock = ManualClock(start=1_800_000_000.0)
    async with opened(factory, clock, "hostile-any") as backend:
        store = GenericTaskStore(backend, StoreConfig(max_tasks_per_owner=None), clock)
        task_id = await _fresh(store)
        before = await store.get(OWNER, task_id)
        error = await _attempt(STORE_SLOTS[slot], store, task_id, value)
        outcome = _judge(slot, type(value).__name__, error)
        assert outcome.problem is None, outcome
        if error is not None:
            assert await store.get(OWNER, task_id) == before
