"""Deliberately broken backends: each one breaks exactly one clause of the contract.

They are the kit's teeth: ``tests/kit/test_teeth.py`` runs the kit against each and expects it
to fail on the clause its ``@zoo`` declares. Each is the reference backend with one method
changed, written the way a plausible bug would look, not as a caricature. The modules mirror
``conformance/contract/``: a backend lives in the module of the area whose suite must catch it.

``--backend broken_backends:<name>`` resolves ``<name>`` to that backend's kit factory here.
"""

from __future__ import annotations

from typing import Any

from . import (  # noqa: F401  (each module declares its backends when imported)
    capabilities,
    cas,
    cross_process,
    damage,
    data,
    delete,
    expiry,
    get_put,
    input_domain,
    isolation,
    keys,
    lifecycle,
    listing,
    races,
    shared,
    sizes,
)
from .base import BROKEN, FACTORIES, Broken, factory_for

__all__ = ["BROKEN", "Broken", "factory_for"]


def __getattr__(name: str) -> Any:
    """A zoo backend's kit factory by its zoo name (``broken_backends:<name>``)."""
    try:
        return FACTORIES[name]
    except KeyError:
        raise AttributeError(f"no zoo backend is named {name!r} in {__name__}") from None
