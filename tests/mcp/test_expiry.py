"""Expired tasks leave a memory store: the extension sweeps it on a schedule.

An hour of churn on a hand-moved clock through an in-process server: tasks are created, finish
and expire, and the records the store holds (counted beneath it, expired ones included) stay
bounded by what one TTL and one sweep interval can accumulate, while the hour creates many
times that.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from counting_backend import CountingBackend
from mcp import Client
from mcp.server.mcpserver import MCPServer
from task_client import TERMINAL, VERSION, CreatedTask, TasksAd, TaskSession

from conformance.harness import ManualClock
from pmcp_tasks import GenericTaskStore, StoreConfig
from pmcp_tasks.mcp import TasksExtension
from pmcp_tasks.mcp.extension import DEFAULT_CLEANUP_INTERVAL
from reference_backends.memory import InMemoryBackend

pytestmark = pytest.mark.anyio
TTL = 60.0
STEP = 20.0
"""Seconds of the hand-moved clock between two bursts of tasks."""
BURST = 3
HOUR = 3600.0


def _served(clock: ManualClock, **options: Any) -> tuple[MCPServer[Any], CountingBackend]:
    counted = CountingBackend(InMemoryBackend(clock=clock))
    config = StoreConfig(
        allow_anonymous=True, poll_interval=0.05, max_tasks_per_owner=None, default_ttl=TTL
    )
    store = GenericTaskStore(counted, config, clock=clock)
    tasks = TasksExtension(store, lease=600, clock=clock, **options)
    server = MCPServer("expiry", extensions=[tasks])

    @tasks.tool(server, support="required")
    async def quick(n: int) -> str:
        return f"done {n}"

    return server, counted


async def _churn(session: TaskSession, clock: ManualClock, counted: CountingBackend) -> int:
    """An hour of bursts; returns the most records held after any burst."""
    most = 0
    for burst in range(int(HOUR / STEP)):
        created = [await session.call("quick", {"n": burst * BURST + n}) for n in range(BURST)]
        for task in created:
            assert isinstance(task, CreatedTask)
            await session.wait_for(task.task_id, *TERMINAL)
        most = max(most, counted.held)
        clock.advance(STEP)
    return most


async def test_an_hour_of_churn_keeps_the_memory_store_bounded() -> None:
    clock = ManualClock()
    server, counted = _served(clock)
    async with Client(server, mode=VERSION, extensions=[TasksAd()], cache=None) as client:
        most = await _churn(TaskSession(client), clock, counted)
    # A record lives its TTL, then at most one sweep interval, plus one step for the request
    # that starts the sweep: what the bursts create in that time is all the store can hold.
    bound = BURST * (TTL + DEFAULT_CLEANUP_INTERVAL + 2 * STEP) / STEP
    assert counted.created == BURST * HOUR / STEP  # 540 tasks, far more than the bound
    assert most <= bound, (most, bound)
    # One sweep per interval of the hand-moved clock, never two at once.
    assert (
        HOUR / DEFAULT_CLEANUP_INTERVAL - 1 <= counted.sweeps <= HOUR / DEFAULT_CLEANUP_INTERVAL + 1
    )
    assert counted.most_sweeping == 1


async def test_without_sweeps_the_same_churn_keeps_every_task() -> None:
    """The control: with ``cleanup_interval=None`` nothing removes the expired records."""
    clock = ManualClock()
    server, counted = _served(clock, cleanup_interval=None)
    async with Client(server, mode=VERSION, extensions=[TasksAd()], cache=None) as client:
        most = await _churn(TaskSession(client), clock, counted)
    assert (most, counted.sweeps) == (BURST * HOUR / STEP, 0)


async def test_requests_arriving_together_start_one_sweep() -> None:
    clock = ManualClock()
    server, counted = _served(clock)
    async with Client(server, mode=VERSION, extensions=[TasksAd()], cache=None) as client:
        session = TaskSession(client)
        created = await session.call("quick", {"n": 0})  # the first request sweeps
        assert isinstance(created, CreatedTask)
        await session.wait_for(created.task_id, *TERMINAL)
        clock.advance(DEFAULT_CLEANUP_INTERVAL)
        together = await asyncio.gather(*(session.call("quick", {"n": n}) for n in range(10)))
        assert all(isinstance(task, CreatedTask) for task in together)
    assert (counted.sweeps, counted.most_sweeping) == (2, 1)


@pytest.mark.parametrize("interval", [0, -1, True, "60", 10**400, float("inf")])
def test_a_wrong_cleanup_interval_is_refused(interval: Any) -> None:
    store = GenericTaskStore(InMemoryBackend())
    with pytest.raises(ValueError, match="cleanup_interval must be a number of seconds in"):
        TasksExtension(store, cleanup_interval=interval)


def test_auto_sweeps_a_store_of_this_process_only() -> None:
    assert TasksExtension(GenericTaskStore(InMemoryBackend())).cleanup_interval == 60.0
    assert (
        TasksExtension(GenericTaskStore(InMemoryBackend()), cleanup_interval=5).cleanup_interval
        == 5.0
    )
