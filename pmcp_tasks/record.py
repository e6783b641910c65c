"""A task as stored, and its two serialisations: canonical storage JSON and the MCP wire form.

Storage bytes are canonical JSON (sorted keys, compact separators, UTF-8, no NaN), so the same
record is the same bytes on every backend and a byte comparison is a record comparison. Times
are integer milliseconds: the wire format has millisecond precision, and integers have exactly
one JSON spelling where floats do not.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from pmcp_tasks.errors import INTERNAL_ERROR, StorageFailure
from pmcp_tasks.status import TaskStatus
from pmcp_tasks.validation import JsonValue

FORMAT_VERSION = 1
MAX_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: stored times and durations beyond it cannot be shown on the wire."""
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# One encoder for every call: ``json.dumps`` with options builds a new JSONEncoder each time,
# about 1 µs of a 5 µs record encoding (docs/performance.md). Encoding keeps no state.
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value: object) -> bytes:
    """The one byte spelling of a JSON value; ``ValueError`` on NaN or infinity."""
    return _ENCODER.encode(value).encode("utf-8")


def iso_ms(ms: int) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``, computed exactly from integer ms."""
    moment = _EPOCH + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One task. ``owner`` is kept in full so every read can check it (not just the key).

    ``ttl_ms`` is ``None`` for a task kept forever; ``result`` is meaningful only when
    ``has_result`` (a result may itself be JSON ``null``).

    The fields of the 2026-07-28 tasks extension: ``input_requests`` are the outstanding
    server-to-client requests by key, ``input_responses`` the answers the client delivered that
    the handler has not taken yet, ``input_keys_issued`` counts the keys ever minted (so a key is
    never reused over the task's life), ``error`` is the JSON-RPC error of a ``failed`` task,
    ``worker`` and ``lease_expires_ms`` name the process running the handler and when its lease
    runs out unless renewed. They are stored only when set, so records written before they
    existed keep their bytes.
    """

    task_id: str
    owner: str
    status: TaskStatus
    created_at_ms: int
    updated_at_ms: int
    ttl_ms: int | None
    status_message: str | None = None
    poll_interval_ms: int | None = None
    variables: dict[str, JsonValue] = field(default_factory=dict)
    has_result: bool = False
    result: JsonValue = None
    input_requests: dict[str, JsonValue] = field(default_factory=dict)
    input_responses: dict[str, JsonValue] = field(default_factory=dict)
    input_keys_issued: int = 0
    error: dict[str, JsonValue] | None = None
    worker: str | None = None
    lease_expires_ms: int | None = None

    @property
    def expires_at(self) -> float | None:
        """Epoch seconds at which the task stops existing (the backend's ``expires_at``)."""
        if self.ttl_ms is None:
            return None
        return (self.created_at_ms + self.ttl_ms) / 1000

    def to_json(self) -> bytes:
        """Canonical storage bytes."""
        document: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "taskId": self.task_id,
            "owner": self.owner,
            "status": self.status.value,
            "statusMessage": self.status_message,
            "createdAt": self.created_at_ms,
            "lastUpdatedAt": self.updated_at_ms,
            "ttl": self.ttl_ms,
            "pollInterval": self.poll_interval_ms,
            "variables": self.variables,
        }
        if self.has_result:
            document["result"] = self.result
        for name, value, unset in (
            ("inputRequests", self.input_requests, {}),
            ("inputResponses", self.input_responses, {}),
            ("inputKeysIssued", self.input_keys_issued, 0),
            ("error", self.error, None),
            ("worker", self.worker, None),
            ("leaseExpiresAt", self.lease_expires_ms, None),
        ):
            if value != unset:
                document[name] = value
        return canonical_json(document)

    @classmethod
    def from_json(cls, data: bytes, task_id: str) -> TaskRecord:
        """Parse stored bytes; anything malformed is a :class:`StorageFailure` naming the task."""
        try:
            document = decode_json(data)
            if not isinstance(document, dict) or document.get("v") != FORMAT_VERSION:
                raise ValueError(f"not a format-{FORMAT_VERSION} task document")
            record = cls(
                task_id=_typed(document, "taskId", str),
                owner=_typed(document, "owner", str),
                status=TaskStatus(document["status"]),
                created_at_ms=_ms(_typed(document, "createdAt", int), "createdAt", 0),
                updated_at_ms=_ms(_typed(document, "lastUpdatedAt", int), "lastUpdatedAt", 0),
                ttl_ms=_ms(_optional(document, "ttl", int), "ttl", 1),
                status_message=_optional(document, "statusMessage", str),
                poll_interval_ms=_ms(_optional(document, "pollInterval", int), "pollInterval", 0),
                variables=_typed(document, "variables", dict),
                has_result="result" in document,
                result=document.get("result"),
                input_requests=_optional(document, "inputRequests", dict) or {},
                input_responses=_optional(document, "inputResponses", dict) or {},
                input_keys_issued=_count(document.get("inputKeysIssued", 0)),
                error=_optional(document, "error", dict),
                worker=_optional(document, "worker", str),
                lease_expires_ms=_ms(
                    _optional(document, "leaseExpiresAt", int), "leaseExpiresAt", 0
                ),
            )
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            # UnicodeDecodeError and JSONDecodeError are ValueErrors.
            raise StorageFailure(
                f"the stored record of task {task_id!r} is corrupted ({exc}); it cannot be read"
            ) from exc
        if record.task_id != task_id:
            raise StorageFailure(
                f"the stored record of task {task_id!r} is corrupted (it names another task)"
            )
        return record

    def to_wire(self) -> dict[str, Any]:
        """The MCP 2025-11-25 ``Task`` object (``ttl`` in ms, present even when ``null``)."""
        return self._task_object("ttl", "pollInterval", self.poll_interval_ms is not None)

    def to_task(self) -> dict[str, Any]:
        """The ``Task`` of the 2026-07-28 tasks extension (``ttlMs`` present even when ``null``).

        This is also the body of a ``CreateTaskResult`` (plus ``resultType: "task"``). The
        extension wants a positive ``pollIntervalMs`` or none.
        """
        return self._task_object("ttlMs", "pollIntervalMs", bool(self.poll_interval_ms))

    def _task_object(self, ttl: str, poll_interval: str, with_poll: bool) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "taskId": self.task_id,
            "status": self.status.value,
            "createdAt": iso_ms(self.created_at_ms),
            "lastUpdatedAt": iso_ms(self.updated_at_ms),
            ttl: self.ttl_ms,
        }
        if self.status_message is not None:
            wire["statusMessage"] = self.status_message
        if with_poll:
            wire[poll_interval] = self.poll_interval_ms
        return wire

    def to_detailed_task(self) -> dict[str, Any]:
        """The extension's ``DetailedTask`` (``tasks/get``): the outcome inlined by status.

        ``input_required`` carries the outstanding ``inputRequests``; ``completed`` its
        ``result``; ``failed`` its JSON-RPC ``error``. A task failed through the 2025-11-25
        API has no stored error; the extension demands one, so its status message stands in.
        """
        wire = self.to_task()
        if self.status is TaskStatus.INPUT_REQUIRED:
            wire["inputRequests"] = self.input_requests
        elif self.status is TaskStatus.COMPLETED and self.has_result:
            wire["result"] = self.result
        elif self.status is TaskStatus.FAILED:
            wire["error"] = self.error or {
                "code": INTERNAL_ERROR,
                "message": self.status_message or "the task failed",
            }
        return wire

    def lease_expired(self, now_ms: int) -> bool:
        """Whether the task is unfinished and its worker stopped renewing its lease in time."""
        return (
            not self.status.is_terminal
            and self.lease_expires_ms is not None
            and self.lease_expires_ms < now_ms
        )


def _no_constant(name: str) -> Any:
    """``json.loads`` accepts NaN and Infinity, which we never write and could not write back."""
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    """``1e400`` parses as infinity, which could never be written back (``allow_nan=False``)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]!r} does not fit a 64-bit float")
    return value


# Built once, like _ENCODER: json.loads with an option builds a decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float)


def decode_json(data: bytes) -> Any:
    """Stored bytes as JSON that can be written back unchanged; ``ValueError`` for the rest.

    Not UTF-8, not JSON, NaN or infinity, a number too large for a float, an integer too long
    to parse, or nesting too deep for the parser: all ``ValueError``, so a caller handles one
    exception for anything a damaged record may hold.
    """
    try:
        return _DECODER.decode(data.decode("utf-8"))
    except RecursionError as exc:
        raise ValueError("the JSON nests too deeply to parse") from exc


def _ms(value: int | None, name: str, minimum: int) -> Any:
    if value is not None and not minimum <= value <= MAX_MS:
        raise ValueError(f"field {name!r} is {value}, outside {minimum}..{MAX_MS} ms")
    return value


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MS:
        raise ValueError(f"field 'inputKeysIssued' is {value!r}, not a count")
    return value


def _typed(document: dict[str, Any], name: str, kind: type) -> Any:
    value = document[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"field {name!r} is {type(value).__name__}, expected {kind.__name__}")
    return value


def _optional(document: dict[str, Any], name: str, kind: type) -> Any:
    return None if document.get(name) is None else _typed(document, name, kind)
