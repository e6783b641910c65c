"""What a client's life allows besides single calls (KV-CANCEL-1, KV-CLOSE-1/2, KV-LIST-5,
KV-CLEAN-1): cancelling a call, closing and reopening, listing while others write, cleaning
up after every kind of write.

These are the operations that live in how a backend is built rather than in any one method:
a lock taken around a round trip, a connection with a reply still unread, a request left
running in a thread pool, a buffer flushed on close, a listing that pages by position, an
expiry index that one write path forgets. Each test drives one of them deterministically.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.lowlevel
import pytest

from conformance import time_limits
from conformance.contract.base import (
    OpenClient,
    Snapshot,
    listed_keys,
    requires_manual_clock,
    requires_shared,
    run_concurrently,
    stored,
)
from conformance.harness import (
    BackendFactory,
    ManualClock,
    fresh_namespace,
    open_target,
)
from pmcp_tasks.backend import BackendCapabilities, StorageBackend
from pmcp_tasks.errors import StorageError

CANCEL_POINTS = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48)
"""Event-loop steps after which the kit cancels a call: before it starts, then densely while
it sends and sparser while it waits for its reply, up to after the reply for calls that take
that many steps (a request through a thread pool or HTTP takes dozens)."""

Operation = Callable[[StorageBackend, str], Awaitable[object]]
T = TypeVar("T")

OPERATIONS: dict[str, tuple[bool, Operation, tuple[Snapshot | None, ...]]] = {
    # name: (key holds b"old" v1 before?, the call, the states the key may be in afterwards)
    "put": (True, lambda b, k: b.put(k, b"new"), ((b"old", 1, None), (b"new", 2, None))),
    "put_if_version": (
        True,
        lambda b, k: b.put_if_version(k, b"new", 1),
        ((b"old", 1, None), (b"new", 2, None)),
    ),
    "put_if_version create": (
        False,
        lambda b, k: b.put_if_version(k, b"new", 0),
        (None, (b"new", 1, None)),
    ),
    "delete": (True, lambda b, k: b.delete(k), ((b"old", 1, None), None)),
    "get": (True, lambda b, k: b.get(k), ((b"old", 1, None),)),
    "list_by_prefix": (
        True,
        lambda b, k: b.list_by_prefix(k.split(":")[0] + ":", limit=2),
        ((b"old", 1, None),),
    ),
    "cleanup_expired": (True, lambda b, k: b.cleanup_expired(), ((b"old", 1, None),)),
}


async def cancel_after(steps: int, call: Awaitable[object]) -> bool:
    """Run ``call`` for ``steps`` event-loop steps, then cancel it; whether it had finished.

    A call may still end in its own way once cancelled (a client library that completes the
    request it had sent, or reports it as an error): the contract judges what the call leaves
    behind, not how it ended.
    """
    task = asyncio.ensure_future(call)
    for _ in range(steps):
        if task.done():
            break
        await asyncio.sleep(0)  # one event-loop step, not a wait for time to pass
    finished = task.done()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, StorageError):
        await task
    return finished


async def _cancel_and_check(
    backend: StorageBackend,
    steps: int,
    what: str,
    existed: bool,
    call: Operation,
    allowed: tuple[Snapshot | None, ...],
) -> tuple[int, bool]:
    """One cancellation and what must hold after it; the version written after it, and
    whether the call had finished before it was cancelled."""
    key, other = f"p:{steps:02d}", f"q:{steps:02d}"
    if existed:
        await backend.put(key, b"old")
    await backend.put(other, f"other-{steps}".encode())
    finished = await cancel_after(steps, call(backend, key))
    state = await stored(backend, key)
    assert state in allowed, (
        f"KV-CANCEL-1: after {what}, get({key!r}) returned {state!r}; the contract allows the "
        f"state before or after the call: {' or '.join(map(repr, allowed))}"
    )
    mine = await stored(backend, other)
    assert mine == (f"other-{steps}".encode(), 1, None), (
        f"KV-CANCEL-1: after {what}, get({other!r}) returned {mine!r}: another call's answer "
        "(a reply left unread on a connection reaches the next caller)"
    )
    version = await backend.put(key, b"next")
    assert version == (1 if state is None else state[1] + 1), (
        f"KV-CANCEL-1: put({key!r}) after {what} returned version {version}; the key held {state!r}"
    )
    return version, finished


async def _within(request: pytest.FixtureRequest, what: str, work: Awaitable[T]) -> T:
    """``await work`` within a quarter of the kit's test timeout (at most 60 s), else a
    KV-CANCEL-1 failure: the only thing that keeps a healthy backend's few calls waiting that
    long right after a cancellation is a lock or connection the cancelled call never gave back."""
    total = time_limits.seconds(request.config)
    if total <= 0:
        return await work
    limit = min(60.0, total / 4)
    with anyio.move_on_after(limit):
        return await work
    raise AssertionError(
        f"KV-CANCEL-1: {what} did not return within {limit:g} s; the cancelled call left a "
        "lock, a connection or a queue slot held"
    )


def _open_fds() -> int | None:
    """How many file descriptors this process has open (Linux), else None."""
    fds = Path("/proc/self/fd")
    return len(os.listdir(fds)) if fds.is_dir() else None


async def _page_while_writing(
    backend: StorageBackend,
    writer: StorageBackend,
    limit: int,
    churn: list[str],
    held: dict[str, set[bytes]],
    present: set[str],
) -> list[tuple[str, bytes]]:
    """Page through ``p:`` by ``limit`` while ``writer`` deletes and recreates ``churn`` keys,
    one write per event-loop step: every other one just behind the keys paged so far (where a
    backend that pages by position shifts its place), the others anywhere. ``held`` gets every
    value written, ``present`` the churn keys that exist now."""
    visited: list[tuple[str, bytes]] = []
    done = anyio.Event()
    chooser = random.Random(limit)

    async def page_through() -> None:
        after: str | None = None
        try:
            while True:
                page = await backend.list_by_prefix("p:", after=after, limit=limit)
                visited.extend((key, record.data) for key, record in page)
                if len(page) < limit or len(visited) > 4 * len(churn) + 100:
                    return
                after = page[-1][0]
        finally:
            done.set()

    async def churn_writes() -> None:
        step = 0
        while not done.is_set():
            step += 1
            behind = [key for key in churn if visited and key < visited[-1][0]]
            key = behind[-1] if behind and step % 2 else chooser.choice(churn)
            if key in present:
                present.discard(key)
                await writer.delete(key)
            else:
                present.add(key)
                data = f"churn {limit}.{step}".encode()
                held[key].add(data)
                await writer.put(key, data)
            await anyio.lowlevel.checkpoint()

    await run_concurrently([page_through, churn_writes])
    return visited


def _check_paged(
    limit: int, visited: list[tuple[str, bytes]], stable: list[str], held: dict[str, set[bytes]]
) -> None:
    """Each key visited once, in order; every ``stable`` key among them with its own data, and
    every other with data it really held."""
    keys = [key for key, _ in visited]
    assert keys == sorted(set(keys)), (
        f"KV-LIST-5: paging by {limit} while another client wrote visited keys out of "
        f"order or twice: {keys!r}"
    )
    missing = [key for key in stable if key not in keys]
    assert not missing, (
        f"KV-LIST-5: paging by {limit} while another client wrote skipped {missing!r}, "
        "which stayed live and unchanged throughout"
    )
    for key, data in visited:
        ok = data == b"stable " + key.encode() if key in stable else data in held[key]
        assert ok, f"KV-LIST-5: paging by {limit} listed {key!r} with {data!r}"


async def _write_records_that_expire(
    b: StorageBackend, clock: ManualClock, soon: float, later: float
) -> list[str]:
    """Every way a record can come to expire at ``soon``: the keys written."""
    start = clock()
    dead: list[str] = []

    async def expiring(key: str, write: Callable[[], Awaitable[object]]) -> None:
        await write()
        dead.append(key)

    await expiring("p:put-new", partial(b.put, "p:put-new", b"x", expires_at=soon))
    await b.put("p:put-over", b"x")
    await expiring("p:put-over", partial(b.put, "p:put-over", b"y", expires_at=soon))
    await b.put("p:put-earlier", b"x", expires_at=later)
    await expiring("p:put-earlier", partial(b.put, "p:put-earlier", b"y", expires_at=soon))
    await expiring("p:cas-new", partial(b.put_if_version, "p:cas-new", b"x", 0, expires_at=soon))
    await b.put("p:cas-over", b"x")
    await expiring("p:cas-over", partial(b.put_if_version, "p:cas-over", b"y", 1, expires_at=soon))
    await b.put("p:after-delete", b"x", expires_at=later)
    await b.delete("p:after-delete")
    await expiring("p:after-delete", partial(b.put, "p:after-delete", b"y", expires_at=soon))
    await b.put("p:over-dead", b"x", expires_at=start + 1.0)
    await b.put("p:cas-over-dead", b"x", expires_at=start + 1.0)
    clock.set(start + 2.0)
    await expiring("p:over-dead", partial(b.put, "p:over-dead", b"y", expires_at=soon))
    await expiring(
        "p:cas-over-dead",
        partial(b.put_if_version, "p:cas-over-dead", b"y", 0, expires_at=soon),
    )
    return dead


async def _write_records_that_stop_expiring(
    b: StorageBackend, soon: float, later: float
) -> dict[str, Snapshot]:
    """Every way a record expiring at ``soon`` can come to live on: what each then holds."""
    await b.put("p:put-cleared", b"x", expires_at=soon)
    await b.put("p:put-cleared", b"y")
    await b.put("p:cas-cleared", b"x", expires_at=soon)
    await b.put_if_version("p:cas-cleared", b"y", 1)
    await b.put("p:put-later", b"x", expires_at=soon)
    await b.put("p:put-later", b"y", expires_at=later)
    return {
        "p:put-cleared": (b"y", 2, None),
        "p:cas-cleared": (b"y", 2, None),
        "p:put-later": (b"y", 2, later),
    }


class LifecycleContract:
    """Cancellation, closing and reopening, listing under writes, cleanup after each write."""

    pytestmark = pytest.mark.anyio

    @pytest.mark.pmcp_clause("KV-CANCEL-1")
    @pytest.mark.parametrize("operation", list(OPERATIONS))
    async def test_a_cancelled_call_leaves_records_whole_and_the_backend_usable(
        self, backend: StorageBackend, request: pytest.FixtureRequest, operation: str
    ) -> None:
        """Cancelled at every event-loop step of its life: the key holds the state before or
        after the call, never a mix; calls after it get their own answers (a connection with
        the cancelled call's reply still unread would hand it to the next one); and once
        ``CancelledError`` has reached the caller, the call never lands later."""
        existed, call, allowed = OPERATIONS[operation]
        final: dict[str, Snapshot] = {}
        finished_in_a_row = 0
        for steps in CANCEL_POINTS:
            what = f"{operation} cancelled after {steps} event-loop steps"
            step = _cancel_and_check(backend, steps, what, existed, call, allowed)
            version, finished = await _within(request, f"the calls after {what}", step)
            final[f"p:{steps:02d}"] = (b"next", version, None)
            finished_in_a_row = finished_in_a_row + 1 if finished else 0
            if finished_in_a_row == 3:
                break  # the call ends within these steps; later cancels change nothing
        for key, want in final.items():
            got = await stored(backend, key)
            assert got == want, (
                f"KV-CANCEL-1: {key!r} holds {got!r}, not the {want!r} written after the "
                f"cancelled {operation}: the cancelled call landed after the caller was told it "
                "was cancelled"
            )

    @pytest.mark.pmcp_clause("KV-CLOSE-2")
    async def test_a_client_opened_after_every_client_closed_sees_every_acknowledged_write(
        self,
        backend_factory: BackendFactory,
        capabilities: BackendCapabilities,
        clock: ManualClock,
    ) -> None:
        requires_shared(capabilities, "KV-CLOSE-2")
        namespace = fresh_namespace("reopen")
        later = clock() + 3600.0
        writers = [await open_target(backend_factory, namespace=namespace, clock=clock)]
        writers.append(await open_target(backend_factory, namespace=namespace, clock=clock))
        want: dict[str, Snapshot | None] = {}
        for index, client in enumerate(w.backend for w in writers):
            await client.put(f"p:put{index}", b"put", expires_at=later)
            await client.put_if_version(f"p:cas{index}", b"created", 0)
            await client.put_if_version(f"p:cas{index}", b"updated", 1)
            await client.put(f"p:gone{index}", b"x")
            await client.delete(f"p:gone{index}")
            want |= {
                f"p:put{index}": (b"put", 1, later),
                f"p:cas{index}": (b"updated", 2, None),
                f"p:gone{index}": None,
            }
        for writer in writers:
            await writer.backend.aclose()
        reader = await open_target(backend_factory, namespace=namespace, clock=clock)
        try:
            for key, record in want.items():
                got = await stored(reader.backend, key)
                assert got == record, (
                    f"KV-CLOSE-2: a client opened after both writers closed reads {key!r} as "
                    f"{got!r}; the writers were told {record!r}"
                )
            listed = await listed_keys(reader.backend, "p:")
            live = sorted(key for key, record in want.items() if record is not None)
            assert listed == live, f"KV-CLOSE-2: the reopened client lists {listed!r}"
        finally:
            await reader.dispose()

    @pytest.mark.pmcp_clause("KV-CLOSE-1")
    async def test_aclose_releases_file_descriptors_and_tasks(
        self, backend_factory: BackendFactory, clock: ManualClock
    ) -> None:
        """Open, use and close a client again and again: nothing it opened outlives it."""
        namespace = fresh_namespace("close")

        async def cycle() -> None:
            target = await open_target(backend_factory, namespace=namespace, clock=clock)
            client = target.backend
            await client.put("p:k", b"x")
            await client.get("p:k")
            await client.list_by_prefix("p:")
            await client.delete("p:k")
            await client.aclose()

        await cycle()  # the first client may create what every later one shares
        await anyio.lowlevel.checkpoint()
        fds, tasks = _open_fds(), asyncio.all_tasks()
        for _ in range(5):
            await cycle()
        await anyio.lowlevel.checkpoint()
        left = [
            task
            for task in asyncio.all_tasks() - tasks
            if task is not asyncio.current_task() and not task.done()
        ]
        assert not left, (
            f"KV-CLOSE-1: 5 clients opened, used and closed left {len(left)} asyncio tasks "
            f"running: {left[:3]!r}"
        )
        now = _open_fds()
        if fds is not None and now is not None:
            assert now <= fds, (
                f"KV-CLOSE-1: 5 clients opened, used and closed left {now - fds} more file "
                f"descriptors open ({fds} before, {now} after)"
            )
        cleanup = await open_target(backend_factory, namespace=namespace, clock=clock)
        await cleanup.dispose()

    @pytest.mark.pmcp_clause("KV-LIST-5")
    async def test_paging_while_another_client_writes_visits_every_untouched_record_once(
        self,
        backend: StorageBackend,
        capabilities: BackendCapabilities,
        open_client: OpenClient,
    ) -> None:
        """Records live and unchanged throughout are visited exactly once, in order; records
        written meanwhile may or may not be, but only with data they really held."""
        writer = await open_client() if capabilities.shared_in_process else backend
        stable = [f"p:{index:03d}" for index in range(0, 60, 2)]
        churn = [f"p:{index:03d}" for index in range(1, 60, 2)]
        for key in stable:
            await backend.put(key, b"stable " + key.encode())
        held: dict[str, set[bytes]] = {key: {b"churn 0"} for key in churn}
        present = set(churn[::2])
        for key in present:
            await writer.put(key, b"churn 0")
        for limit in (1, 3, 7):
            visited = await _page_while_writing(backend, writer, limit, churn, held, present)
            _check_paged(limit, visited, stable, held)

    @pytest.mark.pmcp_clause("KV-CLEAN-1")
    async def test_cleanup_after_every_kind_of_write(
        self,
        backend: StorageBackend,
        capabilities: BackendCapabilities,
        clock: ManualClock,
        open_client: OpenClient,
    ) -> None:
        """Each way a record can come to expire (or stop expiring) is seen by clean-up."""
        requires_manual_clock(capabilities, "KV-CLEAN-1 (after every kind of write)")
        start = clock()
        soon, later = start + 60.0, start + 3600.0
        b = backend
        dead = await _write_records_that_expire(b, clock, soon, later)
        live = await _write_records_that_stop_expiring(b, soon, later)
        clock.set(math.nextafter(soon, math.inf))
        cleaner = await open_client() if capabilities.shared_in_process else backend
        removed = await cleaner.cleanup_expired()
        assert removed == len(dead), (
            f"KV-CLEAN-1: cleanup_expired() removed {removed}; {len(dead)} records had expired: "
            f"{sorted(dead)!r}"
        )
        for key in dead:
            got = await stored(b, key)
            assert got is None, f"KV-CLEAN-1: {key!r} reads {got!r} after it was cleaned up"
        for key, want in live.items():
            got = await stored(b, key)
            assert got == want, f"KV-CLEAN-1: clean-up changed {key!r}: {got!r}, not {want!r}"
        again = await cleaner.cleanup_expired()
        assert again == 0, f"KV-CLEAN-1: a second cleanup_expired() removed {again} more"
        listed = await listed_keys(b, "p:")
        assert listed == sorted(live), f"KV-CLEAN-1: after clean-up the listing is {listed!r}"
