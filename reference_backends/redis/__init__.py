"""Redis reference backend (extra ``redis``): see ``docs/backends/redis.md``."""

from __future__ import annotations

try:
    import redis.asyncio  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by the extras isolation tests
    raise ImportError(
        "reference_backends.redis needs redis-py >= 5: pip install 'pmcp-tasks[redis]'"
    ) from exc

from reference_backends.redis.backend import RedisBackend
from reference_backends.redis.kit import kit_factory

__all__ = ["RedisBackend", "kit_factory"]
