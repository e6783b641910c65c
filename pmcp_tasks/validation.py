"""Checks on everything a caller hands the store, before anything is written.

Each check raises a ``TaskError`` whose message names the offending part (``variables['a'][2]``)
and the limit, so that a tool author can fix the call from the error alone. Values must be plain
JSON as ``json.loads`` returns it (dict with str keys, list, str, 64-bit int, finite float,
bool, None): tuples, sets, bytes and the like would not round-trip, and would make canonical
bytes differ between a record and its reloaded copy.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

from pmcp_tasks.config import LONGEST_TTL, StoreConfig, is_seconds, shown
from pmcp_tasks.errors import (
    AnonymousOwnerRefused,
    TaskNotFound,
    TaskValidationError,
    TtlTooLarge,
)
from pmcp_tasks.ids import is_task_id

MAX_PATH_CHARS = 300
"""The longest path to a part of a value (``variables['a'][2]``) that a message shows."""
INT_MIN = -(2**63)
INT_MAX = 2**64 - 1

JsonValue = Any
"""A value that survives ``json.dumps``/``json.loads`` unchanged (checked at runtime)."""


def check_text(value: str, what: str) -> None:
    """Raise unless ``value`` encodes as UTF-8 (lone surrogates do not)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TaskValidationError(
            f"{what} is not valid Unicode text (lone surrogate at index {exc.start})"
        ) from None


def check_owner(owner: object, config: StoreConfig) -> str:
    """The owner string, or a client error: wrong type, not encodable, too long, anonymous."""
    if not isinstance(owner, str):
        raise TaskValidationError(f"owner must be a str, not {type(owner).__name__}")
    check_text(owner, "owner")
    size = len(owner.encode("utf-8"))
    if size > config.max_owner_bytes:
        raise TaskValidationError(
            f"owner is {size} bytes as UTF-8; the limit is {config.max_owner_bytes} "
            "(StoreConfig.max_owner_bytes): identify callers by a shorter id"
        )
    if owner in config.anonymous_owners and not config.allow_anonymous:
        raise AnonymousOwnerRefused(
            f"anonymous owner {shown(owner)} refused: identify the caller (for example by its "
            "authenticated user id) or build the store with StoreConfig(allow_anonymous=True)"
        )
    return owner


def check_task_id(task_id: object) -> str:
    """The task id; a string this store could never have issued is simply not found."""
    if not isinstance(task_id, str):
        raise TaskValidationError(f"task_id must be a str, not {type(task_id).__name__}")
    if not is_task_id(task_id):
        raise TaskNotFound(task_id)
    return task_id


def check_ttl(ttl: object, config: StoreConfig) -> float | None:
    """Seconds to keep the task, or ``None`` for unlimited where the config allows it."""
    if ttl is None:
        if not config.allow_unlimited_ttl:
            raise TaskValidationError(
                "ttl=None (keep forever) is not allowed by this store; pass a ttl of at most "
                f"{config.max_ttl:g} seconds"
            )
        return None
    if not is_seconds(ttl):
        raise TaskValidationError(f"ttl must be a finite number of seconds, not {shown(ttl)}")
    if ttl > config.max_ttl:
        raise TtlTooLarge(
            f"ttl of {shown(ttl)} seconds exceeds this store's maximum of {config.max_ttl:g} "
            "seconds; ask for a shorter ttl"
        )
    if ttl < config.min_ttl:
        raise TaskValidationError(
            f"ttl of {shown(ttl)} seconds is below this store's minimum of "
            f"{config.min_ttl:g} seconds; ask for a longer ttl"
        )
    return float(ttl)


def check_json(value: object, path: str, config: StoreConfig, depth: int = 0) -> None:
    """Raise unless ``value`` is plain JSON within the depth and string-size limits.

    ``depth`` counts the containers around ``value``; a variable's value may nest
    ``max_variable_depth`` containers (the variables map itself is not counted).
    """
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise TaskValidationError(
                f"{path} is an integer outside -2**63 .. 2**64-1, which JSON readers in other "
                "languages cannot hold; store it as a string"
            )
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TaskValidationError(f"{path} is {value!r}; JSON has no NaN or infinity")
        return
    if isinstance(value, str):
        _check_string(value, path, config)
        return
    if isinstance(value, (dict, list)):
        if depth >= config.max_variable_depth:
            raise TaskValidationError(
                f"{path} nests deeper than {config.max_variable_depth} levels; flatten it"
            )
        if isinstance(value, list):
            for index, item in enumerate(value):
                check_json(item, _child(path, index), config, depth + 1)
            return
        for key, item in value.items():
            if not isinstance(key, str):
                raise TaskValidationError(
                    f"{path} has a key {shown(key)} of type {type(key).__name__}; JSON object "
                    "keys must be str"
                )
            item_path = _child(path, key)
            _check_string(key, f"key of {item_path}", config)
            check_json(item, item_path, config, depth + 1)
        return
    raise TaskValidationError(
        f"{path} is a {type(value).__name__}, which is not JSON; use dict, list, str, int, "
        "float, bool or None"
    )


def _child(path: str, key: object) -> str:
    """The path of ``path``'s member ``key`` for messages, whatever the key and the depth.

    Each key is shown briefly, and a path past :data:`MAX_PATH_CHARS` loses its middle, so
    that long keys nested deep (``max_variable_depth`` is configurable) cannot make a long
    message.
    """
    child = f"{path}[{shown(key)}]"
    if len(child) <= MAX_PATH_CHARS:
        return child
    head = MAX_PATH_CHARS // 3
    return child[:head] + "..." + child[-(MAX_PATH_CHARS - head - 3) :]


def _check_string(value: str, path: str, config: StoreConfig) -> None:
    check_text(value, path)
    size = len(value.encode("utf-8"))
    if size > config.max_string_bytes:
        raise TaskValidationError(
            f"{path} is a string of {size} bytes; the limit is {config.max_string_bytes}"
        )


def check_changes(changes: object, config: StoreConfig) -> dict[str, JsonValue]:
    """A variables update: a mapping of str names to JSON values (``None`` deletes)."""
    if not isinstance(changes, Mapping):
        raise TaskValidationError(
            f"variables must be a mapping of names to JSON values, not {type(changes).__name__}"
        )
    checked: dict[str, JsonValue] = {}
    for name, value in changes.items():
        check_json(value, _child("variables", check_name(name, config)), config, depth=0)
        checked[name] = value
    return checked


def check_name(name: object, config: StoreConfig) -> str:
    """A variable name: a str within ``max_string_bytes``."""
    if not isinstance(name, str):
        raise TaskValidationError(
            f"variable name {shown(name)} is a {type(name).__name__}; names must be str"
        )
    _check_string(name, f"name of {_child('variables', name)}", config)
    return name


def merge_variables(
    current: Mapping[str, JsonValue], changes: Mapping[str, JsonValue]
) -> dict[str, JsonValue]:
    """Shallow merge: each change replaces its variable; a ``None`` change removes it."""
    merged = dict(current)
    for name, value in changes.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def check_lease(lease: object) -> float:
    """Seconds a worker's lease lasts between renewals, at most a century like any ttl."""
    if not is_seconds(lease) or not 0 < lease <= LONGEST_TTL:
        raise TaskValidationError(
            f"lease must be a number of seconds in (0, {LONGEST_TTL:.0f}], not {shown(lease)}"
        )
    return float(lease)


def check_worker(worker: object, config: StoreConfig) -> str:
    """A worker id: a non-empty str naming the process that runs a task's handler.

    It is stored in the task, so ``max_string_bytes`` bounds it like every other string.
    """
    if not isinstance(worker, str) or not worker:
        raise TaskValidationError(f"worker must be a non-empty str, not {shown(worker)}")
    _check_string(worker, "worker", config)
    return worker


def check_input_keys(keys: object, config: StoreConfig) -> list[str]:
    """The keys of delivered input responses to take: a collection of str.

    A single str is refused rather than read as a collection of one-character keys.
    """
    if isinstance(keys, (str, bytes, bytearray)) or not isinstance(keys, Collection):
        raise TaskValidationError(
            f"keys must be a collection of str such as a list, not {type(keys).__name__}"
        )
    checked: list[str] = []
    for key in keys:
        if not isinstance(key, str):
            raise TaskValidationError(
                f"keys holds {shown(key)} of type {type(key).__name__}; keys must be str"
            )
        _check_string(key, f"key {shown(key)}", config)
        checked.append(key)
    return checked


def check_input_object(values: object, what: str) -> dict[str, JsonValue]:
    """Input requests or responses as a whole: an object with str keys.

    Its values are judged by :func:`check_input_value`: every request, but only the responses
    under outstanding keys, since the others are ignored whatever they hold.
    """
    if not isinstance(values, Mapping):
        raise TaskValidationError(
            f"{what} must be an object of keys to objects, not {type(values).__name__}"
        )
    checked: dict[str, JsonValue] = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise TaskValidationError(
                f"{what} has a key {shown(key)} of type {type(key).__name__}; keys must be str"
            )
        checked[key] = value
    return checked


def check_input_value(what: str, key: str, value: object, config: StoreConfig) -> JsonValue:
    """One input request or response: a JSON object under a key within ``max_string_bytes``.

    Both are objects on the wire (a request has a ``method``; a response is a result such as
    ``{"action": "accept", ...}``), so a number or ``null`` in their place is a client error
    named by its key rather than something stored and handed to a handler later.
    """
    path = _child(what, key)
    _check_string(key, f"key of {path}", config)
    if not isinstance(value, dict):
        raise TaskValidationError(f"{path} must be an object, not {type(value).__name__}")
    check_json(value, path, config)
    return value


def check_input_requests(requests: object, config: StoreConfig) -> dict[str, JsonValue]:
    """Requests a handler asks the client to fulfil: each an object with a str ``method``."""
    checked = {
        key: check_input_value("input_requests", key, value, config)
        for key, value in check_input_object(requests, "input_requests").items()
    }
    if not checked:
        raise TaskValidationError("input_requests is empty; ask for at least one input")
    for key, request in checked.items():
        if not isinstance(request.get("method"), str):
            raise TaskValidationError(
                f"{_child('input_requests', key)} has no str 'method' (e.g. "
                f"'elicitation/create'); its keys are {shown(', '.join(sorted(request)))}"
            )
    return checked


def check_jsonrpc_error(error: object, config: StoreConfig) -> dict[str, JsonValue]:
    """A JSON-RPC error object: int ``code``, str ``message``, optional JSON ``data``."""
    if not isinstance(error, Mapping):
        raise TaskValidationError(
            f"error must be a JSON-RPC error object, not {type(error).__name__}"
        )
    for key in error:
        if not isinstance(key, str):
            raise TaskValidationError(
                f"error has a key {shown(key)} of type {type(key).__name__}; keys must be str"
            )
    code = error.get("code")
    message = error.get("message")
    extra = sorted(set(error) - {"code", "message", "data"})
    if isinstance(code, bool) or not isinstance(code, int) or not isinstance(message, str):
        raise TaskValidationError(
            f"error needs an int 'code' and a str 'message', got code={shown(code)}, "
            f"message={shown(message)}"
        )
    if extra:
        raise TaskValidationError(
            f"error has keys beyond code, message and data: {shown(', '.join(extra))}"
        )
    checked = dict(error)
    check_json(checked, "error", config)
    return checked
