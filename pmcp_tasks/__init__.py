"""pmcp-tasks: durable MCP Tasks (spec 2025-11-25, and the 2026-07-28 tasks extension).

The storage contract (:class:`StorageBackend`, its errors, and :class:`BackendBase` with the
helpers a backend author needs) and the task domain written once over it. The core imports
only the standard library.
"""

from pmcp_tasks.backend import (
    MAX_VERSION,
    BackendCapabilities,
    Clock,
    StorageBackend,
    VersionedRecord,
    is_live,
)
from pmcp_tasks.backend_base import BackendBase, next_version, skip_damaged
from pmcp_tasks.config import StoreConfig
from pmcp_tasks.context import TaskContext
from pmcp_tasks.errors import (
    AnonymousOwnerRefused,
    BackendError,
    BackendUnavailable,
    CapacityExceeded,
    ClockSkewExceeded,
    ConcurrentModification,
    InvalidCursor,
    InvalidTransition,
    LeaseLost,
    NotFound,
    PmcpTasksError,
    RecordNotFound,
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
from pmcp_tasks.keys import (
    check_data,
    check_expected_version,
    check_expires_at,
    check_key,
    check_page,
    check_prefix,
    check_size,
    partition_prefix,
    split_key,
    task_key,
)
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
    "BackendBase",
    "BackendCapabilities",
    "BackendError",
    "BackendUnavailable",
    "CapacityExceeded",
    "Clock",
    "ClockSkewExceeded",
    "ConcurrentModification",
    "GenericTaskStore",
    "InvalidCursor",
    "InvalidTransition",
    "JsonValue",
    "LeaseLost",
    "NotFound",
    "PmcpTasksError",
    "RecordNotFound",
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
    "check_data",
    "check_expected_version",
    "check_expires_at",
    "check_key",
    "check_page",
    "check_prefix",
    "check_size",
    "is_live",
    "next_version",
    "partition_prefix",
    "skip_damaged",
    "split_key",
    "task_key",
]
