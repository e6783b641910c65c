"""Tasks that outlive their worker, in process over the memory store: immediate cancel of any
handler body, the per-instance limit on running handlers, and resume on another instance.

Two in-process server instances share one memory store (as two processes share Redis). A
worker's loss is simulated by stopping A (``aclose``: its handlers are cancelled and its
lease is no longer renewed) and moving the stores' clock, held by hand, past the lease.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from task_client import TERMINAL, VERSION, CreatedTask, TasksAd, TaskSession

from conformance.harness import ManualClock
from pmcp_tasks import GenericTaskStore, LeaseLost, StoreConfig, TaskStatus, VersionedRecord
from pmcp_tasks.mcp import ResumableContext, TasksExtension, current_task
from reference_backends.memory import InMemoryBackend, MemoryStore

pytestmark = pytest.mark.anyio
LEASE = 30.0
SLOW_POLL = 3600.0
"""A poll interval no test waits out: what happens before it is not the watcher's poll."""
SAFETY_NET = 60.0
"""Seconds before a test gives up on an event (a guard against a hang, not a timing claim)."""
MAX_POLLS = 6000
"""Looks at a condition, 0.01 s apart, before a test gives up (a safety net, likewise)."""


@dataclass
class Fleet:
    """Instances over one memory store and one hand-moved clock, and what their tools saw."""

    clock: ManualClock
    instances: list[TasksExtension]
    servers: list[MCPServer[Any]]
    started: list[str] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    running: int = 0
    most_running: int = 0


class YieldingBackend(InMemoryBackend):
    """The memory backend, but every call lets the loop run others first, as a network round
    trip does: concurrent work on one instance interleaves between store calls."""

    async def get(self, key: str) -> VersionedRecord | None:
        await asyncio.sleep(0)
        return await super().get(key)

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        await asyncio.sleep(0)
        return await super().put(key, data, expires_at=expires_at)

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        await asyncio.sleep(0)
        return await super().put_if_version(key, data, expected_version, expires_at=expires_at)


def _fleet(count: int = 2, *, poll: float = 0.05, yielding: bool = False, **options: Any) -> Fleet:
    memory, clock = MemoryStore(), ManualClock()
    backend = YieldingBackend if yielding else InMemoryBackend
    config = StoreConfig(allow_anonymous=True, poll_interval=poll, max_tasks_per_owner=None)
    fleet = Fleet(clock, [], [])
    for n in range(count):
        store = GenericTaskStore(backend(store=memory, clock=clock), config, clock=clock)
        tasks = TasksExtension(store, worker_id=f"worker-{n}", clock=clock, **options)
        server: MCPServer[Any] = MCPServer(f"durable-{n}", extensions=[tasks])
        _tools(fleet, f"worker-{n}", server, tasks)
        fleet.instances.append(tasks)
        fleet.servers.append(server)
    return fleet


def _tools(fleet: Fleet, worker: str, server: MCPServer[Any], tasks: TasksExtension) -> None:
    @tasks.tool(server, support="required")
    async def plain_sleep() -> str:
        """A body that never looks at its task: only cancelling its asyncio task stops it."""
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            fleet.cancelled.set()
            raise
        return "slept"

    @tasks.tool(server, support="required")
    async def stubborn() -> str:
        """Swallows its cancel and goes on until released."""
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            fleet.cancelled.set()
            await fleet.release.wait()
        return "finished anyway"

    @tasks.tool(server, support="required")
    async def gated() -> str:
        fleet.running += 1
        fleet.most_running = max(fleet.most_running, fleet.running)
        fleet.started.append(worker)
        try:
            await fleet.release.wait()
        finally:
            fleet.running -= 1
        return "done"

    @tasks.tool(server, support="required", resume=True)
    async def resumable(rounds: int = 2) -> str:
        """Counts its starts in the task's variables and asks one question."""
        task = current_task()
        starts = int(str(await task.get_variable("starts", 0))) + 1
        await task.set_variable("starts", starts)
        fleet.started.append(worker)
        answers = await task.request_input({"go": {"method": "roots/list"}})
        fleet.answered.append(worker)  # request_input returned: its answers are journaled
        if starts < rounds:
            await fleet.release.wait()  # A never gets past here: it is stopped
        return f"start {starts} on {worker}: {answers['go']}"

    @tasks.tool(server, support="required", resume=True)
    async def held(hold: bool = True) -> str:
        """Says where it ran and which start of its task this is; with ``hold``, its first
        start waits until released."""
        fleet.started.append(worker)
        task = current_task()
        assert isinstance(task, ResumableContext)
        if hold and task.attempt == 1:
            await fleet.release.wait()
        return f"start {task.attempt} on {worker}"


@asynccontextmanager
async def _session(server: MCPServer[Any]) -> AsyncIterator[TaskSession]:
    async with Client(server, mode=VERSION, extensions=[TasksAd()], cache=None) as client:
        yield TaskSession(client)


async def _until(condition: Any) -> None:
    """Yield to the loop until ``condition()`` holds; fails after MAX_POLLS looks."""
    for _ in range(MAX_POLLS):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"still not true after {MAX_POLLS} looks: {condition}")


async def test_cancel_stops_a_plain_sleep_without_waiting_for_a_poll() -> None:
    """The handler awaits ``asyncio.sleep(60)`` and never touches its task; the watcher polls
    once an hour. The cancel through the same instance wakes the watcher, which cancels it."""
    fleet = _fleet(1, poll=SLOW_POLL, lease=3 * SLOW_POLL)
    (tasks,) = fleet.instances
    async with _session(fleet.servers[0]) as client:
        created = await client.call("plain_sleep")
        assert isinstance(created, CreatedTask)
        await asyncio.sleep(0)  # the handler starts
        await client.cancel(created.task_id)
        await asyncio.wait_for(fleet.cancelled.wait(), SAFETY_NET)
        assert (await client.get(created.task_id)).field("status") == "cancelled"
    await tasks.aclose()


async def test_a_handler_that_ignores_its_cancel_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fleet = _fleet(1)
    (tasks,) = fleet.instances
    caplog.set_level(logging.WARNING, logger="pmcp_tasks.mcp")
    async with _session(fleet.servers[0]) as client:
        created = await client.call("stubborn")
        await asyncio.sleep(0)
        await client.cancel(created.task_id)
        await asyncio.wait_for(fleet.cancelled.wait(), SAFETY_NET)
        await _until(lambda: "ignores cancellation" in caplog.text)
        fleet.release.set()  # its late result is dropped: the cancel stands
        assert (await client.get(created.task_id)).field("status") == "cancelled"
    assert created.task_id in caplog.text
    await tasks.aclose()


async def test_at_most_max_running_handlers_run_and_the_rest_wait_in_order() -> None:
    fleet = _fleet(1, max_running=2)
    (tasks,) = fleet.instances
    async with _session(fleet.servers[0]) as client:
        created = [await client.call("gated") for _ in range(5)]
        await _until(lambda: fleet.running == 2)
        for _ in range(10):  # let any handler that would wrongly start do so
            await asyncio.sleep(0)
        assert len(fleet.started) == 2
        views = [await client.get(task.task_id) for task in created]
        assert [view.field("status") for view in views] == ["working"] * 5  # queued, leased
        fleet.release.set()
        done = [await client.wait_for(task.task_id, *TERMINAL) for task in created]
    assert [view.field("status") for view in done] == ["completed"] * 5
    assert fleet.most_running == 2
    await tasks.aclose()


async def test_a_resumable_task_lost_before_its_first_watch_tick_runs_again_on_b() -> None:
    """The watcher's first tick is an hour away, and A stops right after the handler
    started: the task was resumable from the moment its CreateTaskResult left (its entry
    written, A released its lease), so B runs it again."""
    fleet = _fleet(poll=SLOW_POLL, lease=3 * SLOW_POLL)
    task_id = await _held_on_a_then_stopped(fleet)
    async with _session(fleet.servers[1]) as on_b:
        for _ in range(MAX_POLLS):  # not wait_for: it would wait the hour-long poll interval
            done = await on_b.get(task_id)
            if done.field("status") in TERMINAL:
                break
            await asyncio.sleep(0.01)
    await _ran_again_on_b(fleet, done)


async def test_concurrent_looks_at_a_lost_task_start_its_handler_once() -> None:
    """Every store call yields, so B's concurrent ``tasks/get`` calls interleave while each
    takes the lost task over (as over a network): one of them starts the handler, once."""
    fleet = _fleet(lease=LEASE, yielding=True)
    task_id = await _held_on_a_then_stopped(fleet)
    async with _session(fleet.servers[1]) as on_b:
        await asyncio.gather(*(on_b.get(task_id) for _ in range(4)))
        done = await on_b.wait_for(task_id, *TERMINAL)
    await _ran_again_on_b(fleet, done)


async def _held_on_a_then_stopped(fleet: Fleet) -> str:
    """A starts ``held`` and stops (releasing its lease); the clock passes that lease."""
    async with _session(fleet.servers[0]) as on_a:
        created = await on_a.call("held")
        await _until(lambda: fleet.started == ["worker-0"])
    await fleet.instances[0].aclose()
    fleet.clock.advance(1)
    return str(created.task_id)


async def _ran_again_on_b(fleet: Fleet, done: Any) -> None:
    """``held`` completed once more, on B, as its second start, and B stops."""
    assert done.field("status") == "completed", done.field("error")
    assert "start 2 on worker-1" in str(done.field("result"))
    assert fleet.started == ["worker-0", "worker-1"]
    await fleet.instances[1].aclose()


async def test_a_resumable_task_over_the_cap_is_taken_by_an_instance_with_a_free_slot() -> None:
    """A runs one handler at a time and is busy: a resumable task created through A waits in
    the store with its lease released, and B, idle, takes it and runs it (its first start)
    while A's handler still runs."""
    fleet = _fleet(max_running=1)
    a, b = fleet.instances
    await b.open()  # B looks for tasks to take from now on, though no client talks to it
    async with _session(fleet.servers[0]) as on_a:
        busy = await on_a.call("gated")
        await _until(lambda: fleet.running == 1)
        queued = await on_a.call("held", {"hold": False})
        assert fleet.started == ["worker-0"]  # A did not start it
        fleet.clock.advance(1)  # the stores' clock passes the released lease (1 ms)
        done = await on_a.wait_for(queued.task_id, *TERMINAL)
        assert fleet.running == 1  # A's handler still runs: B ran the queued task
        fleet.release.set()
        assert (await on_a.wait_for(busy.task_id, *TERMINAL)).field("status") == "completed"
    assert done.field("status") == "completed", done.field("error")
    assert "start 1 on worker-1" in str(done.field("result"))
    assert fleet.started == ["worker-0", "worker-1"]
    await a.aclose()
    await b.aclose()


async def test_a_resumable_task_over_the_cap_runs_here_once_a_slot_frees() -> None:
    fleet = _fleet(1, max_running=1)
    (a,) = fleet.instances
    async with _session(fleet.servers[0]) as client:
        busy = await client.call("gated")
        await _until(lambda: fleet.running == 1)
        queued = await client.call("held", {"hold": False})
        assert (await client.get(queued.task_id)).field("status") == "working"
        assert fleet.started == ["worker-0"]
        fleet.clock.advance(1)
        fleet.release.set()
        done = await client.wait_for(queued.task_id, *TERMINAL)
        assert (await client.wait_for(busy.task_id, *TERMINAL)).field("status") == "completed"
    assert done.field("status") == "completed", done.field("error")
    assert "start 1 on worker-0" in str(done.field("result"))
    assert fleet.started == ["worker-0", "worker-0"]
    await a.aclose()


async def test_a_lost_workers_resumable_task_runs_again_on_b_with_its_variables() -> None:
    """A starts the task, which counts its start in a variable and asks a question; A stops.
    Once A's lease lapsed, B's ``tasks/get`` takes the task over: the handler runs again on B,
    reads its variable (start 2), waits for the question A asked (no new key), and completes
    once with the answer given after A was gone."""
    fleet = _fleet(lease=LEASE)
    a, b = fleet.instances
    async with _session(fleet.servers[0]) as on_a:
        created = await on_a.call("resumable")
        asked = await on_a.wait_for(created.task_id, "input_required")
    (key,) = asked.field("inputRequests")
    await a.aclose()  # A is gone: nothing renews its lease
    async with _session(fleet.servers[1]) as on_b:
        await on_b.update(created.task_id, {key: {"roots": []}})
        # The clock has not moved since A stopped: A's lease has not lapsed yet.
        assert (await on_b.get(created.task_id)).field("status") == "working"
        fleet.clock.advance(LEASE + 1)
        done = await on_b.wait_for(created.task_id, *TERMINAL)
    assert done.field("status") == "completed", done.field("error")
    assert "start 2 on worker-1: {'roots': []}" in str(done.field("result"))
    assert fleet.started == ["worker-0", "worker-1"]
    await b.aclose()


async def test_answers_already_taken_are_replayed_from_the_journal() -> None:
    """A took its answer before it was lost: B's run gets it back at once, asking nothing."""
    fleet = _fleet(lease=LEASE)
    a, b = fleet.instances
    async with _session(fleet.servers[0]) as on_a:
        created = await on_a.call("resumable", {"rounds": 3})
        asked = await on_a.wait_for(created.task_id, "input_required")
        (key,) = asked.field("inputRequests")
        await on_a.update(created.task_id, {key: {"roots": ["a"]}})
        await _until(lambda: fleet.answered == ["worker-0"])
    await a.aclose()
    fleet.clock.advance(LEASE + 1)
    async with _session(fleet.servers[1]) as on_b:
        view = await on_b.get(created.task_id)
        assert view.field("status") == "working"
        assert view.field("inputRequests") is None
        await _until(lambda: fleet.answered == ["worker-0", "worker-1"])
        # B's run passed request_input without asking: it waits on the release now.
        assert (await on_b.get(created.task_id)).field("status") == "working"
        fleet.release.set()
        done = await on_b.wait_for(created.task_id, *TERMINAL)
    assert "start 2 on worker-1: {'roots': ['a']}" in str(done.field("result"))
    await b.aclose()


async def test_a_stopping_instance_hands_its_resumable_task_over_at_once() -> None:
    """A stops (``aclose``, as in a rolling deploy) with a resumable task in flight: it releases
    the lease, so B takes the task over a millisecond later, not a lease later."""
    fleet = _fleet(lease=LEASE)
    a, b = fleet.instances
    async with _session(fleet.servers[0]) as on_a:
        created = await on_a.call("resumable")
        asked = await on_a.wait_for(created.task_id, "input_required")
    (key,) = asked.field("inputRequests")
    await a.aclose()
    fleet.clock.advance(0.01)  # far less than LEASE
    async with _session(fleet.servers[1]) as on_b:
        await on_b.update(created.task_id, {key: {"roots": []}})
        done = await on_b.wait_for(created.task_id, *TERMINAL)
    assert done.field("status") == "completed", done.field("error")
    assert fleet.started == ["worker-0", "worker-1"]
    await b.aclose()


async def test_a_late_renewal_on_the_running_instance_starts_no_second_run() -> None:
    """The lease lapsed on the store's clock while the handler still runs on A (its renewal is
    late, as under a blocked loop): a read through A neither fails the task nor runs the
    handler again beside the first run."""
    fleet = _fleet(1, lease=LEASE)
    (a,) = fleet.instances
    async with _session(fleet.servers[0]) as on_a:
        created = await on_a.call("resumable", {"rounds": 1})
        asked = await on_a.wait_for(created.task_id, "input_required")
        fleet.clock.advance(LEASE + 1)
        assert (await on_a.get(created.task_id)).field("status") == "input_required"
        (key,) = asked.field("inputRequests")
        await on_a.update(created.task_id, {key: {"roots": []}})
        done = await on_a.wait_for(created.task_id, *TERMINAL)
    assert "start 1 on worker-0" in str(done.field("result"))
    assert fleet.started == ["worker-0"]
    await a.aclose()


async def test_attempts_exhausted_fail_the_task() -> None:
    fleet = _fleet(lease=LEASE, resume_attempts=1)
    a, b = fleet.instances
    async with _session(fleet.servers[0]) as on_a:
        created = await on_a.call("resumable")
        await on_a.wait_for(created.task_id, "input_required")
    await a.aclose()
    fleet.clock.advance(LEASE + 1)
    async with _session(fleet.servers[1]) as on_b:
        ended = await on_b.get(created.task_id)
    assert ended.field("status") == "failed"
    assert "was lost" in ended.field("error")["message"]
    assert fleet.started == ["worker-0"]
    await b.aclose()


async def test_two_claimers_of_a_lapsed_lease_are_fenced() -> None:
    clock = ManualClock()
    config = StoreConfig(allow_anonymous=True)
    store = GenericTaskStore(InMemoryBackend(clock=clock), config, clock=clock)
    task = await store.create("alice", worker="w1", lease=10)
    with pytest.raises(LeaseLost):  # live: nobody takes it
        await store.take_over_lease("alice", task.task_id, "w2", 10)
    clock.advance(11)
    assert store.lease_lapsed(await store.get("alice", task.task_id))
    taken = await store.take_over_lease("alice", task.task_id, "w2", 10)
    assert (taken.worker, taken.status) == ("w2", TaskStatus.WORKING)
    with pytest.raises(LeaseLost):  # the second claimer loses
        await store.take_over_lease("alice", task.task_id, "w3", 10)
    with pytest.raises(LeaseLost):  # and so does the lost worker, come back
        await store.complete("alice", task.task_id, {"content": []}, worker="w1")
    assert (await store.get("alice", task.task_id)).worker == "w2"
