"""What several Redis test modules share: watching the commands a call sends."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis


async def monitored(
    redis_url: str, marker_client: Redis, action: Callable[[], Awaitable[Any]]
) -> list[dict[str, Any]]:
    """What MONITOR saw while ``action`` ran: every command, those of Lua scripts included
    (``client_type`` ``lua``), in order.

    ``marker_client`` must already be connected: it ends the window with an ECHO, and a fresh
    connection would add its own handshake to what is seen.
    """
    marker = f"end-of-action-{uuid.uuid4().hex}"
    watcher = Redis.from_url(redis_url)
    try:
        async with watcher.monitor() as monitor:
            await action()
            await marker_client.echo(marker)
            seen: list[dict[str, Any]] = []
            while True:
                command = await monitor.next_command()
                if marker in command["command"]:
                    return seen
                seen.append(command)
    finally:
        await watcher.aclose()
