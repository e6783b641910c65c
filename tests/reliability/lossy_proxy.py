"""A loopback TCP proxy that can lose a server's reply after the request reached the server.

This is the fault that a timeout or a reset connection produces in production: the server
committed the write, the client never hears so. The proxy forwards bytes both ways; once
:meth:`LossyProxy.lose_reply_to` is armed, the next request containing the marker is forwarded
to the server, and that connection is then closed instead of passing the reply on. Whether the
request really executed is for the test to check on the server.
"""

from __future__ import annotations

import asyncio
import contextlib


class LossyProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target``; started and stopped with ``async with``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.lost = 0
        self._marker: bytes | None = None
        self._times = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> LossyProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    def lose_reply_to(self, marker: bytes, times: int = 1) -> None:
        """Lose the replies to the next ``times`` requests containing ``marker``."""
        self._marker, self._times = marker, times

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        self._writers |= {client_w, server_w}
        doomed = asyncio.Event()  # set once this connection carried a request to lose

        async def upstream() -> None:
            while chunk := await client_r.read(65536):
                if self._marker is not None and self._times > 0 and self._marker in chunk:
                    self._times -= 1
                    doomed.set()
                server_w.write(chunk)
                await server_w.drain()

        async def downstream() -> None:
            while chunk := await server_r.read(65536):
                if doomed.is_set():
                    self.lost += 1
                    return  # the server answered: the request ran; drop the answer
                client_w.write(chunk)
                await client_w.drain()

        tasks = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
        with contextlib.suppress(Exception):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for writer in (client_w, server_w):
            writer.close()
            self._writers.discard(writer)
