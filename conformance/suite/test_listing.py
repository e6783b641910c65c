"""Kit suite: the ``listing`` area against every ``--backend``."""

from __future__ import annotations

from conformance.contract.listing import ListingContract
from conformance.suite import KitSuite


class TestListing(ListingContract, KitSuite):
    """See :class:`conformance.contract.listing.ListingContract`."""
