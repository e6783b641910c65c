"""Keys and argument validation (KV-KEY-*, KV-ARG-*): bad input is ``ValueError`` everywhere."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import pytest

from conformance.contract.base import Timeline, listed_keys, stored
from pmcp_tasks.backend import MAX_VERSION, StorageBackend

Call = Callable[[], Awaitable[object]]

BAD_KEYS: tuple[object, ...] = (
    "",
    "nocolon",
    ":item",
    "part:",
    ":",
    "a:b:c",
    "a b:c",
    "a:b c",
    "a*:b",
    "a:b*",
    "a:b?",
    "{a}:b",
    "a:{b}",
    "a:b/c",
    "a:\u00e9",
    "a:b\n",
    "a:b\x00",
    b"a:b",
    None,
    1,
)
ALPHABET = "ABCXYZabcxyz0189_.~%-"


async def value_error_problem(description: str, call: Call) -> str | None:
    """``None`` when ``call`` raises ``ValueError``; otherwise what happened instead."""
    try:
        await call()
    except ValueError:
        return None
    except Exception as exc:  # any other type is exactly what the clause forbids
        return f"{description} raised {type(exc).__name__}: {exc} (expected ValueError)"
    return f"{description} was accepted (expected ValueError)"


async def assert_all_value_errors(calls: list[tuple[str, Call]]) -> None:
    problems = [problem for d, c in calls if (problem := await value_error_problem(d, c))]
    assert not problems, "\n".join(problems)


def _key_calls(backend: StorageBackend, key: object) -> list[tuple[str, Call]]:
    loose: Any = backend  # the kit passes wrong types on purpose
    return [
        (f"get({key!r})", partial(loose.get, key)),
        (f"put({key!r}, ...)", partial(loose.put, key, b"x")),
        (f"put_if_version({key!r}, ..., 0)", partial(loose.put_if_version, key, b"x", 0)),
        (f"put_if_version({key!r}, ..., 1)", partial(loose.put_if_version, key, b"x", 1)),
        (f"delete({key!r})", partial(loose.delete, key)),
    ]


class KeysContract:
    """Keys and arguments."""

    pytestmark = pytest.mark.anyio

    @pytest.mark.pmcp_clause("KV-KEY-1")
    async def test_malformed_keys_raise_value_error_from_every_method(
        self, backend: StorageBackend
    ) -> None:
        calls = [call for key in BAD_KEYS for call in _key_calls(backend, key)]
        await assert_all_value_errors(calls)

    @pytest.mark.pmcp_clause("KV-KEY-1")
    async def test_every_character_of_the_alphabet_is_a_valid_key(
        self, backend: StorageBackend
    ) -> None:
        keys = [f"{ALPHABET}:{ALPHABET}", "a:b", "A:B", "0:0", "%:%", "~:~", "-:.", "_:_"]
        for key in keys:
            assert await backend.put(key, key.encode()) == 1, key
        for key in keys:
            assert await stored(backend, key) == (key.encode(), 1, None), key

    @pytest.mark.pmcp_clause("KV-KEY-2")
    async def test_key_of_1024_bytes_is_accepted(self, backend: StorageBackend) -> None:
        key = "p:" + "k" * 1022
        assert len(key.encode()) == 1024
        assert await backend.put(key, b"long") == 1
        assert await stored(backend, key) == (b"long", 1, None)
        listed = await backend.list_by_prefix("p:")
        assert [k for k, _ in listed] == [key]

    @pytest.mark.pmcp_clause("KV-KEY-2")
    async def test_key_over_1024_bytes_raises_value_error(self, backend: StorageBackend) -> None:
        for key in ("p:" + "k" * 1023, "p" * 1023 + ":k", "p:" + "k" * 5000):
            await assert_all_value_errors(_key_calls(backend, key))
        assert await backend.list_by_prefix("p:") == []

    @pytest.mark.pmcp_clause("KV-KEY-3")
    async def test_keys_differing_in_punctuation_are_distinct(
        self, backend: StorageBackend
    ) -> None:
        items = ["a%2A", "a.2A", "a~2A", "a-2A", "a_2A", "a2A", "A%2a", "a%7Bx%7D", "%7Ba%7D", "a"]
        keys = [f"p:{item}" for item in items] + [f"{p}:x" for p in ("q%7B", "q.", "q~", "Q")]
        for key in keys:
            assert await backend.put(key, key.encode()) == 1, f"{key!r} collided with another key"
        for key in keys:
            assert await stored(backend, key) == (key.encode(), 1, None), key
        listed = await backend.list_by_prefix("p:")
        assert sorted(k for k, _ in listed) == sorted(k for k in keys if k.startswith("p:"))

    @pytest.mark.pmcp_clause("KV-KEY-3")
    async def test_keys_differing_only_in_the_case_of_a_percent_escape_are_distinct(
        self, backend: StorageBackend
    ) -> None:
        """``%2a`` and ``%2A`` decode alike, but keys are not decoded: they are two records."""
        keys = ["p:a%2a", "p:a%2A", "p:%7e", "p:%7E", "%2f:x", "%2F:x", "p:%c3%a9", "p:%C3%A9"]
        for key in keys:
            got = await backend.put(key, key.encode())
            assert got == 1, f"put({key!r}) returned version {got}: it collided with another key"
        for key in keys:
            got_record = await stored(backend, key)
            assert got_record == (key.encode(), 1, None), f"get({key!r}) returned {got_record}"
        listed = await listed_keys(backend, "p:")
        want = sorted(k for k in keys if k.startswith("p:"))
        assert listed == want, f"list_by_prefix('p:') returned {listed}, want {want}"
        listed = await listed_keys(backend, "%2f:")
        assert listed == ["%2f:x"], f"list_by_prefix('%2f:') returned {listed}"

    @pytest.mark.pmcp_clause("KV-KEY-3")
    async def test_glob_like_prefix_characters_match_literally(
        self, backend: StorageBackend
    ) -> None:
        for item in ("a%", "a%2A", "ab", "a.", "a.x", "ax"):
            await backend.put(f"p:{item}", b"")
        assert await listed_keys(backend, "p:a%") == ["p:a%", "p:a%2A"]
        assert await listed_keys(backend, "p:a.") == ["p:a.", "p:a.x"]

    @pytest.mark.pmcp_clause("KV-ARG-1")
    async def test_data_must_be_bytes(self, backend: StorageBackend) -> None:
        loose: Any = backend
        for data in ("text", bytearray(b"x"), memoryview(b"x"), None, 1, [1]):
            await assert_all_value_errors(
                [
                    (f"put(key, {data!r})", partial(loose.put, "p:k", data)),
                    (
                        f"put_if_version(key, {data!r}, 0)",
                        partial(loose.put_if_version, "p:k", data, 0),
                    ),
                ]
            )
        assert await backend.get("p:k") is None, "a rejected write stored something"

    @pytest.mark.pmcp_clause("KV-ARG-1")
    async def test_rejected_data_leaves_existing_record_alone(
        self, backend: StorageBackend
    ) -> None:
        await backend.put("p:k", b"original")
        loose: Any = backend
        await assert_all_value_errors(
            [
                ("put(key, 'text')", partial(loose.put, "p:k", "text")),
                ("put_if_version(key, 'text', 1)", partial(loose.put_if_version, "p:k", "text", 1)),
            ]
        )
        assert await stored(backend, "p:k") == (b"original", 1, None)

    @pytest.mark.pmcp_clause("KV-ARG-2")
    async def test_expected_version_must_be_an_int_in_range(self, backend: StorageBackend) -> None:
        await backend.put("p:k", b"x")
        loose: Any = backend
        await assert_all_value_errors(
            [
                (f"put_if_version(key, data, {v!r})", partial(loose.put_if_version, "p:k", b"y", v))
                for v in (True, False, -1, MAX_VERSION + 1, 1.0, "1", None)
            ]
        )
        assert await stored(backend, "p:k") == (b"x", 1, None)

    @pytest.mark.pmcp_clause("KV-ARG-3")
    async def test_expires_at_must_be_a_finite_number_or_none(
        self, backend: StorageBackend
    ) -> None:
        loose: Any = backend
        calls: list[tuple[str, Call]] = []
        for value in (True, False, math.nan, math.inf, -math.inf, "1", b"1", [1.0]):
            calls.append(
                (
                    f"put(..., expires_at={value!r})",
                    partial(loose.put, "p:k", b"x", expires_at=value),
                )
            )
            calls.append(
                (
                    f"put_if_version(..., 0, expires_at={value!r})",
                    partial(loose.put_if_version, "p:k", b"x", 0, expires_at=value),
                )
            )
        await assert_all_value_errors(calls)
        assert await backend.get("p:k") is None, "a write with a rejected expires_at stored data"

    @pytest.mark.pmcp_clause("KV-ARG-3")
    async def test_int_and_float_expiries_are_accepted(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        later = int(timeline.later())
        assert await backend.put("p:int", b"i", expires_at=later) == 1
        assert await backend.put("p:float", b"f", expires_at=later + 0.25) == 1
        for key in ("p:int", "p:float"):
            assert await backend.get(key) is not None, f"{key} with a future expiry is not live"

    @pytest.mark.pmcp_clause("KV-ARG-4")
    async def test_after_and_limit_are_validated(self, backend: StorageBackend) -> None:
        loose: Any = backend
        calls: list[tuple[str, Call]] = [
            (f"list_by_prefix('p:', after={a!r})", partial(loose.list_by_prefix, "p:", after=a))
            for a in (1, b"p:a", ["p:a"])
        ]
        calls += [
            (f"list_by_prefix('p:', limit={n!r})", partial(loose.list_by_prefix, "p:", limit=n))
            for n in (0, -1, True, False, 1.5, "1")
        ]
        await assert_all_value_errors(calls)
