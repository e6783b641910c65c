"""CAS race fuzzing, checked with the kit's own linearizability checker.

Hypothesis picks a *schedule*: a few keys (some created before the race), 2..8 workers, and for
each worker a short list of operations (get, put, CAS with the version it last saw, with a
stale one or with 0, delete), each preceded by a number of ``await asyncio.sleep(0)``. The
workers start together and run as asyncio tasks, on one client or spread over two (when the
backend declares ``shared``). A backend that never yields inside its methods (the memory
backend) still gets real interleavings: the pauses decide which calls overlap a backend that
does yield. Every call is recorded with a logical invoke and complete instant and its result.

The history is then checked twice: first for invariants that give a blunt message (no two
successful writes of one key share a version; successful writes = final version - initial
version when nobody deleted; racing puts return exactly ``n+1 .. n+k``), then with
:func:`conformance.linearizability.check_history`. A violation shows the smallest window of the
history that no order explains, above Hypothesis' shrunk schedule.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pytest
from hypothesis import event, given, reject, seed
from hypothesis import strategies as st

from conformance.clauses import describe
from conformance.contract.stateful import read_capabilities
from conformance.harness import (
    BackendFactory,
    KitTarget,
    ManualClock,
    fresh_namespace,
    open_target,
)
from conformance.linearizability import (
    UNKNOWN,
    CheckResult,
    NotLinearizable,
    Op,
    OpKind,
    Result,
    Window,
    check_history,
    format_window,
)
from conformance.model import NOT_FOUND, Conflict, Record
from pmcp_tasks.backend import StorageBackend
from pmcp_tasks.errors import BackendError, RecordNotFound, VersionConflict

StepKind = Literal["cas_seen", "cas_stale", "cas_zero", "put", "get", "delete"]
ALL_KINDS: tuple[StepKind, ...] = ("cas_seen", "put", "get", "delete", "cas_stale", "cas_zero")
CAS_KINDS: tuple[StepKind, ...] = ("cas_seen", "cas_stale", "cas_zero")
PUT_KINDS: tuple[StepKind, ...] = ("put", "get")
CHECK_BUDGET = 10.0
"""Seconds the checker may spend on one history before it answers "unknown"."""
MIN_DEFINITE = 20
"""Race calls that must end with a definite result over one run, else the run proves nothing.

An operation that raised ``BackendError`` may or may not have happened, so it never
contradicts anything: a backend that fails every call would pass every race unseen."""
MIN_DEFINITE_SHARE = 0.5
"""And at least this share of all race calls (a backend that loses a third still qualifies)."""


@dataclass(frozen=True, slots=True)
class Step:
    """One operation of a worker: what to call on which key, after how many yields."""

    kind: StepKind
    key: int
    pauses: int


@dataclass(frozen=True, slots=True)
class Schedule:
    """What Hypothesis draws (and shrinks): the setup and every worker's steps."""

    setup: tuple[int, ...]  # per key: puts before the race (0: the key starts absent)
    workers: tuple[tuple[Step, ...], ...]


@st.composite
def schedules(
    draw: st.DrawFn, kinds: Sequence[StepKind], max_keys: int = 3, max_workers: int = 8
) -> Schedule:
    keys = draw(st.integers(1, max_keys))
    setup = tuple(draw(st.lists(st.integers(0, 2), min_size=keys, max_size=keys)))
    step = st.builds(
        Step,
        kind=st.sampled_from(kinds),
        key=st.integers(0, keys - 1),
        pauses=st.integers(0, 3),
    )
    workers = draw(
        st.lists(st.lists(step, min_size=1, max_size=4), min_size=2, max_size=max_workers)
    )
    return Schedule(setup, tuple(tuple(steps) for steps in workers))


@dataclass(slots=True)
class RaceRun:
    """The recorded history of one schedule, and what the race started and ended with."""

    ops: list[Op] = field(default_factory=list)
    initial: dict[str, int] = field(default_factory=dict)  # version after the setup (0: absent)
    final: dict[str, int] = field(default_factory=dict)  # version after the race
    race_ops: list[Op] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # messages of the BackendErrors raised
    uncertain: set[str] = field(default_factory=set)  # keys whose setup or final read is unknown
    windows: list[Window] = field(default_factory=list)  # set by judge: what proves a violation


def _key(index: int) -> str:
    return f"race:k{index}"


class _Recorder:
    """Calls the backend and records each call as an :class:`Op` with logical instants."""

    def __init__(self, run: RaceRun) -> None:
        self.run = run
        self.ticks = itertools.count()

    async def call(
        self,
        client: StorageBackend,
        client_name: str,
        kind: OpKind,
        key: str,
        *,
        data: bytes = b"",
        expected: int = 0,
    ) -> Op:
        invoke = next(self.ticks)
        error = ""
        result: Result
        complete: int | None = None
        try:
            if kind == "get":
                got = await client.get(key)
                result = None if got is None else Record(got.data, got.version, got.expires_at)
            elif kind == "put":
                result = await client.put(key, data)
            elif kind == "cas":
                result = await client.put_if_version(key, data, expected)
            else:
                result = await client.delete(key)
            complete = next(self.ticks)
        except RecordNotFound:
            result, complete = NOT_FOUND, next(self.ticks)
        except VersionConflict as exc:
            result, complete = Conflict(exc.actual), next(self.ticks)
        except BackendError as exc:
            result = UNKNOWN  # it may or may not have happened; it never "returns"
            error = str(exc)
        except Exception as exc:
            raise AssertionError(
                f"KV-CONC-1: {kind} on {key!r} raised {exc!r} during a race of concurrent "
                f"calls\n{describe('KV-CONC-1')}"
            ) from exc
        if error:
            self.run.errors.append(error)
        op = Op(kind, key, invoke, complete, result, data, expected, client_name)
        self.run.ops.append(op)
        return op


def _version_of(op: Op, seen: int) -> int:
    """What a worker knows about a key's version after ``op`` returned."""
    result = op.result
    if isinstance(result, Record):
        return result.version
    if isinstance(result, Conflict):
        return result.actual
    if result is None or result is NOT_FOUND or op.kind == "delete":
        return 0
    if isinstance(result, int) and not isinstance(result, bool):
        return result
    return seen


async def _worker(
    recorder: _Recorder,
    name: str,
    client: StorageBackend,
    client_name: str,
    steps: Sequence[Step],
    initial: dict[str, int],
    start: asyncio.Event,
) -> None:
    seen = dict(initial)
    await start.wait()
    for number, step in enumerate(steps):
        for _ in range(step.pauses):
            await asyncio.sleep(0)
        key = _key(step.key)
        data = f"{name}.{number}".encode()
        version = seen[key]
        if step.kind == "get":
            op = await recorder.call(client, client_name, "get", key)
        elif step.kind == "put":
            op = await recorder.call(client, client_name, "put", key, data=data)
        elif step.kind == "delete":
            op = await recorder.call(client, client_name, "delete", key)
        else:
            expected = {
                "cas_seen": version,
                "cas_stale": version - 1 if version >= 1 else 1,
                "cas_zero": 0,
            }[step.kind]
            op = await recorder.call(client, client_name, "cas", key, data=data, expected=expected)
        seen[key] = _version_of(op, version)


async def run_schedule(factory: BackendFactory, schedule: Schedule, clients: int) -> RaceRun:
    """Open ``clients`` clients on a fresh namespace, run the schedule, close them."""
    clock = ManualClock()
    namespace = fresh_namespace("race")
    targets: list[KitTarget] = []
    run = RaceRun()
    try:
        for _ in range(clients):
            targets.append(await open_target(factory, namespace=namespace, clock=clock))
        opened = [target.backend for target in targets]
        recorder = _Recorder(run)
        for index, puts in enumerate(schedule.setup):
            for number in range(puts):
                op = await recorder.call(
                    opened[0], "setup", "put", _key(index), data=b"s%d" % number
                )
                if op.result is UNKNOWN:
                    run.uncertain.add(op.key)
            run.initial[_key(index)] = puts
        start = asyncio.Event()
        setup_ops = len(run.ops)
        tasks = [
            asyncio.ensure_future(
                _worker(
                    recorder,
                    f"w{index}",
                    opened[index % clients],
                    f"w{index}" + (f"@client{index % clients + 1}" if clients > 1 else ""),
                    steps,
                    run.initial,
                    start,
                )
            )
            for index, steps in enumerate(schedule.workers)
        ]
        await asyncio.sleep(0)  # every worker is now waiting on the start line
        start.set()
        await asyncio.gather(*tasks)
        run.race_ops = run.ops[setup_ops:]
        for index in range(len(schedule.setup)):
            op = await recorder.call(opened[0], "final", "get", _key(index))
            if op.result is UNKNOWN:
                run.uncertain.add(op.key)
            run.final[_key(index)] = _version_of(op, 0)
    finally:
        for target in reversed(targets):
            await target.dispose()
    return run


def _failure(clause: str, message: str, ops: Sequence[Op] = ()) -> str:
    listed = "".join(
        f"\n  {op.client}: {op.describe()} on {op.key!r} -> {op.result!r}" for op in ops
    )
    return f"{clause}: {message}{listed}\n{describe(clause)}"


def check_invariants(run: RaceRun) -> str | None:
    """The blunt checks, before the linearizability search: a failure names one clause."""
    for key, initial in run.initial.items():
        writes = _known_writes(run, key)
        if writes is not None:
            failure = _versions_failure(key, initial, run.final[key], writes)
            if failure is not None:
                return failure
    return None


def _known_writes(run: RaceRun, key: str) -> list[Op] | None:
    """The writes of ``key`` that returned a version, or None where its versions cannot be
    checked: the versions it started or ended with are not known, or they may restart (a
    delete) or have moved invisibly (a write of unknown outcome)."""
    ops = [op for op in run.race_ops if op.key == key]
    if key in run.uncertain:
        return None
    if any(op.result is UNKNOWN for op in ops) or any(op.kind == "delete" for op in ops):
        return None
    return [op for op in ops if op.kind in ("put", "cas") and isinstance(op.result, int)]


def _versions_failure(key: str, initial: int, final: int, writes: list[Op]) -> str | None:
    """Each write got a version of its own, and together they moved the version by one each
    (racing plain puts: to exactly ``initial + 1 .. initial + n``)."""
    clause = "KV-PUT-2" if all(op.kind == "put" for op in writes) else "KV-CAS-5"
    by_version: dict[int, list[Op]] = {}
    for op in writes:
        assert isinstance(op.result, int)
        by_version.setdefault(op.result, []).append(op)
    for version, sharing in by_version.items():
        if len(sharing) > 1:
            return _failure(
                _blame(max(sharing, key=lambda op: op.complete or 0)),
                f"{len(sharing)} concurrent writes of {key!r} all returned version {version}",
                sharing,
            )
    if len(writes) != final - initial:
        return _failure(
            clause,
            f"{len(writes)} writes of {key!r} succeeded but its version went from "
            f"{initial} to {final}",
            writes,
        )
    versions = sorted(by_version)
    if clause == "KV-PUT-2" and versions != list(range(initial + 1, initial + len(writes) + 1)):
        return _failure(
            clause,
            f"racing puts of {key!r} returned versions {versions}, not "
            f"{initial + 1}..{initial + len(writes)}",
            writes,
        )
    return None


def _blame(op: Op) -> str:
    """The clause of the call that returned last: it should have seen the others' writes."""
    return "KV-PUT-2" if op.kind == "put" else "KV-CAS-5"


def violation_message(result: CheckResult, run: RaceRun, clients: int) -> str:
    window = result.window
    assert window is not None
    clause = _blame(window.culprit)
    total = sum(1 for op in run.ops if op.key == window.key)
    shared = f"\n{describe('KV-SHARED-1')}" if clients > 1 else ""
    return (
        f"{clause}: the history of {window.key!r} is not linearizable: no order of its "
        "operations, each taken at one instant between its call and its return, replays the "
        f"contract. Smallest window that proves it ({len(window.ops)} of {total} operations):\n"
        f"{format_window(window)}\n{describe(clause)}{shared}"
    )


def judge(run: RaceRun, clients: int, budget: float = CHECK_BUDGET) -> str | None:
    """Invariants, then linearizability: the failure message (naming the clause), or None.

    ``"unknown"`` (the checker ran out of budget) is reported through Hypothesis: the example
    is rejected and counted, and a run where that happens too often fails its health check.
    """
    broken_rule = check_invariants(run)
    result = check_history(run.ops, budget=budget)
    if result.status == "violation":
        assert result.window is not None
        run.windows.append(result.window)
        window = violation_message(result, run, clients)
        return window if broken_rule is None else f"{broken_rule}\n\n{window}"
    if broken_rule is not None:
        return broken_rule
    if result.status == "unknown":
        event("linearizability check ran out of budget")
        reject()
    return None


@dataclass(slots=True)
class Tally:
    """Race calls over every example of one run, and how many of them had a definite result."""

    calls: int = 0
    definite: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # message of a BackendError -> count

    def add(self, run: RaceRun) -> None:
        self.calls += len(run.race_ops)
        self.definite += sum(op.result is not UNKNOWN for op in run.race_ops)
        for message in run.errors:
            self.errors[message] = self.errors.get(message, 0) + 1

    def too_few(self, clause: str) -> str | None:
        """Why this run cannot vouch for ``clause`` (too few definite results), or None."""
        needed = max(MIN_DEFINITE, math.ceil(MIN_DEFINITE_SHARE * self.calls))
        if self.definite >= needed:
            return None
        common = sorted(self.errors.items(), key=lambda item: -item[1])[:3]
        raised = "".join(f"\n  {count} x BackendError: {message}" for message, count in common)
        return (
            f"{clause}: only {self.definite} of {self.calls} race calls ended with a definite "
            f"result; the kit needs at least {needed} (>= {MIN_DEFINITE} and >= "
            f"{MIN_DEFINITE_SHARE:.0%}) to judge the race, since a call that raised "
            f"BackendError may or may not have happened and contradicts nothing. "
            f"The calls raised:{raised or ' nothing (no race calls ran)'}\n{describe(clause)}"
        )


def race_property(
    factory: BackendFactory,
    kinds: Sequence[StepKind],
    clients: int = 1,
    max_keys: int = 3,
    *,
    clause: str = "KV-CONC-1",
    run_seed: int | None = None,
) -> Callable[[], None]:
    """The Hypothesis test for one backend and op mix (settings come from the profile).

    After the examples pass, the run must also have seen enough definite results
    (:class:`Tally`); otherwise it fails on ``clause``, the clause the test vouches for.
    """
    tally = Tally()

    @given(schedule=schedules(kinds, max_keys=max_keys))
    def races(schedule: Schedule) -> None:
        run = asyncio.run(run_schedule(factory, schedule, clients))
        tally.add(run)
        failure = judge(run, clients)
        if failure is not None:  # one raise site, so Hypothesis shrinks it as one bug
            raise NotLinearizable(failure, run.windows)

    if run_seed is not None:
        races = seed(run_seed)(races)

    def run_races() -> None:
        races()
        vacuous = tally.too_few(clause)
        if vacuous is not None:
            raise AssertionError(vacuous)

    return run_races


class RaceContract:
    """Concurrent schedules checked for linearizability (KV-CAS-5, KV-PUT-2, KV-SHARED-1)."""

    @pytest.mark.pmcp_clause("KV-CAS-5", "KV-PUT-2", "KV-CONC-1")
    def test_races_are_linearizable(self, backend_factory: BackendFactory) -> None:
        race_property(backend_factory, ALL_KINDS)()

    @pytest.mark.pmcp_clause("KV-CAS-5")
    def test_cas_races_have_one_winner_per_version(self, backend_factory: BackendFactory) -> None:
        """CAS only, on one key: successful CAS count = final version - initial version."""
        race_property(backend_factory, CAS_KINDS, max_keys=1, clause="KV-CAS-5")()

    @pytest.mark.pmcp_clause("KV-PUT-2")
    def test_racing_puts_hand_out_distinct_versions(self, backend_factory: BackendFactory) -> None:
        race_property(backend_factory, PUT_KINDS, max_keys=1, clause="KV-PUT-2")()

    @pytest.mark.pmcp_clause("KV-SHARED-1", "KV-CAS-5")
    def test_races_across_two_clients_are_linearizable(
        self, backend_factory: BackendFactory
    ) -> None:
        if not read_capabilities(backend_factory).shared_in_process:
            why = (
                "backend declares shared_in_process=False; KV-SHARED-1 races need a second "
                "instance on the same namespace"
            )
            pytest.skip(reason=why)
        race_property(backend_factory, ALL_KINDS, clients=2, clause="KV-SHARED-1")()
