"""pmcp-tasks: durable MCP Tasks (spec 2025-11-25, and the 2026-07-28 tasks extension).

The storage contract (:class:`StorageBackend` and its errors) and the task domain written once
over it. The core imports only the standard library.
"""

from pmcp_tasks.backend import (
    MAX_VERSION,
    BackendCapabilities,
    Clock,
    StorageBackend,
    VersionedRecord,
)
from pmcp_tasks.config import StoreConfig
from pmcp_tasks.context import TaskContext
from pmcp_tasks.errors import (
    AnonymousOwnerRefused,
    BackendError,
    BackendUnavailable,
    CapacityExceeded,
    ConcurrentModification,
    InvalidCursor,
    InvalidTransition,
    NotFound,
    PmcpTasksError,
    ResultUnavailable,
    StorageError,
    StorageFailure,
    TaskCancelled,
    TaskError,
    TaskLimitExceeded,
    TaskNotFound,
    TaskValidationError,
    TtlTooLarge,
    VersionConflict,
)
from pmcp_tasks.keys import partition_prefix, task_key
from pmcp_tasks.record import TaskRecord
from pmcp_tasks.status import TERMINAL_STATUSES, TRANSITIONS, TaskStatus
from pmcp_tasks.store import UNSET, GenericTaskStore, Unset
from pmcp_tasks.validation import JsonValue

__all__ = [
    "MAX_VERSION",
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "UNSET",
    "AnonymousOwnerRefused",
    "BackendCapabilities",
    "BackendError",
    "BackendUnavailable",
    "CapacityExceeded",
    "Clock",
    "ConcurrentModification",
    "GenericTaskStore",
    "InvalidCursor",
    "InvalidTransition",
    "JsonValue",
    "NotFound",
    "PmcpTasksError",
    "ResultUnavailable",
    "StorageBackend",
    "StorageError",
    "StorageFailure",
    "StoreConfig",
    "TaskCancelled",
    "TaskContext",
    "TaskError",
    "TaskLimitExceeded",
    "TaskNotFound",
    "TaskRecord",
    "TaskStatus",
    "TaskValidationError",
    "TtlTooLarge",
    "Unset",
    "VersionConflict",
    "VersionedRecord",
    "partition_prefix",
    "task_key",
]
