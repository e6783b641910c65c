"""pmcp-tasks: durable MCP Tasks (spec 2025-11-25) over pluggable storage.

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
from pmcp_tasks.errors import (
    AnonymousOwnerRefused,
    BackendError,
    CapacityExceeded,
    ConcurrentModification,
    InvalidCursor,
    InvalidTransition,
    NotFound,
    StorageError,
    StorageFailure,
    TaskError,
    TaskLimitExceeded,
    TaskNotFound,
    TaskValidationError,
    TtlTooLarge,
    VersionConflict,
)
from pmcp_tasks.keys import partition_prefix, task_key

__all__ = [
    "MAX_VERSION",
    "AnonymousOwnerRefused",
    "BackendCapabilities",
    "BackendError",
    "CapacityExceeded",
    "Clock",
    "ConcurrentModification",
    "InvalidCursor",
    "InvalidTransition",
    "NotFound",
    "StorageBackend",
    "StorageError",
    "StorageFailure",
    "TaskError",
    "TaskLimitExceeded",
    "TaskNotFound",
    "TaskValidationError",
    "TtlTooLarge",
    "VersionConflict",
    "VersionedRecord",
    "partition_prefix",
    "task_key",
]
