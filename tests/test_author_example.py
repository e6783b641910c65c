"""The example backend of docs/conformance.md, taken from the page itself, passes the whole kit.

The block is executed as written (no copy lives in the tests), so an edit to the page that
breaks the example fails here. The base class's own promises that the kit cannot see, such as
an unexpected hook exception reaching the caller as ``BackendError``, are checked on it too.
"""

from __future__ import annotations

import json
import re
import types
from pathlib import Path
from typing import Any

import pytest

from conformance import BackendContract
from conformance.harness import BackendFactory, ManualClock
from pmcp_tasks import BackendBase, BackendError, RecordNotFound, StorageBackend

pytestmark = pytest.mark.anyio

_PAGE = Path(__file__).resolve().parents[1] / "docs" / "conformance.md"
_SECTION = "## Writing a backend: `BackendBase`"


def _example() -> types.ModuleType:
    text = _PAGE.read_text(encoding="utf-8")
    assert _SECTION in text, f"{_PAGE} lost its section {_SECTION!r}"
    section = text.split(_SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1, f"expected one python block in {_SECTION!r}, found {len(blocks)}"
    module = types.ModuleType("conformance_md_example")
    exec(compile(blocks[0], str(_PAGE), "exec"), module.__dict__)
    return module


EXAMPLE = _example()


class TestTheDocumentedExample(BackendContract):
    @pytest.fixture
    def backend_factory(self) -> BackendFactory:
        factory: BackendFactory = EXAMPLE.factory
        return factory


def test_the_example_is_a_storage_backend_on_the_base() -> None:
    backend = EXAMPLE.factory(namespace="n", clock=ManualClock())
    assert isinstance(backend, BackendBase)
    assert isinstance(backend, StorageBackend)


class _Faulty(EXAMPLE.DictBackend):  # type: ignore[name-defined,misc]
    """The example whose hooks fail the way a client library or a bug would."""

    def __init__(self, error: Exception) -> None:
        super().__init__(ManualClock())
        self.error = error
        self.calls: list[str] = []

    async def _get(self, key: str) -> Any:
        self.calls.append(key)
        raise self.error

    async def _list(self, partition: str, *args: Any) -> Any:
        self.calls.append(partition)
        raise self.error


async def test_an_unexpected_hook_error_becomes_a_backend_error_naming_the_call() -> None:
    cause = KeyError("version")
    backend = _Faulty(cause)
    with pytest.raises(BackendError) as raised:
        await backend.get("p:k")
    assert str(raised.value) == "_Faulty.get on 'p:k' failed: KeyError: 'version'"
    assert raised.value.__cause__ is cause
    with pytest.raises(BackendError, match=r"_Faulty\.list_by_prefix on 'p:' failed: KeyError"):
        await backend.list_by_prefix("p:")


async def test_storage_errors_from_a_hook_pass_unchanged() -> None:
    error = RecordNotFound("p:k")
    with pytest.raises(RecordNotFound) as raised:
        await _Faulty(error).get("p:k")
    assert raised.value is error


@pytest.mark.parametrize(
    "error",
    [
        ValueError("refused by the storage"),
        UnicodeEncodeError("utf-8", "p:a\ud800", 3, 4, "surrogates not allowed"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        json.JSONDecodeError("Expecting value", "{", 1),
    ],
    ids=lambda error: type(error).__name__,
)
async def test_a_value_error_from_a_hook_is_a_backend_fault_not_an_argument_error(
    error: ValueError,
) -> None:
    """The arguments were valid once the base accepted them: a driver that cannot encode an
    ``after`` holding a lone surrogate, or decode what it stored, is the backend's fault."""
    for call in (_Faulty(error).get("p:k"), _Faulty(error).list_by_prefix("p:", after="p:a\ud800")):
        with pytest.raises(BackendError) as raised:
            await call
        assert raised.value.__cause__ is error
        assert not isinstance(raised.value, ValueError)


async def test_arguments_are_refused_before_any_hook_runs() -> None:
    backend = _Faulty(RuntimeError("a hook ran"))
    with pytest.raises(ValueError, match="invalid key"):
        await backend.get("no-colon")
    with pytest.raises(ValueError, match="limit must be >= 1"):
        await backend.list_by_prefix("p:", limit=0)
    assert backend.calls == []


async def test_an_after_above_the_whole_partition_asks_the_storage_nothing() -> None:
    backend = _Faulty(RuntimeError("a hook ran"))
    assert await backend.list_by_prefix("p:", after="q") == []
    assert backend.calls == []
