"""Hostile input against GenericTaskStore on every backend: documented errors only, no leaks.

Owners and task ids are any Unicode (lone surrogates too), with ``:``, ``%``, ``{}``, ``*``,
empty and 10 KB long; variables nest deeply and hold huge strings, NaN, bytes, sets, tuples,
non-string keys and huge ints. Every call either succeeds (and then reads back exactly) or
raises a client error (a ``TaskError`` with code -32602, as docs/domain.md lists them). A second
owner probing the first one's task gets exactly the answer for a task that does not exist, sees
nothing of it in listings, and changes nothing.

Examples per backend: 5x the profile's ``max_examples`` (``thorough``: 10,000).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from hypothesis import event, given, note, settings
from hypothesis import strategies as st
from reliability_support import opened

from conformance.harness import BackendFactory, ManualClock
from pmcp_tasks import (
    GenericTaskStore,
    InvalidCursor,
    StoreConfig,
    TaskError,
    TaskNotFound,
    TaskRecord,
    TaskValidationError,
)
from pmcp_tasks.backend import StorageBackend
from pmcp_tasks.config import shown
from pmcp_tasks.keys import task_key
from pmcp_tasks.record import canonical_json
from pmcp_tasks.store import UNSET

pytestmark = pytest.mark.anyio

EXAMPLES_PER_BACKEND = 5 * settings().max_examples
"""Run counts are recorded in docs/reliability.md."""

SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
ANY_CHAR = st.one_of(st.characters(), SURROGATES, st.sampled_from(":%{}*\x00/\\~.-_ "))
NASTY = [
    "",
    ":",
    "%",
    "%%",
    "%25",
    "%quota",
    "%q",
    "%qalice",
    "{a}",
    "{}",
    "*",
    "a:b",
    "a",
    "local",
    "\x00",
    "\ud800",
    "x" * 10_000,
    "é" * 5_000,
    "%%" + "0" * 64,
]


def _long(chars: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(lambda c, n: c * n, chars, st.integers(1, 10_240))


TEXT = st.one_of(st.sampled_from(NASTY), st.text(ANY_CHAR, max_size=40), _long(ANY_CHAR))
OWNERS = TEXT
TASK_IDS = st.one_of(
    TEXT,
    st.text("0123456789abcdef", min_size=47, max_size=49),  # near the id shape
    st.text("0123456789ABCDEF", min_size=48, max_size=48),
)

HUGE_STRINGS = st.builds(lambda c, n: c * n, st.characters(), st.integers(60_000, 70_000))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**63) - 1, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(ANY_CHAR, max_size=20),
    st.binary(max_size=8),
    HUGE_STRINGS,
)
KEYS = st.one_of(
    st.text(ANY_CHAR, max_size=10), st.integers(), st.none(), st.booleans(), st.just((1, 2))
)


def _nested(depth: int, leaf: object, as_dict: bool) -> object:
    value = leaf
    for _ in range(depth):
        value = {"d": value} if as_dict else [value]
    return value


DEEP = st.builds(_nested, st.integers(0, 40), SCALARS, st.booleans())
VALUES = st.recursive(
    st.one_of(SCALARS, DEEP),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(KEYS, children, max_size=4),
        st.tuples(children),
        st.frozensets(st.integers(), max_size=3),
        st.sets(st.text(max_size=3), max_size=3),
    ),
    max_leaves=12,
)
JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**64 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(),
    ),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=10,
)
VARIABLES = st.one_of(
    st.dictionaries(st.text(st.characters(), max_size=10), JSON, max_size=5),  # valid
    st.dictionaries(st.one_of(st.text(ANY_CHAR, max_size=10), KEYS), VALUES, max_size=5),
    st.lists(st.integers(), max_size=2),  # not a mapping at all
)


async def _attempt(call: Callable[[], Awaitable[Any]]) -> Any:
    """The call's result, or the client error it raised; anything else fails the test."""
    try:
        return await call()
    except TaskError as exc:
        error = exc
    assert error.code == -32602, f"server error {error!r} on client input"
    assert error.to_jsonrpc() == {"code": -32602, "message": error.message}
    return error


def _same_json(a: object, b: object) -> bool:
    return canonical_json(a) == canonical_json(b)


def _probes(store: GenericTaskStore, owner: str, task_id: str) -> list[Callable[[], Any]]:
    """Every call that names a task, as another owner would try it."""
    return [
        lambda: store.get(owner, task_id),
        lambda: store.get_result(owner, task_id),
        lambda: store.set_variables(owner, task_id, {"stolen": True}),
        lambda: store.update_status(owner, task_id, "completed"),
        lambda: store.complete(owner, task_id, {"content": []}),
        lambda: store.fail(owner, task_id, "x"),
        lambda: store.require_input(owner, task_id),
        lambda: store.resume(owner, task_id),
        lambda: store.cancel(owner, task_id),
    ]


TTLS = st.one_of(
    st.just(UNSET),
    st.floats(0.001, 86_400),
    st.none(),
    st.floats(),
    st.integers(-5, 10**6),
    st.integers(),
    st.sampled_from([10**400, -(10**400), 2**1024, 10**5000, 1e308, 5e-324]),
)


@asynccontextmanager
async def _store(
    factory: BackendFactory, anonymous: bool
) -> AsyncIterator[tuple[GenericTaskStore, StorageBackend]]:
    """A store on a fresh namespace of ``factory``'s backend, and that backend."""
    clock = ManualClock(start=1_800_000_000.0)
    config = StoreConfig(allow_anonymous=anonymous, allow_unlimited_ttl=True)
    async with opened(factory, clock, "fuzz") as backend:
        yield GenericTaskStore(backend, config, clock), backend


async def _plain_task(store: GenericTaskStore, owner: str) -> TaskRecord | None:
    """A task of ``owner``'s, or None when the owner itself is refused (anonymous, a lone
    surrogate): a documented error, and then there is nothing of theirs to probe."""
    made = await _attempt(lambda: store.create(owner, variables={"plain": 1}))
    return made if isinstance(made, TaskRecord) else None


@settings(max_examples=EXAMPLES_PER_BACKEND)
@given(owner=OWNERS, variables=VARIABLES, anonymous=st.booleans(), ttl=TTLS)
async def test_a_hostile_create_reads_back_exactly_or_writes_nothing(
    factory: BackendFactory, owner: str, variables: Any, anonymous: bool, ttl: Any
) -> None:
    async with _store(factory, anonymous) as (store, _):
        made = await _attempt(lambda: store.create(owner, ttl=ttl, variables=variables))
        note(f"create -> {made!r}")
        event(f"create: {type(made).__name__}")
        listed = await _attempt(lambda: store.list(owner))
        if isinstance(made, TaskRecord):
            expected = {k: v for k, v in variables.items() if v is not None}
            assert _same_json((await store.get(owner, made.task_id)).variables, expected)
            assert isinstance(listed, tuple), listed
            assert [t.task_id for t in listed[0]] == [made.task_id]
        elif isinstance(listed, tuple):
            assert listed[0] == [], f"a refused create left {listed[0]!r}"


@settings(max_examples=EXAMPLES_PER_BACKEND)
@given(owner=OWNERS, changes=VARIABLES, anonymous=st.booleans())
async def test_hostile_changes_apply_whole_or_not_at_all(
    factory: BackendFactory, owner: str, changes: Any, anonymous: bool
) -> None:
    async with _store(factory, anonymous) as (store, _):
        made = await _plain_task(store, owner)
        if made is None:
            return
        changed = await _attempt(lambda: store.set_variables(owner, made.task_id, changes))
        event(f"set_variables: {type(changed).__name__}")
        now = await store.get(owner, made.task_id)
        if not isinstance(changed, TaskRecord):
            assert now == made
            return
        assert now == changed
        merged = dict(made.variables)
        for name, value in changes.items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = value
        assert _same_json(now.variables, merged)


@settings(max_examples=EXAMPLES_PER_BACKEND)
@given(owner=OWNERS, task_id=TASK_IDS, anonymous=st.booleans())
async def test_a_hostile_task_id_finds_nothing_but_the_owners_own_task(
    factory: BackendFactory, owner: str, task_id: str, anonymous: bool
) -> None:
    async with _store(factory, anonymous) as (store, _):
        made = await _plain_task(store, owner)
        if made is None:
            return
        for call in _probes(store, owner, task_id):
            outcome = await _attempt(call)
            if not isinstance(outcome, TaskError):
                assert task_id == made.task_id
                break


@settings(max_examples=EXAMPLES_PER_BACKEND)
@given(owner_a=OWNERS, owner_b=OWNERS, anonymous=st.booleans())
async def test_another_owner_probing_a_task_is_told_it_does_not_exist_and_changes_nothing(
    factory: BackendFactory, owner_a: str, owner_b: str, anonymous: bool
) -> None:
    async with _store(factory, anonymous) as (store, backend):
        made = await _plain_task(store, owner_a)
        if made is None or owner_b == owner_a:
            return
        key = task_key(owner_a, made.task_id)
        stored = await backend.get(key)
        missing = str(TaskNotFound(made.task_id))
        for call in _probes(store, owner_b, made.task_id):
            outcome = await _attempt(call)
            if isinstance(outcome, TaskNotFound):
                assert str(outcome) == missing
            else:  # B's owner itself was refused before any lookup
                assert isinstance(outcome, TaskError)
                assert not isinstance(await _attempt(lambda: store.list(owner_b)), tuple)
        assert await backend.get(key) == stored


@settings(max_examples=EXAMPLES_PER_BACKEND)
@given(owner_a=OWNERS, owner_b=OWNERS, anonymous=st.booleans())
async def test_another_owner_neither_lists_a_task_nor_pages_with_its_cursor(
    factory: BackendFactory, owner_a: str, owner_b: str, anonymous: bool
) -> None:
    async with _store(factory, anonymous) as (store, _):
        made = await _plain_task(store, owner_a)
        if made is None or owner_b == owner_a:
            return
        listed_b = await _attempt(lambda: store.list(owner_b))
        if isinstance(listed_b, tuple):
            assert made.task_id not in {t.task_id for t in listed_b[0]}
        second = await store.create(owner_a)  # a second page, so that A has a cursor to steal
        page, cursor = await store.list(owner_a, limit=1)
        assert [t.task_id for t in page] == [min(made.task_id, second.task_id)]
        assert cursor is not None
        crossed = await _attempt(lambda: store.list(owner_b, cursor=cursor))
        assert isinstance(crossed, InvalidCursor if isinstance(listed_b, tuple) else TaskError)


def test_examples_per_backend_scale_with_the_profile() -> None:
    """thorough (2,000 examples) must give the 10,000 per backend that the issue asks for."""
    thorough = settings.get_profile("thorough").max_examples
    assert 5 * thorough >= 10_000


HUGE_NUMBERS = [10**400, -(10**400), 2**1024, 10**5000, 1e308, -1e308, float("inf"), float("nan")]


@pytest.mark.parametrize("value", HUGE_NUMBERS, ids=shown)
async def test_huge_numbers_are_client_errors_that_name_them(
    factory: BackendFactory, value: float
) -> None:
    """ttl and lease of any size: a documented error whose message shows the value, briefly."""
    clock = ManualClock(start=1_800_000_000.0)
    async with opened(factory, clock, "huge") as backend:
        store = GenericTaskStore(backend, StoreConfig(), clock)
        task = await store.create("alice")
        calls: list[Callable[[], Awaitable[Any]]] = [
            lambda: store.create("alice", ttl=value),
            lambda: store.create("alice", worker="w", lease=value),
            lambda: store.renew_lease("alice", task.task_id, "w", value),
        ]
        for call in calls:
            error = await _attempt(call)
            assert isinstance(error, TaskValidationError), error
            assert len(error.message) < 300
            shown = f"{value.bit_length()} bits" if isinstance(value, int) else repr(value)
            assert shown in error.message
        assert [t.task_id for t in (await store.list("alice"))[0]] == [task.task_id]
