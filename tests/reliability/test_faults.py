"""GenericTaskStore under injected storage faults: never half-updated, never a phantom outcome.

The promise (docs/reliability.md): a mutation that returns has been applied exactly once; one
that raises raised ``StorageFailure`` (-32603, the ``BackendError`` as ``__cause__``) and left the
task either exactly as it was or exactly as the change makes it; a lost reply is settled by
reading back, never reported as a conflict or an invalid transition the caller's own write
caused.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from conformance.faults import Fault, FaultyBackend, InjectedFault
from conformance.harness import ManualClock
from pmcp_tasks import (
    BackendError,
    GenericTaskStore,
    StorageFailure,
    StoreConfig,
    TaskLimitExceeded,
    TaskRecord,
    TaskStatus,
)
from pmcp_tasks.keys import task_key
from reference_backends.memory import InMemoryBackend

pytestmark = pytest.mark.anyio

OWNER = "alice"


def _store(faulty: FaultyBackend, clock: ManualClock, **config: object) -> GenericTaskStore:
    return GenericTaskStore(faulty, StoreConfig(**config), clock)  # type: ignore[arg-type]


def _check_storage_failure(exc: BaseException) -> None:
    """-32603, with the backend's error (and the injected cause under it) kept."""
    assert isinstance(exc, StorageFailure)
    assert exc.code == -32603
    assert exc.to_jsonrpc()["code"] == -32603
    assert isinstance(exc.__cause__, BackendError)
    assert isinstance(exc.__cause__.__cause__, InjectedFault)


def _cas_calls(faulty: FaultyBackend, key: str) -> list[tuple[Fault, bool]]:
    return [
        (c.fault, c.applied) for c in faulty.log if c.method == "put_if_version" and c.key == key
    ]


# ------------------------------------------------------------------------ the wrapper itself


async def test_same_seed_same_faults(backend: InMemoryBackend) -> None:
    async def run(seed: int) -> list[Fault]:
        faulty = FaultyBackend(backend, seed=seed, error_rate=0.3, ambiguous_rate=0.3)
        for i in range(200):
            with contextlib.suppress(BackendError):  # the injected fault, logged either way
                await faulty.put(f"p:k{i}", b"x")
        return [call.fault for call in faulty.log]

    assert await run(7) == await run(7)
    assert await run(7) != await run(8)
    drawn = await run(7)
    assert {Fault.NONE, Fault.ERROR, Fault.AMBIGUOUS} <= set(drawn)


async def test_error_writes_nothing_ambiguous_writes_and_raises(backend: InMemoryBackend) -> None:
    faulty = FaultyBackend(backend)
    faulty.queue("put", Fault.ERROR)
    with pytest.raises(BackendError) as raised:
        await faulty.put("p:k", b"one")
    assert isinstance(raised.value.__cause__, InjectedFault)
    assert await backend.get("p:k") is None

    faulty.queue("put", Fault.AMBIGUOUS)
    with pytest.raises(BackendError, match="applied but its reply was lost"):
        await faulty.put("p:k", b"two")
    stored = await backend.get("p:k")
    assert stored is not None
    assert (stored.data, stored.version) == (b"two", 1)
    assert [(c.fault, c.applied) for c in faulty.log] == [
        (Fault.ERROR, False),
        (Fault.AMBIGUOUS, True),
    ]


async def test_late_write_lands_before_the_next_write_to_its_key(
    backend: InMemoryBackend,
) -> None:
    faulty = FaultyBackend(backend)
    faulty.queue("put_if_version", Fault.LATE)
    with pytest.raises(BackendError, match="timed out"):
        await faulty.put_if_version("p:k", b"late", 0)
    assert await faulty.get("p:k") is None  # a read does not release it
    assert await faulty.put("p:other", b"x") == 1  # nor does a write to another key
    assert await faulty.put("p:k", b"next") == 2  # the late create landed first, as version 1
    assert [(c.method, c.fault, c.applied) for c in faulty.log if c.key == "p:k"] == [
        ("put_if_version", Fault.LATE, False),
        ("get", Fault.NONE, True),
        ("put_if_version", Fault.LATE, True),
        ("put", Fault.NONE, True),
    ]


async def test_calm_turns_every_fault_off(backend: InMemoryBackend) -> None:
    faulty = FaultyBackend(backend, error_rate=1.0)
    faulty.queue("get", Fault.ERROR)
    with faulty.calm():
        assert await faulty.put("p:k", b"x") == 1
        assert await faulty.get("p:k") is not None
    with pytest.raises(BackendError):
        await faulty.get("p:k")  # the queued fault waited for the calm to end


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"error_rate": 1.5}, "error_rate"),
        ({"error_rate": 0.6, "ambiguous_rate": 0.6}, "must not exceed 1"),
        ({"max_delay": -1.0}, "max_delay"),
        ({"methods": frozenset({"scan"})}, "unknown methods"),
    ],
)
def test_bad_settings_are_value_errors(
    backend: InMemoryBackend, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        FaultyBackend(backend, **kwargs)  # type: ignore[arg-type]


def test_reads_cannot_commit_ambiguously(backend: InMemoryBackend) -> None:
    with pytest.raises(ValueError, match="writes nothing"):
        FaultyBackend(backend).queue("get", Fault.AMBIGUOUS)


# ------------------------------------------------------------------ one fault at one place


async def test_lost_reply_of_an_applied_update_is_a_success(
    backend: InMemoryBackend, clock: ManualClock
) -> None:
    faulty = FaultyBackend(backend)
    store = _store(faulty, clock)
    task = await store.create(OWNER, variables={"a": 1})
    faulty.queue("put_if_version", Fault.AMBIGUOUS)
    updated = await store.set_variables(OWNER, task.task_id, {"b": 2})
    assert updated.variables == {"a": 1, "b": 2}
    assert (await store.get(OWNER, task.task_id)) == updated
    stored = await backend.get(task_key(OWNER, task.task_id))
    assert stored is not None
    assert stored.version == 2  # applied once, not twice
    assert _cas_calls(faulty, task_key(OWNER, task.task_id))[1:] == [(Fault.AMBIGUOUS, True)]


async def test_lost_reply_of_a_transition_is_not_an_invalid_transition(
    backend: InMemoryBackend, clock: ManualClock
) -> None:
    """Redoing working -> input_required after it landed would say input_required is a self-move."""
    faulty = FaultyBackend(backend)
    store = _store(faulty, clock)
    task = await store.create(OWNER)
    faulty.queue("put_if_version", Fault.AMBIGUOUS)
    moved = await store.require_input(OWNER, task.task_id, "which file?")
    assert moved.status is TaskStatus.INPUT_REQUIRED
    assert (await store.get(OWNER, task.task_id)).status is TaskStatus.INPUT_REQUIRED


async def test_late_landing_is_not_reported_as_a_conflict(
    backend: InMemoryBackend, clock: ManualClock
) -> None:
    """The first send times out, the read sees nothing, the resend meets the first one landed."""
    faulty = FaultyBackend(backend)
    store = _store(faulty, clock)
    task = await store.create(OWNER)
    key = task_key(OWNER, task.task_id)
    faulty.queue("put_if_version", Fault.LATE)
    moved = await store.cancel(OWNER, task.task_id, "user gave up")
    assert moved.status is TaskStatus.CANCELLED
    assert _cas_calls(faulty, key)[1:] == [
        (Fault.LATE, False),
        (Fault.LATE, True),  # landed just before the resend...
        (Fault.NONE, False),  # ...which therefore conflicted, and the store read its own write
    ]
    stored = await backend.get(key)
    assert stored is not None
    assert stored.version == 2
    assert TaskRecord.from_json(stored.data, task.task_id) == moved


async def test_write_that_failed_cleanly_is_sent_again(
    backend: InMemoryBackend, clock: ManualClock
) -> None:
    faulty = FaultyBackend(backend)
    store = _store(faulty, clock)
    task = await store.create(OWNER)
    faulty.queue("put_if_version", Fault.ERROR)
    updated = await store.set_variables(OWNER, task.task_id, {"x": 1})
    assert (await store.get(OWNER, task.task_id)).variables == {"x": 1} == updated.variables
    key = task_key(OWNER, task.task_id)
    assert _cas_calls(faulty, key)[1:] == [(Fault.ERROR, False), (Fault.NONE, True)]


async def test_persistent_write_failure_is_a_storage_failure(
    backend: InMemoryBackend, clock: ManualClock
) -> None:
    faulty = FaultyBackend(backend)
    store = _store(faulty, clock)
    task = await store.create(OWNER, variables={"a": 1})
    faulty.queue("put_if_version", Fault.ERROR, times=10)
    with pytest.raises(StorageFailure) as raised:
        await store.set_variables(OWNER, task.task_id, {"a": 2})
    _check_storage_failure(raised.value)
    assert "may or may not" not in raised.value.message  # the store knows nothing landed
    assert (await store.get(OWNER, task.task_id)).variables == {"a": 1}


async def test_lost_reply_then_another_writer_is_an_unknown_outcome(
    backend: InMemoryBackend, clock: ManualClock
) -> None:
    """Ours landed, someone wrote on top: redoing ours would apply it twice; say so instead."""
    faulty = FaultyBackend(backend)
    store = _store(faulty, clock)
    other = GenericTaskStore(backend, StoreConfig(), clock)
    task = await store.create(OWNER)

    async def interloper() -> None:
        await other.resume(OWNER, task.task_id, "input arrived")

    faulty.queue("put_if_version", Fault.AMBIGUOUS, then=interloper)
    with pytest.raises(StorageFailure, match="may or may not have been applied") as raised:
        await store.require_input(OWNER, task.task_id, "need input")
    _check_storage_failure(raised.value)
    final = await store.get(OWNER, task.task_id)
    assert final.status is TaskStatus.WORKING  # ours then theirs; ours was not redone
    assert final.status_message == "input arrived"
    key = task_key(OWNER, task.task_id)
    assert _cas_calls(faulty, key)[1:] == [(Fault.AMBIGUOUS, True)]


async def test_read_back_failing_is_an_unknown_outcome(
    backend: InMemoryBackend, clock: ManualClock
) -> None:
    faulty = FaultyBackend(backend)
    store = _store(faulty, clock)
    task = await store.create(OWNER)
    faulty.queue("put_if_version", Fault.AMBIGUOUS)
    faulty.queue("get", Fault.NONE)  # the mutation's own read
    faulty.queue("get", Fault.ERROR)  # the read that would have settled it
    with pytest.raises(StorageFailure, match="may or may not") as raised:
        await store.set_variables(OWNER, task.task_id, {"x": 1})
    _check_storage_failure(raised.value)
    assert (await store.get(OWNER, task.task_id)).variables == {"x": 1}


@pytest.mark.parametrize("method", ["get", "list_by_prefix", "cleanup_expired"])
async def test_read_faults_are_storage_failures(
    backend: InMemoryBackend, clock: ManualClock, method: str
) -> None:
    faulty = FaultyBackend(backend)
    store = _store(faulty, clock)
    task = await store.create(OWNER)
    calls = {
        "get": lambda: store.get(OWNER, task.task_id),
        "list_by_prefix": lambda: store.list(OWNER),
        "cleanup_expired": store.cleanup_expired,
    }
    faulty.queue(method, Fault.ERROR)
    with pytest.raises(StorageFailure) as raised:
        await calls[method]()
    _check_storage_failure(raised.value)


async def test_lost_reply_of_a_create_is_a_success(
    backend: InMemoryBackend, clock: ManualClock
) -> None:
    faulty = FaultyBackend(backend)
    store = _store(faulty, clock, max_tasks_per_owner=2)
    faulty.queue("put_if_version", Fault.AMBIGUOUS, times=2)  # the slot claim, then the task
    task = await store.create(OWNER)
    assert await store.get(OWNER, task.task_id) == task
    await store.create(OWNER)
    tasks, _ = await store.list(OWNER)
    assert len(tasks) == 2  # one slot each: the lost replies did not take a slot twice


# ------------------------------------------------------------------ random faults, many calls


def _op_names(op: int) -> dict[str, int]:
    return {f"op{op}-{part}": part for part in range(3)}


def _applied_ops(variables: dict[str, object], ops: range) -> set[int]:
    """Ops whose variables are all present; raises if any op is there only in part."""
    applied = set()
    for op in ops:
        present = [name in variables for name in _op_names(op)]
        assert all(present) or not any(present), f"op {op} half-applied: {variables}"
        if all(present):
            applied.add(op)
    return applied


@pytest.mark.parametrize("seed", range(4))
async def test_sequential_updates_under_faults_are_all_or_nothing(
    backend: InMemoryBackend, clock: ManualClock, seed: int
) -> None:
    faulty = FaultyBackend(backend, seed=seed, error_rate=0.15, ambiguous_rate=0.15)
    store = _store(faulty, clock)
    with faulty.calm():
        task = await store.create(OWNER)
    before: dict[str, object] = {}
    failures = 0
    for op in range(60):
        try:
            result = await store.set_variables(OWNER, task.task_id, _op_names(op))
        except StorageFailure as exc:
            _check_storage_failure(exc)
            failures += 1
            result = None
        with faulty.calm():
            now = (await store.get(OWNER, task.task_id)).variables
        after = {**before, **_op_names(op)}
        assert now in (before, after), f"op {op} left {now}"
        if result is not None:
            assert now == after == result.variables
        before = now
    assert faulty.faults(Fault.AMBIGUOUS)
    assert faulty.faults(Fault.ERROR)
    assert failures < 60


@pytest.mark.parametrize("seed", range(4))
async def test_concurrent_updates_under_faults_lose_no_acknowledged_change(
    backend: InMemoryBackend, clock: ManualClock, seed: int
) -> None:
    faulty = FaultyBackend(
        backend, seed=seed, error_rate=0.1, ambiguous_rate=0.1, delay_rate=0.5, max_delay=0.002
    )
    store = _store(faulty, clock)
    with faulty.calm():
        task = await store.create(OWNER)
    ops = range(50)
    outcomes = await asyncio.gather(
        *(store.set_variables(OWNER, task.task_id, _op_names(op)) for op in ops),
        return_exceptions=True,
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            _check_storage_failure(outcome)
    with faulty.calm():
        final = await store.get(OWNER, task.task_id)
    acknowledged = {
        op for op, outcome in zip(ops, outcomes, strict=True) if isinstance(outcome, TaskRecord)
    }
    assert acknowledged <= _applied_ops(final.variables, ops)
    assert len(acknowledged) > 25  # the faults are not so dense that nothing happens


async def test_creates_under_faults_never_overshoot_the_cap(
    backend: InMemoryBackend, clock: ManualClock
) -> None:
    faulty = FaultyBackend(backend, seed=3, error_rate=0.15, ambiguous_rate=0.15, delay_rate=0.5)
    store = _store(faulty, clock, max_tasks_per_owner=5)
    outcomes = await asyncio.gather(
        *(store.create(OWNER) for _ in range(30)), return_exceptions=True
    )
    created = [o for o in outcomes if isinstance(o, TaskRecord)]
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            assert isinstance(outcome, (StorageFailure, TaskLimitExceeded)), outcome
    clean = GenericTaskStore(backend, StoreConfig(max_tasks_per_owner=5), clock)
    listed, _ = await clean.list(OWNER)
    assert len(listed) <= 5
    assert {t.task_id for t in created} <= {t.task_id for t in listed}
