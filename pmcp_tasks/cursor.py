"""Listing cursors: positions in the caller's own listing, not secrets.

A cursor is the id of the last task a page returned, plus a short fingerprint of the partition
it was issued for, in base64url. Anyone can compute one (it is not keyed), and that is safe:
the partition is always taken from the caller, never from the cursor, so a crafted cursor only
moves where the caller's own listing resumes. The fingerprint lets a cursor from another
owner's listing fail loudly instead of silently meaning a position. What paging guarantees
while tasks are created is in ``docs/domain.md`` ("Listing and cursors").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from pmcp_tasks.errors import InvalidCursor
from pmcp_tasks.ids import is_task_id

_MAX_CURSOR_CHARS = 256


def _fingerprint(partition: str) -> str:
    return hashlib.sha256(partition.encode("ascii")).hexdigest()[:16]


def encode_cursor(partition: str, after_task_id: str) -> str:
    """The cursor that resumes a listing of ``partition`` after ``after_task_id``."""
    payload = json.dumps({"a": after_task_id, "p": _fingerprint(partition)}, sort_keys=True)
    return base64.urlsafe_b64encode(payload.encode("ascii")).decode("ascii").rstrip("=")


def decode_cursor(partition: str, cursor: object) -> str:
    """The task id a cursor resumes after; :class:`InvalidCursor` for anything not ours."""
    invalid = InvalidCursor(
        "invalid cursor: pass back a nextCursor exactly as a previous listing by the same "
        "caller returned it, or omit it to start from the beginning"
    )
    if not isinstance(cursor, str) or not cursor or len(cursor) > _MAX_CURSOR_CHARS:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw.decode("ascii"))
    except (ValueError, binascii.Error):
        raise invalid from None
    if (
        not isinstance(payload, dict)
        or set(payload) != {"a", "p"}
        or payload["p"] != _fingerprint(partition)
        or not isinstance(payload["a"], str)
        or not is_task_id(payload["a"])
    ):
        raise invalid
    return payload["a"]
