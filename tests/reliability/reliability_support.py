"""The backends every reliability test runs on, each on its embedded engine.

memory always; Redis on fakeredis and DynamoDB on moto in-process, through the kit factories of
their packages: every backend installed here (``servers.installed_backends``, which
``tests/test_extras.py`` holds to what the tox environment promises).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from conformance.harness import BackendFactory, fresh_namespace, open_target
from pmcp_tasks import StorageBackend
from pmcp_tasks.backend import Clock


def kit_factory(name: str) -> BackendFactory:
    """The named backend's kit factory."""
    module = importlib.import_module(f"reference_backends.{name}")
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
    target = await open_target(factory, namespace=namespace, clock=clock, **options)
    try:
        yield target.backend
    finally:
        await target.dispose()
