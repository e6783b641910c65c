"""The two documented routes into the kit run the same tests.

``pytest --backend=NAME`` collects ``conformance/suite``, one module per area; a project's own
test file subclasses :class:`conformance.BackendContract`. An area added to one and not the
other would leave its clauses "untested" on the other route without a word.
"""

from __future__ import annotations

import importlib
import inspect

from conformance import BackendContract
from conformance.plugin import SUITE_DIR


def _tests(cls: type) -> set[str]:
    return {name for name, _ in inspect.getmembers(cls) if name.startswith("test_")}


def test_backend_contract_runs_every_test_of_the_suite() -> None:
    suite: set[str] = set()
    for path in sorted(SUITE_DIR.glob("test_*.py")):
        module = importlib.import_module(f"conformance.suite.{path.stem}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__:
                suite |= _tests(cls)
    assert len(suite) > 100
    assert suite == _tests(BackendContract), suite ^ _tests(BackendContract)
