"""Progress reports: ``current_task().report()`` becomes the task's ``statusMessage``.

Two in-process server instances share one memory store (as two processes share Redis): a
handler running on A reports, and ``tasks/get`` through B shows it. A loop of 1,000 reports
costs a bounded number of store writes, counted beneath the store; the rate limit follows a
clock moved by hand, never the wall clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from counting_backend import CountingBackend
from mcp import Client
from mcp.server.mcpserver import MCPServer
from task_client import TERMINAL, VERSION, CreatedTask, TasksAd, TaskSession, TaskView

from conformance.harness import ManualClock
from pmcp_tasks import GenericTaskStore, LeaseLost, StoreConfig, TaskContext, TaskValidationError
from pmcp_tasks.context import MAX_REPORT_CHARS
from pmcp_tasks.mcp import TasksExtension, current_task
from reference_backends.memory import InMemoryBackend, MemoryStore

pytestmark = pytest.mark.anyio
INTERVAL = 0.05
"""The store's poll interval, hence the report interval: at most one write per 0.05 s of the
hand-moved clock."""
REPORTS = 1000
MAX_POLLS = 3000
"""Reads of the task, INTERVAL apart, before a test gives up (a safety net, not a timing claim)."""


def _config() -> StoreConfig:
    return StoreConfig(allow_anonymous=True, poll_interval=INTERVAL, max_tasks_per_owner=None)


@dataclass
class Instance:
    server: MCPServer[Any]
    tasks: TasksExtension


@dataclass
class Pair:
    a: Instance
    b: Instance
    clock: ManualClock
    counted: CountingBackend
    reported: asyncio.Event
    release: asyncio.Event


def _pair() -> Pair:
    """A and B over one shared memory store; only A's writes are counted."""
    memory = MemoryStore()
    clock = ManualClock()
    counted = CountingBackend(InMemoryBackend(store=memory, clock=clock))
    stores = [
        GenericTaskStore(counted, _config(), clock=clock),
        GenericTaskStore(InMemoryBackend(store=memory, clock=clock), _config(), clock=clock),
    ]
    instances = []
    for name, store in zip("ab", stores, strict=True):
        tasks = TasksExtension(store, lease=600, worker_id=f"worker-{name}", clock=clock)
        instances.append(Instance(MCPServer(f"progress-{name}", extensions=[tasks]), tasks))
    pair = Pair(*instances, clock, counted, asyncio.Event(), asyncio.Event())

    @pair.a.tasks.tool(pair.a.server, support="required")
    async def chatty(reports: int, step: float) -> str:
        """``reports`` reports, the clock moved ``step`` seconds after each; then it waits."""
        task = current_task()
        for done in range(1, reports + 1):
            await task.report("rows", progress=done, total=reports)
            clock.advance(step)
        pair.reported.set()
        await pair.release.wait()
        return "done"

    return pair


@asynccontextmanager
async def _session(instance: Instance) -> AsyncIterator[TaskSession]:
    async with Client(instance.server, mode=VERSION, extensions=[TasksAd()], cache=None) as c:
        yield TaskSession(c)


async def _shows(session: TaskSession, task_id: str, message: str) -> TaskView:
    """Poll ``tasks/get`` until the task shows ``message``; fails naming what it showed."""
    for _ in range(MAX_POLLS):
        view = await session.get(task_id)
        if view.field("statusMessage") == message:
            return view
        await asyncio.sleep(INTERVAL)
    raise AssertionError(f"task {task_id} still shows {view.field('statusMessage')!r}")


async def _run(pair: Pair, reports: int, step: float) -> tuple[str, int]:
    """Start ``chatty`` on A; once its reports are done, the task id and A's writes for them."""
    before = pair.counted.writes
    async with _session(pair.a) as on_a:
        created = await on_a.call("chatty", {"reports": reports, "step": step})
    assert isinstance(created, CreatedTask)
    await pair.reported.wait()
    return created.task_id, pair.counted.writes - before - 1  # less the create


async def test_a_report_on_a_is_the_status_message_on_b() -> None:
    pair = _pair()
    task_id, writes = await _run(pair, REPORTS, step=0)  # the clock stands still
    async with _session(pair.b) as on_b:
        # The first report is written at once; the 999 after it within the interval are held,
        # each replacing the one before.
        assert writes == 1
        await _shows(on_b, task_id, f"rows (1/{REPORTS})")
        # Once the interval passed, A's watcher writes the latest held report, once.
        before = pair.counted.writes
        pair.clock.advance(2 * INTERVAL)
        view = await _shows(on_b, task_id, f"rows ({REPORTS}/{REPORTS})")
        assert view.field("status") == "working"
        assert pair.counted.writes - before == 1
        pair.release.set()
        done = await on_b.wait_for(task_id, *TERMINAL)
    assert done.field("status") == "completed"
    await pair.a.tasks.aclose()


async def test_a_thousand_reports_cost_one_write_per_interval() -> None:
    """1,000 reports over 10 intervals of the hand-moved clock: 10 writes and the first one,
    not 1,000."""
    pair = _pair()
    step = INTERVAL / 100
    task_id, writes = await _run(pair, REPORTS, step=step)
    assert writes <= REPORTS * step / INTERVAL + 1, writes
    assert writes >= REPORTS * step / INTERVAL - 1, writes
    pair.release.set()
    async with _session(pair.b) as on_b:
        assert (await on_b.wait_for(task_id, *TERMINAL)).field("status") == "completed"
    await pair.a.tasks.aclose()


# ------------------------------------------------------------------ the context on its own


async def _context(worker: str | None = "w1") -> tuple[TaskContext, GenericTaskStore, ManualClock]:
    clock = ManualClock()
    store = GenericTaskStore(InMemoryBackend(clock=clock), _config(), clock=clock)
    record = await store.create("alice", worker="w1", lease=600)
    return TaskContext(store, "alice", record.task_id, worker=worker, clock=clock), store, clock


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        ({"message": 42}, "message must be a str, not int"),
        ({"message": "x" * (MAX_REPORT_CHARS + 1)}, f"at most {MAX_REPORT_CHARS}"),
        ({"message": "x", "progress": "half"}, "progress must be a number or None, not str"),
        ({"message": "x", "progress": True}, "progress must be a number or None, not bool"),
        ({"message": "x", "progress": -1}, "progress must be a finite number >= 0"),
        ({"message": "x", "progress": float("nan")}, "progress must be a finite number >= 0"),
        ({"message": "x", "progress": 10**400}, "not an integer of 1329 bits"),
        ({"message": "x", "progress": 1, "total": float("inf")}, "total must be a finite number"),
        ({"message": "x", "total": 10}, "a total without a progress"),
        ({"message": "x", "progress": 11, "total": 10}, "progress 11 exceeds its total 10"),
    ],
)
async def test_a_wrong_report_is_refused_naming_the_argument(
    arguments: dict[str, Any], complaint: str
) -> None:
    task, store, _ = await _context()
    with pytest.raises(TaskValidationError) as refused:
        await task.report(**arguments)
    assert complaint in refused.value.message
    assert (await store.get("alice", task.task_id)).status_message is None


async def test_a_held_report_never_replaces_a_later_status() -> None:
    task, store, clock = await _context()
    await task.report("loading", progress=1)
    await task.report("loading", progress=2)  # held: within the interval
    await task.require_input("waiting for the client")
    clock.advance(2 * INTERVAL)
    assert await task.flush() is False
    assert (await store.get("alice", task.task_id)).status_message == "waiting for the client"


async def test_reports_are_fenced_by_the_lease_holder() -> None:
    task, store, _ = await _context(worker="w2")
    with pytest.raises(LeaseLost):
        await task.report("not mine")
    assert (await store.get("alice", task.task_id)).status_message is None
