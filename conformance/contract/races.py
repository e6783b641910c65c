"""CAS race fuzzing checked with the kit's own linearizability checker."""

from __future__ import annotations


class RaceContract:
    """Concurrent schedules checked for linearizability (KV-CAS-5, KV-PUT-2, KV-SHARED-1)."""
