"""Two example-server processes over one real store: a task lives in the store, not in the
process that runs it.

A task created through A is read, answered and cancelled through B while A's handler runs;
when A is killed (``kill -9``), a task of a tool that is not resumable ends ``failed`` once A's
lease runs out, and the error says the worker was lost; a resumable one is taken over by B and
completes there, with its variables, and a question A asked is answered through B and
completes there too. On a real redis-server and on moto's DynamoDB server. On Redis a cancel
reaches A's handler without waiting for A's next poll. And the store itself restarting: a
redis-server with AOF killed and started again mid-task loses none.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from example_server import RunningServer, example_server
from mcp_support import SHARED_BACKENDS, backend_args
from task_client import TERMINAL, CreatedTask, connect

LEASE = 2.0
ACCEPT = {"action": "accept", "content": {"confirm": True}}
pytestmark = pytest.mark.anyio


@pytest.fixture(params=SHARED_BACKENDS)
def pair(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[RunningServer, RunningServer]]:
    backend: str = request.param
    if backend == "dynamodb":
        moto = request.getfixturevalue("moto_http")
        args = ["--backend", backend, "--namespace", f"pair-{tmp_path.name}"]
        args += ["--backend-option", f"dynamodb_endpoint={moto.url}"]
    else:
        args = backend_args(request, backend, f"pair-{tmp_path.name}")
    args += ["--poll-interval", "0.2", "--lease", str(LEASE)]
    with ExitStack() as stack:
        a = stack.enter_context(example_server(tmp_path, args))
        b = stack.enter_context(example_server(tmp_path, args))
        yield a, b


async def test_create_on_a_answer_and_cancel_on_b(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    a, b = pair
    async with connect(a.url) as on_a, connect(b.url) as on_b:
        asked = await on_a.call("confirm_delete", {"filename": "report.txt"})
        assert isinstance(asked, CreatedTask)
        waiting = await on_b.wait_for(asked.task_id, "input_required")
        (key,) = waiting.field("inputRequests")
        await on_b.update(asked.task_id, {key: ACCEPT})
        # Only A's handler can complete it: it saw B's answer through the store.
        done = await on_b.wait_for(asked.task_id, *TERMINAL)
        assert done.field("status") == "completed"
        assert "delete of report.txt" in str(done.field("result"))

        running = await on_a.call("slow_compute", {"seconds": 60})
        assert isinstance(running, CreatedTask)
        assert (await on_b.get(running.task_id)).field("status") == "working"
        await on_b.cancel(running.task_id)
        seen_on_a = await on_a.get(running.task_id)
        assert seen_on_a.field("status") == "cancelled"
    assert "Traceback" not in a.output() + b.output()


NOT_RESUMABLE = ("progress_job", {"steps": 1, "seconds_per_step": 600})
"""A long task of a tool that is not resumable."""


async def test_kill_9_of_the_worker_fails_its_task_after_the_lease(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    a, b = pair
    async with connect(a.url) as on_a:
        created = await on_a.call(*NOT_RESUMABLE)
        assert isinstance(created, CreatedTask)
    killed_at = time.time()
    a.kill()
    async with connect(b.url) as on_b:
        assert (await on_b.get(created.task_id)).field("status") == "working"
        ended = await on_b.wait_for(created.task_id, *TERMINAL)
    assert ended.field("status") == "failed"
    error = ended.field("error")
    assert error["code"] == -32603
    assert "was lost" in error["message"]
    # The lease ran out no later than LEASE after the kill, and the task failed only after it.
    found = re.search(r"ran out at (\S+Z)", error["message"])
    assert found is not None, error
    expired = _epoch(found.group(1))
    assert expired <= killed_at + LEASE
    assert _epoch(ended.field("lastUpdatedAt")) >= expired


async def test_a_worker_paused_past_its_lease_stops_its_handler_when_it_resumes(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    """SIGSTOP of A for longer than its lease: B's read ends the task ``failed``; after SIGCONT,
    A's watcher finds that out, cancels the handler and says so in its log, and the task keeps
    the outcome B gave it."""
    a, b = pair
    async with connect(a.url) as on_a:
        created = await on_a.call(*NOT_RESUMABLE)
        assert isinstance(created, CreatedTask)
        # Its one report is written: from here on the handler only sleeps, so the watcher,
        # not a write of the handler, is what finds the task lost after SIGCONT.
        await _shows(on_a, created.task_id, "step (1/1)")
    a.process.send_signal(signal.SIGSTOP)
    try:
        async with connect(b.url) as on_b:
            ended = await on_b.wait_for(created.task_id, *TERMINAL)
    finally:
        a.process.send_signal(signal.SIGCONT)
    assert ended.field("status") == "failed"
    assert "was lost" in ended.field("error")["message"]
    wanted = "this worker lost it (it is failed); cancelling its handler"
    for _ in range(MAX_LOG_POLLS):
        if wanted in _words(a.output()):
            break
        await asyncio.sleep(0.1)
    assert wanted in _words(a.output()), a.output()
    assert "outcome is dropped" not in _words(a.output())  # the cancel stopped it first
    async with connect(b.url) as on_b:
        after = await on_b.get(created.task_id)
    assert (after.field("status"), after.field("error")) == ("failed", ended.field("error"))


WORK = 4.0
"""Seconds of ``slow_compute`` in the resume test: A saves its progress every second."""


async def test_kill_9_of_the_worker_resumes_a_resumable_task_on_b(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    """A saved at least one second of progress (its report shows it); ``kill -9`` of A; B takes
    the task over once A's lease lapsed, runs the handler a second time from the saved
    progress, and completes it, once."""
    a, b = pair
    async with connect(a.url) as on_a:
        created = await on_a.call("slow_compute", {"seconds": WORK})
        assert isinstance(created, CreatedTask)
        await _shows(on_a, created.task_id, "computing (1/")
    killed_at = time.monotonic()
    a.kill()
    async with connect(b.url) as on_b:
        ended = await on_b.wait_for(created.task_id, *TERMINAL)
    took = time.monotonic() - killed_at
    assert ended.field("status") == "completed", ended.field("error")
    found = re.search(r"\(start (\d+), resumed at (\S+) s\)", str(ended.field("result")))
    assert found is not None, ended.field("result")
    assert int(found.group(1)) == 2
    assert 1 <= float(found.group(2)) < WORK  # the variables A saved
    assert _words(b.output()).count("running 'slow_compute' again here (start 2 of 3)") == 1
    print(f"resumed: kill -9 to completed on B in {took:.2f} s (lease {LEASE} s, work {WORK} s)")


async def test_a_question_survives_kill_9_of_the_instance_that_asked(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    """A asks and is killed; B takes the task over (its handler waits on the question A asked,
    the same key); the answer through B completes the task on B."""
    a, b = pair
    async with connect(a.url) as on_a:
        asked = await on_a.call("confirm_delete", {"filename": "kept.txt"})
        waiting = await on_a.wait_for(asked.task_id, "input_required")
    (key,) = waiting.field("inputRequests")
    a.kill()
    wanted = "running 'confirm_delete' again here (start 2 of 3)"
    async with connect(b.url) as on_b:
        for _ in range(MAX_LOG_POLLS):
            await on_b.get(asked.task_id)  # a read through B notices the lapse too
            if wanted in _words(b.output()):
                break
            await asyncio.sleep(0.1)
        assert wanted in _words(b.output()), b.output()
        still = await on_b.get(asked.task_id)
        assert still.field("status") == "input_required"
        assert list(still.field("inputRequests")) == [key]  # not asked again
        await on_b.update(asked.task_id, {key: ACCEPT})
        done = await on_b.wait_for(asked.task_id, *TERMINAL)
    assert done.field("status") == "completed", done.field("error")
    assert "delete of kept.txt: {'action': 'accept'" in str(done.field("result"))


async def _shows(session: Any, task_id: str, prefix: str) -> None:
    """Poll ``tasks/get`` until the status message starts with ``prefix``."""
    for _ in range(MAX_LOG_POLLS):
        view = await session.get(task_id)
        if str(view.field("statusMessage") or "").startswith(prefix):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"task {task_id} never showed {prefix!r}: {view.field('statusMessage')!r}")


MAX_LOG_POLLS = 1200
"""Reads of A's log, 0.1 s apart, before the test gives up on the line (minutes: a safety net,
not a timing claim; A notices within one watch interval of running again)."""


def _words(log: str) -> str:
    """The log with its line wrapping undone (the SDK's handler wraps long records)."""
    return " ".join(log.split())


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


WORKING, WAITING = 3, 3
"""Tasks running and tasks waiting for input when the store restarts."""
OUTAGE = 2.0
"""Seconds the store stays down (the scenario, not a bound on anything)."""


if "redis" in SHARED_BACKENDS:

    async def test_a_cancel_through_b_reaches_as_handler_over_pub_sub(
        request: pytest.FixtureRequest, tmp_path: Path
    ) -> None:
        """A polls once an hour and runs one handler at a time. B cancels A's running task;
        A's next task can only start once that handler was cancelled, which the pub/sub
        notice does without waiting for A's poll."""
        args = backend_args(request, "redis", f"cancel-{tmp_path.name}")
        args += ["--poll-interval", "3600", "--lease", "36000", "--max-running", "1"]
        with example_server(tmp_path, args) as a, example_server(tmp_path, args) as b:
            async with connect(a.url) as on_a, connect(b.url) as on_b:
                first = await on_a.call("slow_compute", {"seconds": 600})
                await _shows(on_a, first.task_id, "computing (1/")
                second = await on_a.call("slow_compute", {"seconds": 0})
                assert (await on_a.get(second.task_id)).field("status") == "working"
                await on_b.cancel(first.task_id)
                for _ in range(MAX_LOG_POLLS):
                    if (await on_a.get(second.task_id)).field("status") == "completed":
                        break
                    await asyncio.sleep(0.1)
                assert (await on_a.get(second.task_id)).field("status") == "completed"
                assert (await on_a.get(first.task_id)).field("status") == "cancelled"
            assert "ignores cancellation" not in a.output()
            assert "Traceback" not in a.output() + b.output()

    async def test_a_stopped_instance_hands_its_resumable_task_over_at_once(
        request: pytest.FixtureRequest, tmp_path: Path
    ) -> None:
        """SIGTERM of A (a rolling deploy) with a resumable task in flight and a lease of an
        hour: A releases the lease as it stops, so B completes the task long before the lease
        would have lapsed (the client gives up after MAX_POLLS polls, 10 minutes)."""
        args = backend_args(request, "redis", f"deploy-{tmp_path.name}")
        args += ["--poll-interval", "0.2", "--lease", "3600"]
        with example_server(tmp_path, args) as a, example_server(tmp_path, args) as b:
            async with connect(a.url) as on_a:
                created = await on_a.call("slow_compute", {"seconds": WORK})
                await _shows(on_a, created.task_id, "computing (1/")
            a.process.terminate()
            assert a.process.wait(timeout=60) == 0, a.output()
            async with connect(b.url) as on_b:
                ended = await on_b.wait_for(created.task_id, *TERMINAL)
            assert ended.field("status") == "completed", ended.field("error")
            assert "(start 2, resumed at" in str(ended.field("result"))
            assert "Traceback" not in a.output() + b.output()

    async def test_a_redis_restart_loses_no_task(tmp_path: Path) -> None:
        """redis-server with AOF (``appendfsync always``) is killed with ``kill -9`` and started
        again while tasks run and others wait for input; the answers are sent while it is down.
        Every task completes: the renewals, the input waits, the answers and the outcome writes
        retried through the outage (the lease, 20 s, is far longer than it)."""
        from servers import redis_server

        redis = redis_server(tmp_path / "redis", "--appendonly", "yes", "--appendfsync", "always")
        redis.start()
        try:
            url = f"redis://{redis.host}:{redis.port}/0"
            args = ["--backend", "redis", "--backend-option", f"redis_url={url}"]
            args += ["--namespace", f"restart-{tmp_path.name}", "--poll-interval", "0.2"]
            with example_server(tmp_path, [*args, "--lease", "20"]) as server:
                await _restart_mid_task(server, redis)
                assert "Traceback" not in server.output(), server.output()
                assert _retried(server.output()), server.output()
        finally:
            redis.stop()

    async def _restart_mid_task(server: RunningServer, redis: Any) -> None:
        async with connect(server.url) as client:
            asking = [
                await client.call("confirm_delete", {"filename": f"f{n}"}) for n in range(WAITING)
            ]
            keys = []
            for task in asking:
                waiting = await client.wait_for(task.task_id, "input_required")
                (key,) = waiting.field("inputRequests")
                keys.append(key)
            # Started last, so that they finish while the store is down (0.5 s into an outage
            # of OUTAGE s): their results are written by the retries.
            running = [
                await client.call("slow_compute", {"seconds": 0.5, "label": str(n)})
                for n in range(WORKING)
            ]
            before = [(await client.get(t.task_id)).field("status") for t in running + asking]
            assert before == ["working"] * WORKING + ["input_required"] * WAITING
            redis.kill(sig=signal.SIGKILL)
            answers = [
                asyncio.ensure_future(client.update(task.task_id, {key: ACCEPT}))
                for task, key in zip(asking, keys, strict=True)
            ]
            await asyncio.sleep(OUTAGE)  # the answers and the results are being retried
            await asyncio.to_thread(redis.start)
            for answer in answers:
                ack = await answer
                assert ack.model_dump(by_alias=True, exclude_none=True)["resultType"] == "complete"
            ended = [await client.wait_for(t.task_id, *TERMINAL) for t in running + asking]
        statuses = [view.field("status") for view in ended]
        assert statuses == ["completed"] * (WORKING + WAITING), [
            (view.field("status"), view.field("error")) for view in ended
        ]
        texts = [str(view.field("result")) for view in ended]
        assert all("isError': True" not in text for text in texts), texts
        assert all("delete of f" in text for text in texts[WORKING:]), texts

    def _retried(log: str) -> bool:
        """Whether a result write met the outage and was retried (the worker says so)."""
        return "storing its outcome: storage failed, retrying" in " ".join(log.split())
