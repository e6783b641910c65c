"""Resumable tasks: what another instance needs to run a task's handler again once its worker
is lost, and the journal of answers that lets the re-run skip questions already answered.

A resumable task in flight has an *entry* in a partition of the store's backend that no owner
can name (percent-encoding never writes ``%r``): the owner, the task id, the tool, its
arguments, how many times a handler was started for it, and the answers its ``request_input``
calls got, in call order. Any instance lists these entries to find tasks whose lease lapsed.
The task record stays the authority: the takeover is a fenced write to it
(:meth:`~pmcp_tasks.GenericTaskStore.take_over_lease`), so of two claimers one wins.

An entry is written before the client hears of the task, so a worker lost at any moment
leaves its task resumable (a write that fails is tried again at each watch tick); it is
removed when the task ends.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pmcp_tasks.context import TaskContext
from pmcp_tasks.errors import StorageError, VersionConflict
from pmcp_tasks.keys import task_key
from pmcp_tasks.paging import walk
from pmcp_tasks.record import canonical_json
from pmcp_tasks.store import GenericTaskStore
from pmcp_tasks.validation import JsonValue

logger = logging.getLogger("pmcp_tasks.mcp")

RESUME_PARTITION = "%resume"
"""The entries' partition: '%' before a non-hex digit, which no owner's partition starts with."""

CAS_ATTEMPTS = 8
"""Compare-and-set rounds of an entry update before it gives up (writers are few: the holder)."""


@dataclass(frozen=True)
class Entry:
    """One resumable task in flight, as another instance needs it to run the handler again."""

    owner: str
    task_id: str
    tool: str
    arguments: dict[str, JsonValue]
    attempts: int = 1
    answers: tuple[dict[str, JsonValue], ...] = field(default=())

    def to_json(self) -> bytes:
        return canonical_json(
            {
                "owner": self.owner,
                "task_id": self.task_id,
                "tool": self.tool,
                "arguments": self.arguments,
                "attempts": self.attempts,
                "answers": list(self.answers),
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> Entry:
        """The entry stored as ``data``; ``ValueError`` if it is not one."""
        document: Any = json.loads(data)
        if not isinstance(document, dict):
            raise ValueError("a resume entry must be a JSON object")
        owner, task_id, tool = document.get("owner"), document.get("task_id"), document.get("tool")
        arguments, attempts = document.get("arguments"), document.get("attempts")
        answers = document.get("answers")
        if not (
            isinstance(owner, str)
            and isinstance(task_id, str)
            and isinstance(tool, str)
            and isinstance(arguments, dict)
            and isinstance(attempts, int)
            and isinstance(answers, list)
            and all(isinstance(answer, dict) for answer in answers)
        ):
            raise ValueError(f"a resume entry has a field of the wrong type: {data[:200]!r}")
        return cls(owner, task_id, tool, arguments, attempts, tuple(answers))


def entry_key(owner: str, task_id: str) -> str:
    """The entry's key: a digest of the task's key, so any owner fits the key length limit."""
    digest = hashlib.sha256(task_key(owner, task_id).encode("ascii")).hexdigest()
    return f"{RESUME_PARTITION}:{digest}"


class ResumeLog:
    """The entries of one store, read and written through its backend."""

    def __init__(self, store: GenericTaskStore) -> None:
        self.backend = store.backend

    async def put(self, entry: Entry, expires_at: float | None) -> None:
        """Write ``entry``, expiring with its task (a forgotten entry cannot outlive it)."""
        key = entry_key(entry.owner, entry.task_id)
        await self.backend.put(key, entry.to_json(), expires_at=expires_at)

    async def read(self, owner: str, task_id: str) -> tuple[Entry, int] | None:
        """The task's entry and its version; ``None`` when it has none (or a damaged one)."""
        key = entry_key(owner, task_id)
        stored = await self.backend.get(key)
        if stored is None:
            return None
        try:
            return Entry.from_json(stored.data), stored.version
        except ValueError as exc:
            logger.warning("ignoring a damaged resume entry %s: %s", key, exc)
            return None

    async def change(
        self, owner: str, task_id: str, edit: Callable[[Entry], Entry], expires_at: float | None
    ) -> Entry | None:
        """Apply ``edit`` to the entry by compare-and-set; ``None`` when there is none."""
        key = entry_key(owner, task_id)
        for _ in range(CAS_ATTEMPTS):
            found = await self.read(owner, task_id)
            if found is None:
                return None
            entry, version = found
            edited = edit(entry)
            try:
                await self.backend.put_if_version(
                    key, edited.to_json(), version, expires_at=expires_at
                )
            except VersionConflict:
                continue
            return edited
        raise VersionConflict(key, 0, 0)

    async def forget(self, owner: str, task_id: str) -> None:
        await self.backend.delete(entry_key(owner, task_id))

    async def entries(self) -> AsyncIterator[Entry]:
        """Every entry (damaged ones are logged and skipped)."""
        async for key, stored in walk(self.backend, f"{RESUME_PARTITION}:"):
            try:
                yield Entry.from_json(stored.data)
            except ValueError as exc:
                logger.warning("ignoring a damaged resume entry %s: %s", key, exc)


class Registration:
    """One resumable task's entry, seen from the worker that runs it now.

    ``written`` says whether the entry is in the store (a write that failed leaves it
    ``False`` until :meth:`ensure` succeeds).
    """

    def __init__(
        self, log: ResumeLog, entry: Entry, expires_at: float | None, *, written: bool
    ) -> None:
        self.log = log
        self.entry = entry
        self.expires_at = expires_at
        self.written = written

    async def ensure(self) -> None:
        """Write the entry if it is not written yet; a failure is logged, and tried again
        at the next call (until then, losing this worker fails the task as before)."""
        if self.written:
            return
        try:
            await self.log.put(self.entry, self.expires_at)
        except StorageError as exc:
            logger.warning("task %s: could not make it resumable yet: %s", self.entry.task_id, exc)
            return
        self.written = True

    async def record_answers(self, index: int, answers: Mapping[str, JsonValue]) -> None:
        """Journal the answers of the ``index``-th ``request_input`` call, for a re-run."""
        await self.ensure()
        if not self.written:
            return

        def append(entry: Entry) -> Entry:
            if len(entry.answers) != index:  # already journaled by an earlier run
                return entry
            return replace(entry, answers=(*entry.answers, dict(answers)))

        owner, task_id = self.entry.owner, self.entry.task_id
        try:
            await self.log.change(owner, task_id, append, self.expires_at)
        except StorageError as exc:
            logger.warning("task %s: its answers were not journaled: %s", task_id, exc)

    async def forget(self) -> None:
        """The task ended: its entry goes (a failure is logged; the entry expires with it)."""
        if not self.written:
            return
        try:
            await self.log.forget(self.entry.owner, self.entry.task_id)
        except StorageError as exc:
            logger.warning(
                "task %s: its resume entry stays until it expires: %s", self.entry.task_id, exc
            )


class ResumableContext(TaskContext):
    """The context of a resumable task: ``request_input`` answers from the journal first.

    Calls are numbered in order. A call whose answers are journaled returns them at once; a
    re-run's call that finds its questions still in the task (asked by the lost worker,
    answered or not) waits for those instead of asking again. So a handler that asks the
    same questions in the same order continues where the lost worker stopped.
    """

    def __init__(
        self,
        store: GenericTaskStore,
        registration: Registration,
        *,
        worker: str,
        clock: Callable[[], float],
    ) -> None:
        entry = registration.entry
        super().__init__(store, entry.owner, entry.task_id, worker=worker, clock=clock)
        self.registration = registration
        self.resumed = registration.entry.attempts > 1
        self._calls = 0

    @property
    def attempt(self) -> int:
        """Which start of the handler this is for the task (1 for the first run)."""
        return self.registration.entry.attempts

    async def request_input(
        self, requests: Mapping[str, JsonValue], status_message: str | None = None
    ) -> dict[str, JsonValue]:
        index = self._calls
        self._calls += 1
        journaled: Sequence[dict[str, JsonValue]] = self.registration.entry.answers
        if index < len(journaled):
            return dict(journaled[index])
        keys = await self._asked_before(requests) if self.resumed else None
        if keys is None:
            await self.registration.ensure()
            answers = await super().request_input(requests, status_message)
        else:
            answers = await self.wait_for_input(keys)
        await self.registration.record_answers(index, answers)
        return answers

    async def _asked_before(self, requests: Mapping[str, JsonValue]) -> dict[str, str] | None:
        """The keys under which the lost worker asked exactly these names, if it did."""
        record = await self.get()
        pending = [*record.input_requests, *record.input_responses]
        keys: dict[str, str] = {}
        for name in requests:
            mine = [key for key in pending if key.rpartition("#")[0] == name]
            if not mine:
                return None
            keys[name] = max(mine, key=_issued)
        return keys


def _issued(key: str) -> int:
    """The store's counter in an input key ``name#N``: the latest question has the largest."""
    counter = key.rpartition("#")[2]
    return int(counter) if counter.isdigit() else 0
