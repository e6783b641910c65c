"""Hypothesis state machine that drives a backend and an independent model side by side."""

from __future__ import annotations


class StatefulContract:
    """Stateful tests (KV-PUT-1, KV-CAS-*, KV-DEL-1, KV-LIST-*, KV-CLEAN-*) against a model."""
