"""The domain on top of the backend under test (DOM-*): GenericTaskStore's rules still hold.

A backend can pass every KV test one call at a time and still break the domain where it leans
on the contract hardest: CAS retries under contention (variables merge, per-owner cap), listing
order (pagination), and expiry on the injected clock (TTL).
"""

from __future__ import annotations

import time
from functools import partial

import pytest

from conformance.contract.base import Timeline, run_concurrently
from conformance.harness import ManualClock
from pmcp_tasks.backend import BackendCapabilities, StorageBackend
from pmcp_tasks.config import StoreConfig
from pmcp_tasks.errors import (
    InvalidCursor,
    InvalidTransition,
    TaskLimitExceeded,
    TaskNotFound,
    TtlTooLarge,
)
from pmcp_tasks.status import TaskStatus
from pmcp_tasks.store import GenericTaskStore


def make_store(
    backend: StorageBackend,
    clock: ManualClock,
    capabilities: BackendCapabilities,
    *,
    cap: int | None = 100,
) -> GenericTaskStore:
    """A store on the backend and the kit's clock (cap slots are tiny: any record size fits)."""
    config = StoreConfig(max_tasks_per_owner=cap, poll_interval=None)
    return GenericTaskStore(
        backend, config, clock=clock if capabilities.injectable_clock else time.time
    )


class DomainContract:
    """GenericTaskStore over the backend under test."""

    pytestmark = pytest.mark.anyio

    @pytest.fixture
    def task_store(
        self, backend: StorageBackend, clock: ManualClock, capabilities: BackendCapabilities
    ) -> GenericTaskStore:
        return make_store(backend, clock, capabilities)

    @pytest.mark.pmcp_clause("DOM-LIFE-1")
    async def test_lifecycle_follows_the_mcp_state_machine(
        self, task_store: GenericTaskStore
    ) -> None:
        task = await task_store.create("alice")
        assert task.status is TaskStatus.WORKING
        tid = task.task_id
        assert (await task_store.require_input("alice", tid, "need a file")).status is (
            TaskStatus.INPUT_REQUIRED
        )
        with pytest.raises(InvalidTransition):
            await task_store.require_input("alice", tid)
        assert (await task_store.resume("alice", tid)).status is TaskStatus.WORKING
        with pytest.raises(InvalidTransition):
            await task_store.resume("alice", tid)
        done = await task_store.complete("alice", tid, {"answer": 42})
        assert done.status is TaskStatus.COMPLETED
        stored = await task_store.get("alice", tid)
        assert (stored.status, stored.result) == (TaskStatus.COMPLETED, {"answer": 42})
        for final_move in (task_store.cancel, task_store.resume, task_store.require_input):
            with pytest.raises(InvalidTransition):
                await final_move("alice", tid)
        assert (await task_store.get("alice", tid)).status is TaskStatus.COMPLETED

    @pytest.mark.pmcp_clause("DOM-LIFE-1")
    async def test_cancel_and_fail_are_final(self, task_store: GenericTaskStore) -> None:
        cancelled = await task_store.create("alice")
        failed = await task_store.create("alice")
        await task_store.cancel("alice", cancelled.task_id)
        await task_store.fail("alice", failed.task_id, "boom")
        for task_id in (cancelled.task_id, failed.task_id):
            with pytest.raises(InvalidTransition):
                await task_store.complete("alice", task_id, None)
        assert (await task_store.get("alice", failed.task_id)).status is TaskStatus.FAILED

    @pytest.mark.pmcp_clause("DOM-OWNER-1")
    async def test_another_owners_task_answers_like_a_missing_one(
        self, task_store: GenericTaskStore
    ) -> None:
        task = await task_store.create("alice", variables={"secret": "s"})
        missing = await task_store.create("carol")
        await task_store.cancel("carol", missing.task_id)
        for attempt in (
            partial(task_store.get, "bob", task.task_id),
            partial(task_store.set_variables, "bob", task.task_id, {"secret": "stolen"}),
            partial(task_store.cancel, "bob", task.task_id),
            partial(task_store.complete, "bob", task.task_id, None),
        ):
            with pytest.raises(TaskNotFound) as caught:
                await attempt()
            assert str(caught.value) == str(TaskNotFound(task.task_id))
            assert "alice" not in str(caught.value)
        stored = await task_store.get("alice", task.task_id)
        assert (stored.status, stored.variables) == (TaskStatus.WORKING, {"secret": "s"})

    @pytest.mark.pmcp_clause("DOM-OWNER-1")
    async def test_owners_sharing_a_prefix_are_isolated(self, task_store: GenericTaskStore) -> None:
        owners = ["a", "a:b", "a%3Ab", "ab", "a*", "{a}"]
        created = {owner: (await task_store.create(owner)).task_id for owner in owners}
        for owner in owners:
            tasks, cursor = await task_store.list(owner)
            assert [t.task_id for t in tasks] == [created[owner]], owner
            assert cursor is None

    @pytest.mark.pmcp_clause("DOM-VAR-1")
    async def test_variables_merge_and_none_deletes(self, task_store: GenericTaskStore) -> None:
        task = await task_store.create("alice", variables={"a": 1, "b": {"x": [1, 2]}})
        await task_store.set_variables("alice", task.task_id, {"b": None, "c": "three"})
        stored = await task_store.get("alice", task.task_id)
        assert stored.variables == {"a": 1, "c": "three"}

    @pytest.mark.pmcp_clause("DOM-VAR-1", "KV-CAS-5")
    async def test_concurrent_set_variables_lose_no_update(
        self, task_store: GenericTaskStore
    ) -> None:
        task = await task_store.create("alice")
        writers = 12
        results = await run_concurrently(
            [
                partial(task_store.set_variables, "alice", task.task_id, {f"v{i}": i})
                for i in range(writers)
            ]
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, errors
        stored = await task_store.get("alice", task.task_id)
        assert stored.variables == {f"v{i}": i for i in range(writers)}

    @pytest.mark.pmcp_clause("DOM-TTL-1")
    async def test_expired_task_is_not_found(
        self, task_store: GenericTaskStore, timeline: Timeline
    ) -> None:
        ttl = timeline.soon() - timeline.now()
        task = await task_store.create("alice", ttl=ttl)
        keeper = await task_store.create("alice", ttl=3600)
        assert task.expires_at is not None
        await timeline.pass_expiry(task.expires_at)
        with pytest.raises(TaskNotFound):
            await task_store.get("alice", task.task_id)
        with pytest.raises(TaskNotFound):
            await task_store.set_variables("alice", task.task_id, {"late": True})
        tasks, _ = await task_store.list("alice")
        assert [t.task_id for t in tasks] == [keeper.task_id]

    @pytest.mark.pmcp_clause("DOM-TTL-1")
    async def test_ttl_over_the_maximum_is_rejected(self, task_store: GenericTaskStore) -> None:
        with pytest.raises(TtlTooLarge):
            await task_store.create("alice", ttl=task_store.config.max_ttl + 1)
        tasks, _ = await task_store.list("alice")
        assert tasks == []

    @pytest.mark.pmcp_clause("DOM-PAGE-1", "KV-LIST-4", "KV-LIST-5")
    async def test_paging_is_oldest_first_and_stable_while_creating(
        self, task_store: GenericTaskStore
    ) -> None:
        original = [(await task_store.create("alice")).task_id for _ in range(7)]
        seen: list[str] = []
        cursor: str | None = None
        added: list[str] = []
        for _ in range(20):
            tasks, cursor = await task_store.list("alice", cursor=cursor, limit=3)
            seen.extend(t.task_id for t in tasks)
            if cursor is None:
                break
            added.append((await task_store.create("alice")).task_id)
        # Ids of one millisecond sort by chance, so a task created meanwhile may land before
        # the cursor: only the tasks that existed when paging began must all be listed.
        assert [t for t in seen if t in original] == sorted(original), "paging skipped a task"
        assert len(seen) == len(set(seen)), "paging repeated a task"
        assert seen == sorted(seen), "paging reordered tasks"
        assert set(seen) <= set(original + added)

    @pytest.mark.pmcp_clause("DOM-PAGE-1")
    async def test_foreign_cursor_is_rejected(self, task_store: GenericTaskStore) -> None:
        for _ in range(3):
            await task_store.create("alice")
        _, cursor = await task_store.list("alice", limit=1)
        assert cursor is not None
        with pytest.raises(InvalidCursor):
            await task_store.list("bob", cursor=cursor)
        with pytest.raises(InvalidCursor):
            await task_store.list("alice", cursor="not-a-cursor")

    @pytest.mark.pmcp_clause("DOM-CAP-1", "KV-CAS-5")
    async def test_concurrent_creates_never_overshoot_the_cap(
        self, backend: StorageBackend, clock: ManualClock, capabilities: BackendCapabilities
    ) -> None:
        store = make_store(backend, clock, capabilities, cap=4)
        results = await run_concurrently([partial(store.create, "alice") for _ in range(9)])
        created = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, TaskLimitExceeded)]
        assert (len(created), len(refused)) == (4, 5), results
        tasks, _ = await store.list("alice")
        assert sorted(t.task_id for t in tasks) == sorted(t.task_id for t in created)
        assert (await store.create("bob")).owner == "bob"
