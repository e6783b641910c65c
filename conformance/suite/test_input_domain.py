"""Kit suite: the ``input_domain`` area against every ``--backend``."""

from __future__ import annotations

from conformance.contract.input_domain import InputDomainContract
from conformance.suite import KitSuite


class TestInputDomain(InputDomainContract, KitSuite):
    """See :class:`conformance.contract.input_domain.InputDomainContract`."""
