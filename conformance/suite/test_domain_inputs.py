"""Kit suite: the tasks-extension fields of the ``domain`` area against every ``--backend``."""

from __future__ import annotations

from conformance.contract.domain_inputs import DomainInputsContract
from conformance.suite import KitSuite


class TestDomainInputs(DomainInputsContract, KitSuite):
    """See :class:`conformance.contract.domain_inputs.DomainInputsContract`."""
