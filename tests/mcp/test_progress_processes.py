"""Progress across processes: a handler in one example server reports, and ``tasks/get``
through another example server process over the same real redis-server shows it.

On Redis only (the memory store lives in one process); the tox envs with Redis run it, as they
run ``test_two_instances.py``. ``test_progress.py`` covers the same in process, on memory.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from example_server import example_server
from mcp_support import SHARED_BACKENDS, backend_args
from task_client import TERMINAL, CreatedTask, connect

pytestmark = pytest.mark.anyio
POLL = 0.2
MAX_POLLS = 3000
"""Reads through B, POLL apart, before the test gives up (a safety net, not a timing claim)."""

if "redis" in SHARED_BACKENDS:

    async def test_a_report_in_process_a_is_the_status_message_in_process_b(
        request: pytest.FixtureRequest, tmp_path: Path
    ) -> None:
        args = backend_args(request, "redis", f"progress-{tmp_path.name}")
        args += ["--poll-interval", str(POLL)]
        with example_server(tmp_path, args) as a, example_server(tmp_path, args) as b:
            async with connect(a.url) as on_a, connect(b.url) as on_b:
                # The first step's report is written at once; the step then lasts 600 s.
                created = await on_a.call("progress_job", {"steps": 3, "seconds_per_step": 600})
                assert isinstance(created, CreatedTask)
                shown = []
                for _ in range(MAX_POLLS):
                    view = await on_b.get(created.task_id)
                    shown.append(view.field("statusMessage"))
                    if shown[-1] == "step (1/3)":
                        break
                    await asyncio.sleep(POLL)
                assert shown[-1] == "step (1/3)", shown[-5:]
                assert view.field("status") == "working"
                await on_b.cancel(created.task_id)
                ended = await on_a.wait_for(created.task_id, *TERMINAL)
            assert ended.field("status") == "cancelled"
            assert "Traceback" not in a.output() + b.output(), a.output() + b.output()
