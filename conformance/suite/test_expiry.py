"""Kit suite: the ``expiry`` area against every ``--backend``."""

from __future__ import annotations

from conformance.contract.expiry import ExpiryContract
from conformance.suite import KitSuite


class TestExpiry(ExpiryContract, KitSuite):
    """See :class:`conformance.contract.expiry.ExpiryContract`."""
