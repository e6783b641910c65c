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

from conformance.contract.base import ContractFixtures
from conformance.contract.capabilities import CapabilitiesContract
from conformance.contract.cas import CasContract
from conformance.contract.cross_process import CrossProcessContract
from conformance.contract.damage import DamageContract
from conformance.contract.data import DataContract
from conformance.contract.delete import DeleteContract
from conformance.contract.domain import DomainContract
from conformance.contract.domain_inputs import DomainInputsContract
from conformance.contract.expiry import ExpiryContract
from conformance.contract.get_put import GetPutContract
from conformance.contract.input_domain import InputDomainContract
from conformance.contract.isolation import IsolationContract
from conformance.contract.keys import KeysContract
from conformance.contract.lifecycle import LifecycleContract
from conformance.contract.listing import ListingContract
from conformance.contract.races import RaceContract
from conformance.contract.shared import SharedContract
from conformance.contract.sizes import SizesContract
from conformance.contract.stateful import StatefulContract


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
