"""``GenericTaskStore``: all task logic, written once over any :class:`StorageBackend`.

Every mutation is read -> validate -> ``put_if_version``. On a version conflict the store reads
again and validates again (the task may have become final meanwhile), after a short jittered
pause, at most ``StoreConfig.cas_attempts`` times, then gives up with
``ConcurrentModification``. Backends stay dumb: no owner, status or limit ever reaches them
except as opaque bytes and keys built by :mod:`pmcp_tasks.keys`.

Writes go through the lost-reply protocol of :mod:`pmcp_tasks.writes`; the per-owner cap is
:mod:`pmcp_tasks.cap` (a create claims one of the owner's slot records, then writes its
task). This module keeps the lifecycle: what each call may change, and when.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from typing import Any

from pmcp_tasks.backend import Clock, StorageBackend, VersionedRecord, is_live
from pmcp_tasks.cap import SLOT_RECORD_BYTES, LiveTask, OwnerCap
from pmcp_tasks.config import StoreConfig, shown
from pmcp_tasks.cursor import decode_cursor, encode_cursor
from pmcp_tasks.errors import (
    INTERNAL_ERROR,
    ConcurrentModification,
    InvalidTransition,
    LeaseLost,
    RecordNotFound,
    ResultUnavailable,
    StorageError,
    StorageFailure,
    TaskNotFound,
    TaskValidationError,
    VersionConflict,
)
from pmcp_tasks.ids import TaskIdGenerator, is_task_id
from pmcp_tasks.keys import partition_prefix, task_key
from pmcp_tasks.paging import walk
from pmcp_tasks.record import MAX_MS, TaskRecord, canonical_json, iso_ms
from pmcp_tasks.status import TaskStatus, check_transition, parse_status
from pmcp_tasks.timebase import Timebase
from pmcp_tasks.validation import (
    JsonValue,
    check_changes,
    check_input_keys,
    check_input_object,
    check_input_requests,
    check_input_value,
    check_json,
    check_jsonrpc_error,
    check_lease,
    check_owner,
    check_task_id,
    check_ttl,
    check_worker,
    merge_variables,
)
from pmcp_tasks.writes import OutcomeUnknown, backoff, cas, failure

logger = logging.getLogger("pmcp_tasks")


class Unset(enum.Enum):
    """Marks an argument the caller did not pass (``None`` means something for them)."""

    UNSET = enum.auto()


UNSET = Unset.UNSET


class GenericTaskStore:
    """MCP tasks over a :class:`StorageBackend`; safe to share across asyncio tasks.

    Every method takes the caller's ``owner`` (e.g. the authenticated user id) and only ever
    touches that owner's tasks: another owner's task answers exactly like a missing one.
    """

    def __init__(
        self,
        backend: StorageBackend,
        config: StoreConfig | None = None,
        clock: Clock = time.time,
        *,
        check_skew: bool | None = None,
    ) -> None:
        """``clock`` is the process's clock (a test passes one it moves by hand).

        Where the backend can tell the storage server's time, the store measures how far
        ``clock`` is off and runs on the server's clock (:mod:`pmcp_tasks.timebase`):
        ``check_skew`` ``None`` does so for the real clock, :func:`time.time`, only, since an
        injected clock is a test's time machine; ``True`` or ``False`` decide it outright.
        """
        if config is None:
            config = StoreConfig()
        if not isinstance(config, StoreConfig):
            raise ValueError(f"config must be a StoreConfig, not {type(config).__name__}")
        capabilities = getattr(backend, "capabilities", None)
        if capabilities is None or not callable(getattr(backend, "put_if_version", None)):
            raise ValueError("backend must implement pmcp_tasks.StorageBackend")
        if not callable(clock):
            raise ValueError("clock must be a callable returning epoch seconds")
        if check_skew is not None and not isinstance(check_skew, bool):
            raise ValueError(f"check_skew must be True, False or None, not {shown(check_skew)}")
        limit = capabilities.max_record_bytes
        if (
            limit is not None
            and config.max_tasks_per_owner is not None
            and limit < SLOT_RECORD_BYTES
        ):
            raise ValueError(
                f"this backend stores at most {limit} bytes per record, but a task slot of the "
                f"per-owner cap takes up to {SLOT_RECORD_BYTES}; use a backend that holds more "
                "or max_tasks_per_owner=None"
            )
        self.backend = backend
        self.config = config
        self._time = Timebase(clock, backend, config.max_clock_skew, check_skew)
        self._clock = self._time.now
        self._new_id = TaskIdGenerator(self._time.now)
        self._cap = (
            None
            if config.max_tasks_per_owner is None
            else OwnerCap(backend, config, self._time, self._live_tasks)
        )

    # ----------------------------------------------------------------------------- reads

    async def get(self, owner: str, task_id: str) -> TaskRecord:
        """The task, or ``TaskNotFound`` when it is missing, expired or someone else's."""
        owner = check_owner(owner, self.config)
        task_id = check_task_id(task_id)
        record, _ = await self._read(owner, task_id)
        return record

    async def list(
        self, owner: str, *, cursor: str | None = None, limit: int | None = None
    ) -> tuple[list[TaskRecord], str | None]:
        """One page of ``owner``'s live tasks, oldest first, and the cursor of the next page.

        The cursor is ``None`` on the last page. Corrupted records are logged and skipped so
        that one bad record does not hide all the others.
        """
        owner = check_owner(owner, self.config)
        page_size = self._page_size(limit)
        prefix = partition_prefix(owner)
        after: str | None = None
        if cursor is not None:
            after = prefix + decode_cursor(prefix, cursor)
        await self._time.check()
        found: list[TaskRecord] = []
        while len(found) <= page_size:
            want = page_size + 1 - len(found)
            try:
                page = await self.backend.list_by_prefix(prefix, after=after, limit=want)
            except StorageError as exc:
                raise failure("listing tasks", exc) from exc
            now = self._clock()
            for key, stored in page:
                after = key
                record = self._listed(owner, key[len(prefix) :], stored, now)
                if record is not None:
                    found.append(record)
            if len(page) < want:
                break
        tasks = found[:page_size]
        next_cursor = encode_cursor(prefix, tasks[-1].task_id) if len(found) > page_size else None
        return tasks, next_cursor

    async def get_result(self, owner: str, task_id: str) -> JsonValue:
        """The result stored by ``complete``/``set_result``/``fail``.

        ``ResultUnavailable`` while the task is not final, and for a final task without one.
        """
        record = await self.get(owner, task_id)
        if not record.status.is_terminal:
            raise ResultUnavailable(
                f"task {task_id!r} is still {record.status.value}; poll it until it is "
                "completed, failed or cancelled, then ask for its result"
            )
        if record.has_result:
            return record.result
        reason = f": {record.status_message}" if record.status_message else ""
        raise ResultUnavailable(f"task {task_id!r} {record.status.value} without a result{reason}")

    # ------------------------------------------------------------------------- mutations

    async def create(
        self,
        owner: str,
        *,
        ttl: float | Unset | None = UNSET,
        variables: Mapping[str, JsonValue] | None = None,
        status_message: str | None = None,
        worker: str | None = None,
        lease: float | None = None,
    ) -> TaskRecord:
        """A new ``working`` task. ``ttl`` in seconds (default ``config.default_ttl``).

        ``worker`` and ``lease`` (seconds) record which process runs the task's handler, so
        that when it dies the task is ended ``failed`` once the lease runs out
        (:meth:`get_checking_lease`) instead of staying ``working`` until it expires.
        Both or neither.
        """
        record = self._new_record(owner, ttl, variables, status_message, worker, lease)
        await self._time.check()
        record = replace(record, **self._stamped(record))
        data = self._encode(record)
        owner, task_id, expires_at = record.owner, record.task_id, record.expires_at
        claim = None if self._cap is None else await self._cap.claim(owner, task_id, expires_at)
        stored_expiry = self._time.stored_expiry(expires_at)
        try:
            await cas(self.backend, self.config, task_key(owner, task_id), data, 0, stored_expiry)
        except OutcomeUnknown as exc:
            # The task may exist: keep its slot (the cap's rebuild frees it if it does not).
            raise failure(f"creating task {task_id!r}", exc.cause, unknown=True) from exc.cause
        except Exception as exc:
            if claim is not None and self._cap is not None:
                await self._cap.release(claim)
            if isinstance(exc, StorageError):
                raise failure(f"creating task {task_id!r}", exc) from exc
            raise
        return record

    def _new_record(
        self,
        owner: str,
        ttl: float | Unset | None,
        variables: Mapping[str, JsonValue] | None,
        status_message: str | None,
        worker: str | None,
        lease: float | None,
    ) -> TaskRecord:
        """The checked arguments of :meth:`create` as a record, stamped later by
        :meth:`_stamped` (the clock is read only once the skew check has passed)."""
        config = self.config
        owner = check_owner(owner, config)
        if (worker is None) != (lease is None):
            raise TaskValidationError(
                f"pass worker and lease together, got worker={shown(worker)}, lease={shown(lease)}"
            )
        lease_ms: int | None = None
        if worker is not None:
            worker = check_worker(worker, config)
            lease_ms = max(1, round(check_lease(lease) * 1000))
        ttl_seconds = config.default_ttl if ttl is UNSET else check_ttl(ttl, config)
        changes = {} if variables is None else check_changes(variables, config)
        initial = merge_variables({}, changes)
        self._check_variables_size(initial)
        self._check_message(status_message)
        return TaskRecord(
            task_id="",
            owner=owner,
            status=TaskStatus.WORKING,
            created_at_ms=0,
            updated_at_ms=0,
            ttl_ms=None if ttl_seconds is None else max(1, round(ttl_seconds * 1000)),
            status_message=status_message,
            poll_interval_ms=(
                None if config.poll_interval is None else round(config.poll_interval * 1000)
            ),
            variables=initial,
            worker=worker,
            lease_expires_ms=lease_ms,
        )

    def _stamped(self, record: TaskRecord) -> dict[str, Any]:
        """The id and times of a new record; its lease, a duration until now, becomes a time."""
        now_ms = self._now_ms()
        lease_ms = record.lease_expires_ms
        return {
            "task_id": self._new_id(),
            "created_at_ms": now_ms,
            "updated_at_ms": now_ms,
            "lease_expires_ms": None if lease_ms is None else now_ms + lease_ms,
        }

    async def update_status(
        self,
        owner: str,
        task_id: str,
        status: TaskStatus | str,
        *,
        status_message: str | None = None,
        worker: str | None = None,
    ) -> TaskRecord:
        """Move the task to ``status``; ``status_message`` replaces the previous one.

        With ``worker``, only while that worker holds the task's lease (``LeaseLost``).
        """
        target = parse_status(status)
        self._check_message(status_message)

        def change(record: TaskRecord, now_ms: int) -> TaskRecord:
            check_transition(record.task_id, record.status, target)
            return _replace(
                record, now_ms, status=target, status_message=status_message, **_ended(target)
            )

        return await self._mutate(owner, task_id, change, holder=worker)

    async def set_variables(
        self, owner: str, task_id: str, changes: Mapping[str, JsonValue]
    ) -> TaskRecord:
        """Merge ``changes`` into the task's variables; a ``None`` value deletes that name."""
        checked = check_changes(changes, self.config)

        def change(record: TaskRecord, now_ms: int) -> TaskRecord:
            _check_not_final(record, "its variables can no longer change")
            merged = merge_variables(record.variables, checked)
            self._check_variables_size(merged)
            return _replace(record, now_ms, variables=merged)

        return await self._mutate(owner, task_id, change)

    async def set_status_message(
        self, owner: str, task_id: str, status_message: str | None, *, worker: str | None = None
    ) -> TaskRecord:
        """Replace the status message of an unfinished task, leaving its status as it is.

        What a handler reports while it works (``TaskContext.report``). With ``worker``, only
        while that worker holds the task's lease (``LeaseLost``).
        """
        self._check_message(status_message)

        def change(record: TaskRecord, now_ms: int) -> TaskRecord:
            _check_not_final(record, "its status message can no longer change")
            if record.status_message == status_message:
                return record
            return _replace(record, now_ms, status_message=status_message)

        return await self._mutate(owner, task_id, change, holder=worker)

    async def set_result(
        self,
        owner: str,
        task_id: str,
        result: JsonValue,
        *,
        status: TaskStatus | str = TaskStatus.COMPLETED,
        status_message: str | None = None,
        worker: str | None = None,
    ) -> TaskRecord:
        """Store the final ``result`` and move to ``status`` (``completed`` or ``failed``).

        With ``worker``, only while that worker holds the task's lease (``LeaseLost``).
        """
        target = parse_status(status)
        if target not in (TaskStatus.COMPLETED, TaskStatus.FAILED):
            raise TaskValidationError(
                f"a result finishes a task as completed or failed, not {target.value}"
            )
        self.check_result(result)
        self._check_message(status_message)

        def change(record: TaskRecord, now_ms: int) -> TaskRecord:
            check_transition(record.task_id, record.status, target)
            return _replace(
                record,
                now_ms,
                status=target,
                status_message=status_message,
                has_result=True,
                result=result,
                **_ended(target),
            )

        return await self._mutate(owner, task_id, change, holder=worker)

    def check_result(self, result: JsonValue) -> None:
        """Raise ``TaskValidationError`` naming the limit if ``result`` cannot be stored.

        For a caller that must know before it commits to storing a result, such as a server
        answering the same tool synchronously and as a task with the same results.
        """
        check_json(result, "result", self.config)
        self._check_size(result, "the result", "max_result_bytes", ": store a reference instead")

    async def complete(
        self,
        owner: str,
        task_id: str,
        result: JsonValue,
        *,
        status_message: str | None = None,
        worker: str | None = None,
    ) -> TaskRecord:
        """Finish the task successfully with ``result`` (e.g. a ``CallToolResult``).

        With ``worker``, only while that worker holds the task's lease (``LeaseLost``).
        """
        return await self.set_result(
            owner, task_id, result, status_message=status_message, worker=worker
        )

    async def fail(
        self,
        owner: str,
        task_id: str,
        status_message: str | None = None,
        *,
        result: JsonValue | Unset = UNSET,
        error: Mapping[str, JsonValue] | None = None,
        worker: str | None = None,
    ) -> TaskRecord:
        """Finish the task as failed, optionally with a result (e.g. an error payload).

        ``error`` is the JSON-RPC error object (``code``, ``message``, optional ``data``) that
        the tasks extension inlines on ``tasks/get`` of a failed task. With ``worker``, only
        while that worker holds the task's lease (``LeaseLost``).
        """
        if error is not None:
            if result is not UNSET:
                raise TaskValidationError("a failed task carries an error or a result, not both")
            checked = check_jsonrpc_error(error, self.config)
            self._check_size(checked, "the error", "max_result_bytes", ": shorten its data")
            return await self._fail_with_error(owner, task_id, checked, status_message, worker)
        if result is UNSET:
            return await self.update_status(
                owner, task_id, TaskStatus.FAILED, status_message=status_message, worker=worker
            )
        return await self.set_result(
            owner,
            task_id,
            result,
            status=TaskStatus.FAILED,
            status_message=status_message,
            worker=worker,
        )

    async def require_input(
        self,
        owner: str,
        task_id: str,
        status_message: str | None = None,
        *,
        worker: str | None = None,
    ) -> TaskRecord:
        """``working -> input_required``: the task waits for the client.

        With ``worker``, only while that worker holds the task's lease (``LeaseLost``).
        """
        return await self.update_status(
            owner, task_id, TaskStatus.INPUT_REQUIRED, status_message=status_message, worker=worker
        )

    async def resume(
        self, owner: str, task_id: str, status_message: str | None = None
    ) -> TaskRecord:
        """``input_required -> working``: the input arrived."""
        return await self.update_status(
            owner, task_id, TaskStatus.WORKING, status_message=status_message
        )

    async def cancel(
        self, owner: str, task_id: str, status_message: str | None = None
    ) -> TaskRecord:
        """Cancel a task that is not final yet (MCP ``tasks/cancel``)."""
        return await self.update_status(
            owner, task_id, TaskStatus.CANCELLED, status_message=status_message
        )

    async def request_cancel(
        self, owner: str, task_id: str, status_message: str | None = None
    ) -> TaskRecord:
        """``tasks/cancel`` of the tasks extension: cancel, or leave a final task as it is.

        Unlike :meth:`cancel`, cancelling a task that already finished is not an error: the
        client cannot know that the work finished first, and the extension acknowledges both.
        """
        self._check_message(status_message)

        def change(record: TaskRecord, now_ms: int) -> TaskRecord:
            if record.status.is_terminal:
                return record
            return _replace(
                record,
                now_ms,
                status=TaskStatus.CANCELLED,
                status_message=status_message,
                **_ended(TaskStatus.CANCELLED),
            )

        return await self._mutate(owner, task_id, change)

    async def request_input(
        self,
        owner: str,
        task_id: str,
        requests: Mapping[str, JsonValue],
        status_message: str | None = None,
        *,
        worker: str | None = None,
    ) -> tuple[TaskRecord, dict[str, str]]:
        """Ask the client for input: the task becomes ``input_required`` with ``requests``.

        ``requests`` maps names the handler chose to server-to-client requests (such as
        ``{"method": "elicitation/create", "params": {...}}``). Each is stored under a key
        minted from its name and a per-task counter, so no key is ever reused while the task
        lives (an answer can only ever match the question it was given for). Returns the new
        record and ``{name: key}``. With ``worker``, only while that worker holds the task's
        lease (``LeaseLost``).
        """
        checked = check_input_requests(requests, self.config)
        self._check_message(status_message)
        keys: dict[str, str] = {}

        def change(record: TaskRecord, now_ms: int) -> TaskRecord:
            if record.status is not TaskStatus.INPUT_REQUIRED:
                check_transition(record.task_id, record.status, TaskStatus.INPUT_REQUIRED)
            issued = record.input_keys_issued
            outstanding = dict(record.input_requests)
            keys.clear()
            for name, request in checked.items():
                issued += 1
                keys[name] = f"{name}#{issued}"
                outstanding[keys[name]] = request
            self._check_size(outstanding, "the outstanding input requests", "max_input_bytes")
            return _replace(
                record,
                now_ms,
                status=TaskStatus.INPUT_REQUIRED,
                status_message=status_message,
                input_requests=outstanding,
                input_keys_issued=issued,
            )

        record = await self._mutate(owner, task_id, change, holder=worker)
        return record, dict(keys)

    async def answer_input(
        self, owner: str, task_id: str, responses: Mapping[str, JsonValue]
    ) -> TaskRecord:
        """``tasks/update``: deliver the client's ``inputResponses``.

        Each response whose key is outstanding moves from the requests to the responses the
        handler will take; other keys (unknown, already answered, or of a final task) are
        ignored, as the extension asks, however malformed their responses (only an outstanding
        key's response must be an object of plain JSON). Once nothing is outstanding, the task
        is ``working`` again. Partial answers leave it ``input_required`` with the remaining
        keys.
        """
        given = check_input_object(responses, "input_responses")

        def change(record: TaskRecord, now_ms: int) -> TaskRecord:
            if record.status.is_terminal:
                return record
            asked = record.input_requests
            answered = {
                key: check_input_value("input_responses", key, value, self.config)
                for key, value in given.items()
                if key in asked
            }
            if not answered:
                return record
            outstanding = {
                key: request
                for key, request in record.input_requests.items()
                if key not in answered
            }
            delivered = {**record.input_responses, **answered}
            self._check_size(delivered, "the undelivered input responses", "max_input_bytes")
            status = record.status
            if not outstanding and status is TaskStatus.INPUT_REQUIRED:
                status = TaskStatus.WORKING
            return _replace(
                record,
                now_ms,
                status=status,
                input_requests=outstanding,
                input_responses=delivered,
            )

        return await self._mutate(owner, task_id, change)

    async def take_input_responses(
        self, owner: str, task_id: str, keys: Collection[str]
    ) -> tuple[TaskRecord, dict[str, JsonValue]]:
        """Hand the delivered responses among ``keys`` to the handler and forget them."""
        wanted = check_input_keys(keys, self.config)
        taken: dict[str, JsonValue] = {}

        def change(record: TaskRecord, now_ms: int) -> TaskRecord:
            taken.clear()
            delivered = record.input_responses
            taken.update({key: delivered[key] for key in wanted if key in delivered})
            if not taken:
                return record
            left = {k: v for k, v in record.input_responses.items() if k not in taken}
            return _replace(record, now_ms, input_responses=left)

        record = await self._mutate(owner, task_id, change)
        return record, dict(taken)

    async def renew_lease(self, owner: str, task_id: str, worker: str, lease: float) -> TaskRecord:
        """The worker is alive: its lease on the task now runs ``lease`` seconds from now.

        A final task is left as it is (the handler learns that from the returned record). Only
        the worker that holds the lease renews it (or any worker, for a task created without
        one): another worker gets ``LeaseLost``, so a worker that was paused past its lease
        cannot take back a task another instance took over. A lease that ran out but that
        nobody ended or took over is renewed: the worker was slow, not lost. The renewal does
        not touch ``lastUpdatedAt``: the task itself did not change.
        """
        worker = check_worker(worker, self.config)
        lease_ms = max(1, round(check_lease(lease) * 1000))

        def change(record: TaskRecord, now_ms: int) -> TaskRecord:
            if record.status.is_terminal:
                return record
            return replace(record, worker=worker, lease_expires_ms=now_ms + lease_ms)

        return await self._mutate(owner, task_id, change, holder=worker)

    async def get_checking_lease(self, owner: str, task_id: str) -> TaskRecord:
        """The task, after ending it ``failed`` if its worker let the lease run out.

        A worker that died (``kill -9``, a lost machine) can no longer finish its tasks. The
        first read after its lease ran out, from any process, fails the task with a JSON-RPC
        error saying so; a worker that renewed meanwhile wins (the change is re-checked on the
        fresh record).
        """
        record = await self.get(owner, task_id)
        if not record.lease_expired(self._now_ms()):
            return record

        def change(current: TaskRecord, now_ms: int) -> TaskRecord:
            if not current.lease_expired(now_ms):
                return current
            assert current.lease_expires_ms is not None  # lease_expired says so
            message = (
                f"the worker {current.worker!r} running this task was lost: its lease ran out "
                f"at {iso_ms(current.lease_expires_ms)} without being renewed"
            )
            return _replace(
                current,
                now_ms,
                status=TaskStatus.FAILED,
                status_message=message,
                error={"code": INTERNAL_ERROR, "message": message},
                **_ended(TaskStatus.FAILED),
            )

        return await self._mutate(owner, task_id, change)

    def lease_lapsed(self, record: TaskRecord) -> bool:
        """Whether ``record``'s worker let its lease run out, on this store's clock.

        What a caller that can hand the task to another worker (the MCP binding's resume)
        checks before it ends the task as :meth:`get_checking_lease` would. ``record`` must be
        one a store returned: the fields the answer rests on are checked, since a record built
        or altered by hand could hold anything.
        """
        if not isinstance(record, TaskRecord):
            raise TaskValidationError(
                f"lease_lapsed takes a TaskRecord read from a store, not {shown(record)}"
            )
        if not isinstance(record.status, TaskStatus):
            raise TaskValidationError(
                f"lease_lapsed got a record whose status is {shown(record.status)}, "
                "not a TaskStatus"
            )
        expires = record.lease_expires_ms
        if expires is not None and (
            isinstance(expires, bool) or not isinstance(expires, int) or not 0 <= expires <= MAX_MS
        ):
            raise TaskValidationError(
                f"lease_lapsed got a record whose lease_expires_ms is {shown(expires)}, not "
                f"None or epoch milliseconds in 0..{MAX_MS}"
            )
        return record.lease_expired(self._now_ms())

    async def take_over_lease(
        self, owner: str, task_id: str, worker: str, lease: float
    ) -> TaskRecord:
        """``worker`` takes an unfinished task whose holder let its lease run out.

        The change is checked on the fresh record, so of two workers taking over the same
        lapsed lease one wins and the other gets ``LeaseLost`` (the winner's lease is live);
        the former holder's later writes are then ``LeaseLost`` too. A live lease held by
        another worker is ``LeaseLost`` and nothing is written. A final task is left as it is.
        """
        worker = check_worker(worker, self.config)
        lease_ms = max(1, round(check_lease(lease) * 1000))

        def change(record: TaskRecord, now_ms: int) -> TaskRecord:
            if record.status.is_terminal:
                return record
            if record.worker not in (None, worker) and not record.lease_expired(now_ms):
                raise LeaseLost(task_id, worker, str(record.worker))
            return replace(record, worker=worker, lease_expires_ms=now_ms + lease_ms)

        return await self._mutate(owner, task_id, change)

    async def cleanup_expired(self) -> int:
        """Physically remove expired records (tasks and cap slots); returns how many."""
        await self._time.check()
        try:
            return await self.backend.cleanup_expired()
        except StorageError as exc:
            raise failure("removing expired tasks", exc) from exc

    # --------------------------------------------------------------------------- helpers

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _page_size(self, limit: object) -> int:
        if limit is None:
            return self.config.default_page_size
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise TaskValidationError(f"limit must be an int >= 1, not {shown(limit)}")
        if limit > self.config.max_page_size:
            raise TaskValidationError(
                f"limit {shown(limit)} exceeds the maximum page size {self.config.max_page_size}"
            )
        return limit

    def _check_message(self, message: object) -> None:
        if message is None:
            return
        if not isinstance(message, str):
            raise TaskValidationError(
                f"status_message must be a str or None, not {type(message).__name__}"
            )
        check_json(message, "status_message", self.config)

    def _check_size(self, value: JsonValue, what: str, setting: str, advice: str = "") -> None:
        """``value``'s canonical JSON within the ``StoreConfig`` limit named ``setting``."""
        size = len(canonical_json(value))
        limit: int = getattr(self.config, setting)
        if size > limit:
            raise TaskValidationError(
                f"{what} would take {size} bytes as JSON; the limit is {limit} "
                f"(StoreConfig.{setting}){advice}"
            )

    def _check_variables_size(self, variables: dict[str, JsonValue]) -> None:
        self._check_size(
            variables,
            "variables",
            "max_variables_bytes",
            ": store less, or delete variables by setting them to None",
        )

    async def _fail_with_error(
        self,
        owner: str,
        task_id: str,
        error: dict[str, JsonValue],
        status_message: str | None,
        worker: str | None,
    ) -> TaskRecord:
        self._check_message(status_message)

        def change(record: TaskRecord, now_ms: int) -> TaskRecord:
            check_transition(record.task_id, record.status, TaskStatus.FAILED)
            return _replace(
                record,
                now_ms,
                status=TaskStatus.FAILED,
                status_message=status_message,
                error=error,
                **_ended(TaskStatus.FAILED),
            )

        return await self._mutate(owner, task_id, change, holder=worker)

    def _encode(self, record: TaskRecord) -> bytes:
        data = record.to_json()
        limit = self.backend.capabilities.max_record_bytes
        if limit is not None and len(data) > limit:
            raise TaskValidationError(
                f"task {record.task_id!r} would take {len(data)} bytes; this storage holds at "
                f"most {limit} bytes per task: store less in its variables or result"
            )
        return data

    async def _read(self, owner: str, task_id: str) -> tuple[TaskRecord, int]:
        key = task_key(owner, task_id)
        await self._time.check()
        try:
            stored = await self.backend.get(key)
        except StorageError as exc:
            raise failure(f"reading task {task_id!r}", exc) from exc
        if stored is None:
            raise TaskNotFound(task_id)
        record = TaskRecord.from_json(stored.data, task_id)
        # Defense in depth: the key already scopes the owner; the stored owner must agree.
        if record.owner != owner or not is_live(record.expires_at, self._clock()):
            raise TaskNotFound(task_id)
        return record, stored.version

    def _listed(
        self, owner: str, item: str, stored: VersionedRecord, now: float
    ) -> TaskRecord | None:
        if not is_task_id(item):  # nothing this store wrote
            return None
        try:
            record = TaskRecord.from_json(stored.data, item)
        except StorageFailure as exc:
            logger.warning("skipping a task in a listing: %s", exc)
            return None
        if record.owner != owner or not is_live(record.expires_at, now):
            return None
        return record

    async def _mutate(
        self,
        owner: str,
        task_id: str,
        change: Callable[[TaskRecord, int], TaskRecord],
        *,
        holder: str | None = None,
    ) -> TaskRecord:
        """Read, ``change``, compare-and-set, retried on conflicts.

        With ``holder``, an unfinished task leased to another worker is ``LeaseLost``, checked
        on every fresh read, so a takeover between read and write cannot be overwritten.
        """
        owner = check_owner(owner, self.config)
        task_id = check_task_id(task_id)
        if holder is not None:
            holder = check_worker(holder, self.config)
        key = task_key(owner, task_id)
        conflict = VersionConflict(key, 0, 0)
        for attempt in range(self.config.cas_attempts):
            if attempt:
                await backoff(self.config, attempt)
            record, version = await self._read(owner, task_id)
            if (
                holder is not None
                and not record.status.is_terminal
                and record.worker not in (None, holder)
            ):
                raise LeaseLost(task_id, holder, str(record.worker))
            updated = change(record, max(self._now_ms(), record.updated_at_ms))
            if updated is record:  # nothing to change: no write, no new version
                return record
            data = self._encode(updated)
            expires_at = self._time.stored_expiry(record.expires_at)
            try:
                await cas(self.backend, self.config, key, data, version, expires_at)
            except VersionConflict as exc:
                conflict = exc
                continue
            except RecordNotFound:
                raise TaskNotFound(task_id) from None
            except OutcomeUnknown as exc:
                action = f"updating task {task_id!r}"
                raise failure(action, exc.cause, unknown=True) from exc.cause
            except StorageError as exc:
                raise failure(f"updating task {task_id!r}", exc) from exc
            now_final = updated.status.is_terminal and not record.status.is_terminal
            if self._cap is not None and now_final:
                await self._cap.finished(owner, task_id)
            return updated
        raise ConcurrentModification(task_id, conflict.expected, conflict.actual)

    async def _live_tasks(self, owner: str) -> tuple[LiveTask, ...]:
        """The owner's live tasks, for the cap's rebuild (damaged records are skipped)."""
        prefix = partition_prefix(owner)
        now = self._clock()
        found: list[LiveTask] = []
        try:
            async for key, stored in walk(self.backend, prefix):
                record = self._listed(owner, key[len(prefix) :], stored, now)
                if record is not None:
                    found.append(
                        LiveTask(record.task_id, record.expires_at, record.status.is_terminal)
                    )
        except StorageError as exc:
            raise failure("listing tasks to count them", exc) from exc
        return tuple(found)


def _replace(record: TaskRecord, now_ms: int, **changes: Any) -> TaskRecord:
    return replace(record, updated_at_ms=now_ms, **changes)


def _ended(target: TaskStatus) -> dict[str, Any]:
    """The input a move to ``target`` ends.

    A final task asks nothing any more: outstanding input can no longer be answered. A task
    that goes back to ``working`` without its answers (``resume()``) stops waiting for them:
    a late answer is ignored like any unknown key, and a question asked again is then the
    only one outstanding, so answering it makes the task ``working`` again. Delivered
    responses stay for the handler to take.
    """
    if target.is_terminal:
        return {"input_requests": {}, "input_responses": {}}
    return {"input_requests": {}} if target is TaskStatus.WORKING else {}


def _check_not_final(record: TaskRecord, consequence: str) -> None:
    if record.status.is_terminal:
        raise InvalidTransition(
            f"task {record.task_id!r} is {record.status.value}, a final status: {consequence}; "
            "create a new task to run the work again"
        )
