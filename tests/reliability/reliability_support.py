"""The backends every reliability test runs on, each on its embedded engine.

memory always; Redis on fakeredis and DynamoDB on moto in-process, through the kit factories of
their packages. A tox environment without a backend's extra skips that backend with the reason;
with the extra installed the backend is always included.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from conformance.harness import (
    BackendFactory,
    SupportsDropNamespace,
    fresh_namespace,
    open_backend,
)
from pmcp_tasks import StorageBackend
from pmcp_tasks.backend import Clock

BACKENDS = {
    "memory": ("reference_backends.memory", "no extra"),
    "redis": ("reference_backends.redis", "testing-redis"),
    "dynamodb": ("reference_backends.dynamodb", "testing-dynamodb"),
}


def kit_factory(name: str) -> BackendFactory:
    """The named backend's kit factory, or a skip naming the extra this environment lacks."""
    module_name, extra = BACKENDS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        pytest.skip(f"the {name} backend needs the {extra!r} extra, not installed here: {exc}")
    factory: BackendFactory = module.kit_factory
    return factory


@asynccontextmanager
async def opened(
    factory: BackendFactory,
    clock: Clock,
    label: str = "rel",
    *,
    namespace: str | None = None,
    **options: str,
) -> AsyncIterator[StorageBackend]:
    """A backend on a fresh namespace (or on ``namespace``), emptied and closed afterwards."""
    namespace = fresh_namespace(label) if namespace is None else namespace
    backend = await open_backend(factory, namespace=namespace, clock=clock, **options)
    try:
        yield backend
    finally:
        if isinstance(backend, SupportsDropNamespace):
            await backend.kit_drop_namespace()
        await backend.aclose()
