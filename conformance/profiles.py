"""Hypothesis profiles shared by the kit and the project's own tests.

``dev`` is quick and random (find new bugs while iterating); ``ci`` is derandomized so a red
CI run is reproducible from its log; ``thorough`` is for release checks and for the counts the
docs quote. Select one with ``--hypothesis-profile NAME`` (Hypothesis' own pytest option) or
the ``HYPOTHESIS_PROFILE`` environment variable.

Every profile turns off the deadline and the ``too_slow`` health check: both measure the
machine, and on a loaded one they would fail a correct backend. The plugin runs every kit test
under one of these profiles, whichever route collected it (``--backend`` or a subclass of
``BackendContract`` in a project's own test file).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,  # backends over a network have latency spikes that are not bugs
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    "print_blob": True,
}

settings.register_profile("dev", max_examples=30, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("ci", max_examples=60, derandomize=True, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("thorough", max_examples=2000, **_COMMON)  # type: ignore[arg-type]


def default_profile_name() -> str:
    """``$HYPOTHESIS_PROFILE``, else ``ci`` when ``$CI`` is set, else ``dev``."""
    return os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")


def kit_profile_name(chosen: str | None) -> str:
    """The profile kit tests run under: the one named on the command line, else the default."""
    return chosen or default_profile_name()


def load_default_profile() -> None:
    """Load ``$HYPOTHESIS_PROFILE`` (``ci`` when ``$CI`` is set, else ``dev``)."""
    settings.load_profile(default_profile_name())


@contextmanager
def kit_profile(chosen: str | None) -> Iterator[None]:
    """Run a block under the kit's profile, then give the project back the profile it had."""
    previous = settings.get_current_profile_name()
    settings.load_profile(kit_profile_name(chosen))
    try:
        yield
    finally:
        settings.load_profile(previous)
