"""The contract suite as mixin classes, one module per area, and their union.

``BackendContract`` is what a backend author subclasses to run the whole kit from a test file
of their own, providing only the factory::

    from conformance import BackendContract

    class TestMyBackend(BackendContract):
        @pytest.fixture
        def backend_factory(self):
            return my_factory          # (*, namespace, clock) -> backend, plain or async

``pytest --backend=NAME`` collects ``conformance/suite`` instead, one module per area, whose
classes get ``backend_factory`` from the command line.
"""

from __future__ import annotations

from conformance import plugin

# Before the test modules below evaluate their ``clause`` markers: register those names with the
# pytest run in progress (the plugin claims them only in runs that load the kit).
plugin.kit_loaded()

from conformance.contract.base import ContractFixtures  # noqa: E402
from conformance.contract.capabilities import CapabilitiesContract  # noqa: E402
from conformance.contract.cas import CasContract  # noqa: E402
from conformance.contract.cross_process import CrossProcessContract  # noqa: E402
from conformance.contract.damage import DamageContract  # noqa: E402
from conformance.contract.data import DataContract  # noqa: E402
from conformance.contract.delete import DeleteContract  # noqa: E402
from conformance.contract.domain import DomainContract  # noqa: E402
from conformance.contract.domain_inputs import DomainInputsContract  # noqa: E402
from conformance.contract.expiry import ExpiryContract  # noqa: E402
from conformance.contract.get_put import GetPutContract  # noqa: E402
from conformance.contract.input_domain import InputDomainContract  # noqa: E402
from conformance.contract.isolation import IsolationContract  # noqa: E402
from conformance.contract.keys import KeysContract  # noqa: E402
from conformance.contract.lifecycle import LifecycleContract  # noqa: E402
from conformance.contract.listing import ListingContract  # noqa: E402
from conformance.contract.races import RaceContract  # noqa: E402
from conformance.contract.shared import SharedContract  # noqa: E402
from conformance.contract.sizes import SizesContract  # noqa: E402
from conformance.contract.stateful import StatefulContract  # noqa: E402


class BackendContract(
    KeysContract,
    GetPutContract,
    CasContract,
    DeleteContract,
    ListingContract,
    ExpiryContract,
    SizesContract,
    DataContract,
    InputDomainContract,
    IsolationContract,
    SharedContract,
    CrossProcessContract,
    CapabilitiesContract,
    LifecycleContract,
    DamageContract,
    DomainContract,
    DomainInputsContract,
    StatefulContract,
    RaceContract,
    ContractFixtures,
):
    """Every contract test, ready to run once a subclass provides ``backend_factory``."""


__all__ = ["BackendContract", "ContractFixtures"]
