"""What the interop tests share: the example server capped at one unfinished task per owner,
and the check that no call left a task record behind."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from example_server import RunningServer, example_server
from task_client import TERMINAL, CreatedTask, connect


@contextmanager
def capped_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The example server with a cap of one unfinished task per owner."""
    args = ["--poll-interval", "0.1", "--max-tasks", "1"]
    with example_server(tmp_path_factory.mktemp("interop"), args) as up:
        yield up
    assert "Traceback" not in up.output(), up.output()


async def a_task_fits(server: RunningServer) -> None:
    """The owner's one slot is free: nothing unfinished was left behind by earlier calls."""
    async with connect(server.url) as session:
        created = await session.call("slow_compute", {"seconds": 0})
        assert isinstance(created, CreatedTask), created
        done = await session.wait_for(created.task_id, *TERMINAL)
    assert done.field("status") == "completed"
