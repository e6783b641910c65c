"""Broken backends for delete's answer.

``conformance/suite/test_delete.py`` must fail each one on the clause its ``@zoo`` declares
(``tests/kit/test_teeth.py``).
"""

from __future__ import annotations

from .base import Seedable, zoo


@zoo("delete_always_true", breaks="KV-DEL-1")
class DeleteAlwaysTrue(Seedable):
    """delete reports success whether or not anything was there."""

    async def delete(self, key: str) -> bool:
        await super().delete(key)
        return True
