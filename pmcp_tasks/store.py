"""``GenericTaskStore``: all task logic, written once over any :class:`StorageBackend`.

Every mutation is read -> validate -> ``put_if_version``. On a version conflict the store reads
again and validates again (the task may have become final meanwhile), after a short jittered
pause, at most ``StoreConfig.cas_attempts`` times, then gives up with
``ConcurrentModification``. Backends stay dumb: no owner, status or limit ever reaches them
except as opaque bytes and keys built by :mod:`pmcp_tasks.keys`.

The per-owner cap is kept in a *quota record* per owner (see ``docs/domain.md``): a count
cannot be made atomic with per-key CAS over the tasks themselves, so creates first reserve a
slot in that record with ``put_if_version`` and only then write the task.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import random
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from typing import Any

from pmcp_tasks.backend import Clock, StorageBackend, VersionedRecord, is_live
from pmcp_tasks.config import StoreConfig
from pmcp_tasks.cursor import decode_cursor, encode_cursor
from pmcp_tasks.errors import (
    INTERNAL_ERROR,
    BackendError,
    BackendUnavailable,
    ConcurrentModification,
    InvalidTransition,
    NotFound,
    ResultUnavailable,
    StorageError,
    StorageFailure,
    TaskLimitExceeded,
    TaskNotFound,
    TaskValidationError,
    VersionConflict,
)
from pmcp_tasks.ids import TaskIdGenerator, created_ms, is_task_id
from pmcp_tasks.keys import partition_prefix, task_key
from pmcp_tasks.record import TaskRecord, canonical_json, iso_ms
from pmcp_tasks.status import TaskStatus, check_transition, parse_status
from pmcp_tasks.validation import (
    JsonValue,
    check_changes,
    check_input_map,
    check_input_requests,
    check_json,
    check_jsonrpc_error,
    check_lease,
    check_owner,
    check_task_id,
    check_ttl,
    check_worker,
    merge_variables,
)

logger = logging.getLogger("pmcp_tasks")

QUOTA_ITEM = "%quota"
"""Item of an owner's quota record. Percent-encoding never yields '%' before a non-hex digit,
so no task id can address it; listings skip it."""

RESERVATION_GRACE = 60.0
"""Seconds after which a quota slot whose task was never written may be reclaimed."""

WRITE_ATTEMPTS = 3
"""Sends of one write whose reply was lost while the key stayed unchanged (see ``_cas``)."""

_QUOTA_ENTRY_BYTES = 96  # generous size of one quota entry in canonical JSON


class Unset(enum.Enum):
    """Marks an argument the caller did not pass (``None`` means something for them)."""

    UNSET = enum.auto()


UNSET = Unset.UNSET

_Slots = dict[str, list[Any]]
"""Quota slots: task id -> ``[expires_at or None, verified]``."""


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
    ) -> None:
        if config is None:
            config = StoreConfig()
        if not isinstance(config, StoreConfig):
            raise ValueError(f"config must be a StoreConfig, not {type(config).__name__}")
        capabilities = getattr(backend, "capabilities", None)
        if capabilities is None or not callable(getattr(backend, "put_if_version", None)):
            raise ValueError("backend must implement pmcp_tasks.StorageBackend")
        if not callable(clock):
            raise ValueError("clock must be a callable returning epoch seconds")
        limit = capabilities.max_record_bytes
        cap = config.max_tasks_per_owner
        if limit is not None and cap is not None and cap * _QUOTA_ENTRY_BYTES + 1024 > limit:
            raise ValueError(
                f"max_tasks_per_owner={cap} needs a quota record of about "
                f"{cap * _QUOTA_ENTRY_BYTES + 1024} bytes, but this backend stores at most "
                f"{limit} bytes per record; lower the cap"
            )
        self.backend = backend
        self.config = config
        self._clock = clock
        self._new_id = TaskIdGenerator(clock)

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
        found: list[TaskRecord] = []
        while len(found) <= page_size:
            want = page_size + 1 - len(found)
            try:
                page = await self.backend.list_by_prefix(prefix, after=after, limit=want)
            except StorageError as exc:
                raise _failure("listing tasks", exc) from exc
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
        config = self.config
        owner = check_owner(owner, config)
        if (worker is None) != (lease is None):
            raise TaskValidationError(
                f"pass worker and lease together, got worker={worker!r}, lease={lease!r}"
            )
        lease_ms: int | None = None
        if worker is not None:
            worker = check_worker(worker)
            lease_ms = max(1, round(check_lease(lease) * 1000))
        ttl_seconds = config.default_ttl if ttl is UNSET else check_ttl(ttl, config)
        changes = {} if variables is None else check_changes(variables, config)
        initial = merge_variables({}, changes)
        self._check_variables_size(initial)
        self._check_message(status_message)
        task_id = self._new_id()
        now_ms = self._now_ms()
        record = TaskRecord(
            task_id=task_id,
            owner=owner,
            status=TaskStatus.WORKING,
            created_at_ms=now_ms,
            updated_at_ms=now_ms,
            ttl_ms=None if ttl_seconds is None else max(1, round(ttl_seconds * 1000)),
            status_message=status_message,
            poll_interval_ms=(
                None if config.poll_interval is None else round(config.poll_interval * 1000)
            ),
            variables=initial,
            worker=worker,
            lease_expires_ms=None if lease_ms is None else now_ms + lease_ms,
        )
        data = self._encode(record)
        if config.max_tasks_per_owner is not None:
            await self._reserve(owner, task_id, record.expires_at, config.max_tasks_per_owner)
        try:
            await self._cas(task_key(owner, task_id), data, 0, record.expires_at)
        except _OutcomeUnknown as exc:
            # The task may exist: keep its slot (``_reclaim`` drops it later if it does not).
            raise _failure(f"creating task {task_id!r}", exc.cause, unknown=True) from exc.cause
        except Exception as exc:
            if config.max_tasks_per_owner is not None:
                await self._release(owner, task_id)
            if isinstance(exc, StorageError):
                raise _failure(f"creating task {task_id!r}", exc) from exc
            raise
        return record

    async def update_status(
        self,
        owner: str,
        task_id: str,
        status: TaskStatus | str,
        *,
        status_message: str | None = None,
    ) -> TaskRecord:
        """Move the task to ``status``; ``status_message`` replaces the previous one."""
        target = parse_status(status)
        self._check_message(status_message)

        def change(record: TaskRecord, now_ms: int) -> TaskRecord:
            check_transition(record.task_id, record.status, target)
            return _replace(
                record, now_ms, status=target, status_message=status_message, **_ended(target)
            )

        return await self._mutate(owner, task_id, change)

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

    async def set_result(
        self,
        owner: str,
        task_id: str,
        result: JsonValue,
        *,
        status: TaskStatus | str = TaskStatus.COMPLETED,
        status_message: str | None = None,
    ) -> TaskRecord:
        """Store the final ``result`` and move to ``status`` (``completed`` or ``failed``)."""
        target = parse_status(status)
        if target not in (TaskStatus.COMPLETED, TaskStatus.FAILED):
            raise TaskValidationError(
                f"a result finishes a task as completed or failed, not {target.value}"
            )
        check_json(result, "result", self.config)
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

        return await self._mutate(owner, task_id, change)

    async def complete(
        self, owner: str, task_id: str, result: JsonValue, *, status_message: str | None = None
    ) -> TaskRecord:
        """Finish the task successfully with ``result`` (e.g. a ``CallToolResult``)."""
        return await self.set_result(owner, task_id, result, status_message=status_message)

    async def fail(
        self,
        owner: str,
        task_id: str,
        status_message: str | None = None,
        *,
        result: JsonValue | Unset = UNSET,
        error: Mapping[str, JsonValue] | None = None,
    ) -> TaskRecord:
        """Finish the task as failed, optionally with a result (e.g. an error payload).

        ``error`` is the JSON-RPC error object (``code``, ``message``, optional ``data``) that
        the tasks extension inlines on ``tasks/get`` of a failed task.
        """
        if error is not None:
            if result is not UNSET:
                raise TaskValidationError("a failed task carries an error or a result, not both")
            return await self._fail_with_error(
                owner, task_id, check_jsonrpc_error(error, self.config), status_message
            )
        if result is UNSET:
            return await self.update_status(
                owner, task_id, TaskStatus.FAILED, status_message=status_message
            )
        return await self.set_result(
            owner, task_id, result, status=TaskStatus.FAILED, status_message=status_message
        )

    async def require_input(
        self, owner: str, task_id: str, status_message: str | None = None
    ) -> TaskRecord:
        """``working -> input_required``: the task waits for the client."""
        return await self.update_status(
            owner, task_id, TaskStatus.INPUT_REQUIRED, status_message=status_message
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
    ) -> tuple[TaskRecord, dict[str, str]]:
        """Ask the client for input: the task becomes ``input_required`` with ``requests``.

        ``requests`` maps names the handler chose to server-to-client requests (such as
        ``{"method": "elicitation/create", "params": {...}}``). Each is stored under a key
        minted from its name and a per-task counter, so no key is ever reused while the task
        lives (an answer can only ever match the question it was given for). Returns the new
        record and ``{name: key}``.
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
            self._check_input_size(outstanding, "outstanding input requests")
            return _replace(
                record,
                now_ms,
                status=TaskStatus.INPUT_REQUIRED,
                status_message=status_message,
                input_requests=outstanding,
                input_keys_issued=issued,
            )

        record = await self._mutate(owner, task_id, change)
        return record, dict(keys)

    async def answer_input(
        self, owner: str, task_id: str, responses: Mapping[str, JsonValue]
    ) -> TaskRecord:
        """``tasks/update``: deliver the client's ``inputResponses``.

        Each response whose key is outstanding moves from the requests to the responses the
        handler will take; other keys (unknown, already answered, or of a final task) are
        ignored, as the extension asks. Once nothing is outstanding, the task is ``working``
        again. Partial answers leave it ``input_required`` with the remaining keys.
        """
        checked = check_input_map(responses, "input_responses", self.config)

        def change(record: TaskRecord, now_ms: int) -> TaskRecord:
            asked = record.input_requests
            answered = {key: value for key, value in checked.items() if key in asked}
            if record.status.is_terminal or not answered:
                return record
            outstanding = {
                key: request
                for key, request in record.input_requests.items()
                if key not in answered
            }
            delivered = {**record.input_responses, **answered}
            self._check_input_size(delivered, "undelivered input responses")
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
        taken: dict[str, JsonValue] = {}

        def change(record: TaskRecord, now_ms: int) -> TaskRecord:
            taken.clear()
            delivered = record.input_responses
            taken.update({key: delivered[key] for key in keys if key in delivered})
            if not taken:
                return record
            left = {k: v for k, v in record.input_responses.items() if k not in taken}
            return _replace(record, now_ms, input_responses=left)

        record = await self._mutate(owner, task_id, change)
        return record, dict(taken)

    async def renew_lease(
        self, owner: str, task_id: str, worker: str, lease: float
    ) -> TaskRecord:
        """The worker is alive: its lease on the task now runs ``lease`` seconds from now.

        A final task is left as it is (the handler learns that from the returned record). The
        renewal does not touch ``lastUpdatedAt``: the task itself did not change.
        """
        worker = check_worker(worker)
        lease_ms = max(1, round(check_lease(lease) * 1000))

        def change(record: TaskRecord, now_ms: int) -> TaskRecord:
            if record.status.is_terminal:
                return record
            return replace(record, worker=worker, lease_expires_ms=now_ms + lease_ms)

        return await self._mutate(owner, task_id, change)

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

    async def cleanup_expired(self) -> int:
        """Physically remove expired records (tasks and quota records); returns how many."""
        try:
            return await self.backend.cleanup_expired()
        except StorageError as exc:
            raise _failure("removing expired tasks", exc) from exc

    # --------------------------------------------------------------------------- helpers

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _page_size(self, limit: object) -> int:
        if limit is None:
            return self.config.default_page_size
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise TaskValidationError(f"limit must be an int >= 1, not {limit!r}")
        if limit > self.config.max_page_size:
            raise TaskValidationError(
                f"limit {limit} exceeds the maximum page size {self.config.max_page_size}"
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

    def _check_variables_size(self, variables: dict[str, JsonValue]) -> None:
        size = len(canonical_json(variables))
        if size > self.config.max_variables_bytes:
            raise TaskValidationError(
                f"variables would take {size} bytes as JSON; the limit is "
                f"{self.config.max_variables_bytes}: store less, or delete variables by "
                "setting them to None"
            )

    def _check_input_size(self, values: dict[str, JsonValue], what: str) -> None:
        size = len(canonical_json(values))
        if size > self.config.max_input_bytes:
            raise TaskValidationError(
                f"the {what} would take {size} bytes as JSON; the limit is "
                f"{self.config.max_input_bytes}"
            )

    async def _fail_with_error(
        self,
        owner: str,
        task_id: str,
        error: dict[str, JsonValue],
        status_message: str | None,
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

        return await self._mutate(owner, task_id, change)

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
        try:
            stored = await self.backend.get(key)
        except StorageError as exc:
            raise _failure(f"reading task {task_id!r}", exc) from exc
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
        if not is_task_id(item):  # the quota record, or nothing this store wrote
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
    ) -> TaskRecord:
        owner = check_owner(owner, self.config)
        task_id = check_task_id(task_id)
        key = task_key(owner, task_id)
        conflict = VersionConflict(key, 0, 0)
        for attempt in range(self.config.cas_attempts):
            if attempt:
                await self._backoff(attempt)
            record, version = await self._read(owner, task_id)
            updated = change(record, max(self._now_ms(), record.updated_at_ms))
            if updated is record:  # nothing to change: no write, no new version
                return record
            data = self._encode(updated)
            try:
                await self._cas(key, data, version, record.expires_at)
            except VersionConflict as exc:
                conflict = exc
                continue
            except NotFound:
                raise TaskNotFound(task_id) from None
            except _OutcomeUnknown as exc:
                action = f"updating task {task_id!r}"
                raise _failure(action, exc.cause, unknown=True) from exc.cause
            except StorageError as exc:
                raise _failure(f"updating task {task_id!r}", exc) from exc
            return updated
        raise ConcurrentModification(task_id, conflict.expected, conflict.actual)

    async def _cas(self, key: str, data: bytes, expected: int, expires_at: float | None) -> None:
        """``put_if_version`` that settles a lost reply instead of guessing its outcome.

        A ``BackendError`` from a write may come after the write landed (the reply was lost).
        Retrying blindly could apply the change twice, and recomputing it after the conflict
        with its own write would report a conflict (or an invalid transition) that never
        happened. So the store reads the key back: its own bytes at ``expected + 1`` mean the
        write landed (success); the key still at ``expected`` means it has not, and the very
        same bytes are sent again, so that at most one of the attempts can ever land. Any other
        state (someone else wrote, or the read fails) leaves the outcome unknown:
        :class:`_OutcomeUnknown`, never a silent second application. After
        :data:`WRITE_ATTEMPTS` failed sends with the key unchanged the last ``BackendError``
        is raised: as far as the store can tell, nothing was written.

        ``VersionConflict`` and ``NotFound`` escape only when no attempt was ambiguous, and so
        does ``BackendUnavailable`` (nothing was sent), which needs no read-back.
        """
        lost: BackendError | None = None
        for attempt in range(WRITE_ATTEMPTS):
            if attempt:
                await self._backoff(attempt)
            try:
                await self.backend.put_if_version(key, data, expected, expires_at=expires_at)
                return
            except BackendUnavailable:
                if lost is None:
                    raise  # nothing was sent, so nothing can have landed: not applied
                # An earlier attempt's reply was lost: the read below tells whether it landed.
            except BackendError as exc:
                lost = exc
            except (VersionConflict, NotFound):
                if lost is None:
                    raise
                # Possibly our own earlier attempt, landed late: the read below tells.
            try:
                stored = await self.backend.get(key)
            except StorageError as exc:
                raise _OutcomeUnknown(lost) from exc
            if stored is not None and stored.version == expected + 1 and stored.data == data:
                return
            if expected == 0:
                unchanged = stored is None
            else:
                unchanged = stored is not None and stored.version == expected
            if not unchanged:
                raise _OutcomeUnknown(lost)
        assert lost is not None  # the loop only goes round after a failed write
        raise lost  # not landed, as far as the last read could tell

    async def _backoff(self, attempt: int) -> None:
        """Full jitter: spreads writers that collided so that the next round mostly doesn't."""
        ceiling = min(self.config.cas_backoff_cap, self.config.cas_backoff * 2 ** min(attempt, 30))
        await asyncio.sleep(random.uniform(0, ceiling))

    # ------------------------------------------------------------------------------ quota

    async def _read_quota(self, key: str) -> tuple[_Slots, int]:
        try:
            stored = await self.backend.get(key)
        except StorageError as exc:
            raise _failure("reading the task quota", exc) from exc
        if stored is None:
            return {}, 0
        try:
            live = json.loads(stored.data.decode("utf-8"))["live"]
            if not isinstance(live, dict) or not all(_is_quota_entry(e) for e in live.values()):
                raise TypeError("unexpected shape")
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageFailure(f"the stored task quota is corrupted ({exc})") from exc
        return live, stored.version

    async def _write_quota(self, key: str, live: _Slots, version: int) -> bool:
        """CAS the quota record; False when someone else changed it first."""
        expiries = [entry[0] for entry in live.values()]
        if not expiries:
            expires_at: float | None = self._clock()  # empty: let it lapse right now
        elif None in expiries:
            expires_at = None
        else:
            expires_at = max(expiries)
        data = canonical_json({"live": live})
        try:
            await self._cas(key, data, version, expires_at)
        except (VersionConflict, NotFound):
            return False
        except _OutcomeUnknown as exc:
            raise _failure("updating the task quota", exc.cause, unknown=True) from exc.cause
        except StorageError as exc:
            raise _failure("updating the task quota", exc) from exc
        return True

    async def _reserve(self, owner: str, task_id: str, expires_at: float | None, cap: int) -> None:
        key = partition_prefix(owner) + QUOTA_ITEM
        for attempt in range(self.config.cas_attempts):
            if attempt:
                await self._backoff(attempt)
            live, version = await self._read_quota(key)
            now = self._clock()
            live = {tid: entry for tid, entry in live.items() if is_live(entry[0], now)}
            if len(live) >= cap:
                reclaimed = await self._reclaim(owner, live, now)
                if len(reclaimed) >= cap:
                    if reclaimed != live:  # remember what was verified: check it only once
                        await self._write_quota(key, reclaimed, version)
                    raise TaskLimitExceeded(
                        f"this owner already has {cap} live tasks, the most allowed; wait "
                        "for some to expire or finish before creating more"
                    )
                live = reclaimed
            live[task_id] = [expires_at, False]
            if await self._write_quota(key, live, version):
                return
        raise ConcurrentModification(task_id, 0, 0)

    async def _reclaim(self, owner: str, live: _Slots, now: float) -> _Slots:
        """Drop slots whose task was never written (a crash between reserve and write).

        Only slots older than :data:`RESERVATION_GRACE` and not yet verified are checked, and
        each is marked verified once its task is seen, so each slot costs at most one read.
        """
        cutoff_ms = int((now - RESERVATION_GRACE) * 1000)
        kept = {tid: entry for tid, entry in live.items() if is_task_id(tid)}
        suspects = [
            tid for tid, entry in kept.items() if not entry[1] and created_ms(tid) < cutoff_ms
        ]
        if not suspects:
            return kept
        try:
            found = await asyncio.gather(
                *(self.backend.get(task_key(owner, tid)) for tid in suspects)
            )
        except StorageError as exc:
            raise _failure("checking the task quota", exc) from exc
        for tid, stored in zip(suspects, found, strict=True):
            if stored is None:
                del kept[tid]
            else:
                kept[tid] = [kept[tid][0], True]
        return kept

    async def _release(self, owner: str, task_id: str) -> None:
        """Give back a slot after a failed write; best effort (``_reclaim`` is the backstop)."""
        key = partition_prefix(owner) + QUOTA_ITEM
        try:
            for attempt in range(self.config.cas_attempts):
                if attempt:
                    await self._backoff(attempt)
                live, version = await self._read_quota(key)
                if task_id not in live:
                    return
                del live[task_id]
                if await self._write_quota(key, live, version):
                    return
        except StorageFailure as exc:
            logger.warning("could not release the quota slot of task %r: %s", task_id, exc)


def _replace(record: TaskRecord, now_ms: int, **changes: Any) -> TaskRecord:
    return replace(record, updated_at_ms=now_ms, **changes)


def _ended(target: TaskStatus) -> dict[str, Any]:
    """A final task asks nothing any more: outstanding input can no longer be answered."""
    return {"input_requests": {}, "input_responses": {}} if target.is_terminal else {}


def _check_not_final(record: TaskRecord, consequence: str) -> None:
    if record.status.is_terminal:
        raise InvalidTransition(
            f"task {record.task_id!r} is {record.status.value}, a final status: {consequence}; "
            "create a new task to run the work again"
        )


class _OutcomeUnknown(Exception):
    """A write whose reply was lost and whose effect could not be established by reading."""

    def __init__(self, cause: BackendError) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _failure(action: str, exc: StorageError, *, unknown: bool = False) -> StorageFailure:
    outcome = (
        "; the change may or may not have been applied: read the task to find out"
        if unknown
        else ""
    )
    return StorageFailure(f"storage failed while {action}: {type(exc).__name__}: {exc}{outcome}")


def _is_quota_entry(entry: object) -> bool:
    """``[expires_at or None, verified]`` as :meth:`GenericTaskStore._reserve` writes it."""
    return (
        isinstance(entry, list)
        and len(entry) == 2
        and (entry[0] is None or isinstance(entry[0], (int, float)))
        and isinstance(entry[1], bool)
    )
