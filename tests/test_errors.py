"""One error root: a caller can catch everything pmcp-tasks raises on purpose with one class."""

from __future__ import annotations

import inspect

import pmcp_tasks
from pmcp_tasks import PmcpTasksError, StorageError, TaskError


def test_every_exported_error_shares_one_root() -> None:
    errors = [
        value
        for value in vars(pmcp_tasks).values()
        if inspect.isclass(value) and issubclass(value, BaseException)
    ]
    assert StorageError in errors
    assert TaskError in errors
    outside = [error.__name__ for error in errors if not issubclass(error, PmcpTasksError)]
    assert outside == []
