"""The contract suite as mixin classes, one module per area, and their union.

``BackendContract`` is what a backend author subclasses to run the whole kit from a test file
of their own, providing only the factory::

    from conformance import BackendContract

    class TestMyBackend(BackendContract):
        @pytest.fixture
        def backend_factory(self):
            return my_factory          # (*, namespace, clock) -> backend, plain or async

``pytest --backend=NAME`` collects ``conformance/suite`` instead, whose classes get
``backend_factory`` from the command line.
"""

from __future__ import annotations

from conformance.contract.base import ContractFixtures
from conformance.contract.keys import KeysContract
from conformance.contract.races import RaceContract
from conformance.contract.stateful import StatefulContract

AREA_CONTRACTS: dict[str, type] = {
    "keys": KeysContract,
    "stateful": StatefulContract,
    "races": RaceContract,
}
"""Area name -> mixin; the suite has one module per entry."""


class BackendContract(KeysContract, StatefulContract, RaceContract, ContractFixtures):
    """Every contract test, ready to run once a subclass provides ``backend_factory``."""


__all__ = ["AREA_CONTRACTS", "BackendContract", "ContractFixtures"]
