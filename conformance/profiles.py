"""Hypothesis profiles shared by the kit and the project's own tests.

``dev`` is quick and random (find new bugs while iterating); ``ci`` is derandomized so a red
CI run is reproducible from its log; ``thorough`` is for release checks and for the counts the
docs quote. Select one with ``--hypothesis-profile NAME`` (Hypothesis' own pytest option) or
the ``HYPOTHESIS_PROFILE`` environment variable.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,  # backends over a network have latency spikes that are not bugs
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    "print_blob": True,
}

settings.register_profile("dev", max_examples=30, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("ci", max_examples=60, derandomize=True, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("thorough", max_examples=2000, **_COMMON)  # type: ignore[arg-type]


def load_default_profile() -> None:
    """Load ``$HYPOTHESIS_PROFILE`` (``ci`` when ``$CI`` is set, else ``dev``)."""
    default = "ci" if os.environ.get("CI") else "dev"
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", default))
