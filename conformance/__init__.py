"""The pmcp-tasks conformance kit: run ``pytest --backend=NAME`` to certify a StorageBackend.

Importing this package is cheap; ``BackendContract`` (which needs the ``testing`` extra:
pytest, Hypothesis, anyio) is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conformance.contract import BackendContract

__all__ = ["BackendContract"]


def __getattr__(name: str) -> Any:
    if name == "BackendContract":
        from conformance.contract import BackendContract

        return BackendContract
    raise AttributeError(f"module 'conformance' has no attribute {name!r}")
