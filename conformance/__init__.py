"""The pmcp-tasks conformance kit: run ``pytest --backend=NAME`` to certify a StorageBackend.

Importing this package is cheap; ``BackendContract`` (which needs the ``testing`` extra:
pytest, Hypothesis, anyio) and ``KitTarget`` (what a factory returns to give the kit its
hooks) are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conformance.contract import BackendContract
    from conformance.harness import KitTarget

__all__ = ["BackendContract", "KitTarget"]


def __getattr__(name: str) -> Any:
    if name == "BackendContract":
        from conformance.contract import BackendContract

        return BackendContract
    if name == "KitTarget":
        from conformance.harness import KitTarget

        return KitTarget
    raise AttributeError(f"module 'conformance' has no attribute {name!r}")
