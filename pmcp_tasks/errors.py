"""Errors of both layers, under one root: ``except PmcpTasksError`` catches anything we raise.

Storage errors are what a backend may raise (besides ``ValueError`` for bad arguments).
Task errors are what ``GenericTaskStore`` raises to a server; each carries the JSON-RPC code the
server should answer with: -32602 for anything the client can fix, -32603 for storage trouble.
"""

from __future__ import annotations

from datetime import datetime, timezone

from pmcp_tasks.config import shown

INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class PmcpTasksError(Exception):
    """Root of every error pmcp-tasks raises on purpose, whichever layer it comes from."""


class StorageError(PmcpTasksError):
    """Base of everything a backend raises on purpose."""


class RecordNotFound(StorageError):
    """``put_if_version`` with ``expected_version >= 1`` on a key with no live record."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no live record at key {key!r}")
        self.key = key


NotFound = RecordNotFound
"""The earlier name of ``RecordNotFound``, which nothing told apart from ``TaskNotFound``;
kept so that backends written against it still import and raise the same class."""


class VersionConflict(StorageError):
    """``put_if_version`` lost: ``actual`` is the real current version (0 never appears)."""

    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(f"version conflict at key {key!r}: expected {expected}, stored {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class CapacityExceeded(StorageError):
    """The write is larger than the backend can hold; nothing was written."""


class BackendError(StorageError):
    """The storage system failed; raised ``from`` the underlying exception."""


class BackendUnavailable(BackendError):
    """The storage system could not be reached before the call was sent: it did not happen.

    Unlike any other ``BackendError``, whose call may have taken effect (a lost reply), this
    one is known not to have: a caller need not read back to find out.
    """


class TaskError(PmcpTasksError):
    """Base of the errors ``GenericTaskStore`` raises; ``code`` is the JSON-RPC error code."""

    code: int = INVALID_PARAMS

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_jsonrpc(self) -> dict[str, object]:
        """The ``error`` member of a JSON-RPC response."""
        return {"code": self.code, "message": self.message}


class TaskNotFound(TaskError):
    """Missing, expired, or another owner's task: the three are indistinguishable on purpose."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task not found: {shown(task_id)}")
        self.task_id = task_id


class InvalidTransition(TaskError):
    """A status change the MCP task lifecycle does not allow; the message suggests what to do."""


class InvalidCursor(TaskError):
    """A pagination cursor this store did not hand out (or for another owner)."""


class ResultUnavailable(TaskError):
    """``get_result`` on a task that has no result (yet): still running, cancelled, or failed."""


class TaskValidationError(TaskError):
    """Input that breaks a limit or is not plain JSON (variables, ids, result, ...)."""


class TtlTooLarge(TaskValidationError):
    """A requested TTL above ``StoreConfig.max_ttl``; rejected, never clamped."""


class AnonymousOwnerRefused(TaskError):
    """An anonymous owner (``""``, ``"local"``) where the config does not allow one."""


class TaskLimitExceeded(TaskError):
    """The owner is at its cap: ``StoreConfig.max_tasks_per_owner`` unfinished tasks."""


class ConcurrentModification(TaskError):
    """The task kept changing under us; retried a bounded number of times, then gave up."""

    code = INTERNAL_ERROR

    def __init__(
        self, task_id: str, expected: int, actual: int, *, message: str | None = None
    ) -> None:
        super().__init__(
            message
            or f"task {task_id!r} was modified concurrently (expected version {expected}, "
            f"found {actual}); retry the request"
        )
        self.task_id = task_id
        self.expected = expected
        self.actual = actual


class StorageFailure(TaskError):
    """A storage error surfaced to the server; ``__cause__`` is the ``StorageError``."""

    code = INTERNAL_ERROR


class TaskCancelled(TaskError):
    """Raised by a ``TaskContext`` call once its task was cancelled (e.g. ``tasks/cancel``).

    Cancellation is cooperative: the handler's next call on its context raises this, so the
    work stops at a point the handler chose, and whatever it would still write is dropped.
    """

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id!r} was cancelled; stop working on it")
        self.task_id = task_id


class LeaseLost(TaskError):
    """A worker wrote to a task whose lease another worker now holds; nothing was written.

    The lease fences a task's handler: only the worker named in the record may renew it or
    store its outcome, so that once another instance took the task over, a worker that was
    paused or cut off cannot also write a result. The worker should stop its handler.
    """

    code = INTERNAL_ERROR

    def __init__(self, task_id: str, worker: str, holder: str) -> None:
        super().__init__(
            f"task {task_id!r} is leased to worker {holder[:200]!r}, not {worker[:200]!r}: "
            "this worker lost it, so its handler must stop and its writes are refused"
        )
        self.task_id = task_id
        self.worker = worker
        self.holder = holder


class ClockSkewExceeded(TaskError):
    """This process's clock and the storage server's disagree by more than the tolerance.

    Expiry, the cap and leases compare times written by different processes, so a store whose
    clock is off by more than ``StoreConfig.max_clock_skew`` would delete live tasks, fail
    healthy leases or lock owners out; it refuses every call instead until the host's clock is
    fixed (docs/reliability.md, "Clock skew"). A server-side problem, hence -32603.
    """

    code = INTERNAL_ERROR

    def __init__(self, local: float, server: float, tolerance: float) -> None:
        super().__init__(
            f"this process's clock reads {_utc(local)} but the storage server's reads "
            f"{_utc(server)}: {local - server:+.3f} s apart, more than "
            f"StoreConfig.max_clock_skew ({tolerance:g} s) allows; synchronise this host's "
            "clock (NTP) or raise max_clock_skew"
        )
        self.local = local
        self.server = server
        self.tolerance = tolerance


def _utc(seconds: float) -> str:
    """An epoch time as ISO 8601 UTC with milliseconds, and the number itself."""
    try:
        moment = datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds")
    except (OverflowError, ValueError, OSError):  # a test clock beyond year 9999
        return f"{seconds:.3f}"
    return f"{moment} ({seconds:.3f})"
