"""What ``pytest --backend=NAME`` collects: one module per contract area.

Each module holds one class, the area's mixin plus :class:`KitSuite`, which takes the backends
from the command line. The modules are tiny on purpose: the tests live in
:mod:`conformance.contract`, where third parties can reuse them.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

from conformance.contract.base import ContractFixtures
from conformance.harness import BackendFactory
from conformance.plugin import selected_backends
from conformance.registry import SelectedBackend


class KitSuite(ContractFixtures):
    """Parametrizes ``backend_factory`` over every ``--backend`` name (test ids = names)."""

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "backend_factory" in metafunc.fixturenames:
            selected = selected_backends(metafunc.config)
            metafunc.parametrize(
                "backend_factory", selected, indirect=True, ids=[b.name for b in selected]
            )

    @pytest.fixture
    def backend_factory(self, request: pytest.FixtureRequest) -> BackendFactory:
        selected: SelectedBackend = request.param
        factory: Any = functools.partial(selected.factory, **selected.options)
        return factory  # type: ignore[no-any-return]
