"""Cancel notices over Redis pub/sub (:class:`~pmcp_tasks.notify.CancelNotifier`).

Every instance subscribes to one channel per namespace; ``tasks/cancel`` on any of them
publishes the task's key, and the instance running that task reads it at once instead of at
its next watch interval. Pub/sub delivers at most once to the subscribers connected at that
moment: a notice lost while a subscriber reconnects costs only latency, since the worker's
periodic read still finds the cancel in the store.

On a Redis Cluster, classic pub/sub is cluster-wide (a node forwards what is published to it
to every other node), so each instance publishes and subscribes on one node, its URL's seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from reference_backends.redis.connect import seed_node_url

logger = logging.getLogger("pmcp_tasks.redis")

RECONNECT_PAUSE = 1.0
"""Seconds between attempts to subscribe again after the connection failed."""


class RedisNotifier:
    """Publishes and receives task keys on the channel ``<namespace>:cancel``.

    It has its own client (a subscribed connection can run no other command), so it is made
    from a URL; :meth:`aclose` closes it.
    """

    def __init__(self, client: Redis, *, namespace: str = "pmcp") -> None:
        self._client = client
        self.channel = f"{namespace}:cancel"
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str, *, namespace: str = "pmcp") -> RedisNotifier:
        """A notifier on the Redis server at ``url``; for a ``redis+cluster://`` URL, on its
        seed node (see the module docstring)."""
        return cls(Redis.from_url(seed_node_url(url)), namespace=namespace)

    async def publish(self, task_key: str) -> None:
        await self._client.publish(self.channel, task_key)

    async def listen(self, on_notice: Callable[[str], None]) -> None:
        """Subscribe (confirmed before this returns), then deliver notices in the background."""
        if self._listener is not None:
            raise RuntimeError("this notifier is already listening")
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self.channel)
        self._listener = asyncio.get_running_loop().create_task(self._deliver(on_notice))

    async def _deliver(self, on_notice: Callable[[str], None]) -> None:
        pubsub = self._pubsub
        assert pubsub is not None  # set by listen()
        while True:
            try:
                message = await pubsub.get_message(timeout=None)
            except RedisError as exc:
                # redis-py subscribes again when it reconnects; meanwhile workers poll.
                logger.warning("cancel notices: %s; subscribing again", exc)
                await asyncio.sleep(RECONNECT_PAUSE)
                continue
            if message is not None and message.get("type") == "message":
                data = message["data"]
                on_notice(data.decode() if isinstance(data, bytes) else str(data))

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._pubsub is not None:
            await self._pubsub.aclose()
        await self._client.aclose()
