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
        self._handlers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> LossyProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop accepting, then end every connection and wait until its sockets are closed: a
        transport left open when the test's event loop closes is a socket garbage-collected in
        some later test (a ``ResourceWarning``, an error under ``-W error``)."""
        assert self._server is not None
        self._server.close()
        for handler in list(self._handlers):
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def lose_reply_to(self, marker: bytes, times: int = 1) -> None:
        """Lose the replies to the next ``times`` requests containing ``marker``."""
        self._marker, self._times = marker, times

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        writers = [client_w]
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
            writers.append(server_w)
            await self._forward(client_r, client_w, server_r, server_w)
        except OSError:
            pass
        finally:
            for writer in writers:
                writer.close()
            for writer in writers:  # even when cancelled: the sockets must close now
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await writer.wait_closed()
            self._handlers.discard(handler)

    async def _forward(
        self,
        client_r: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
        server_r: asyncio.StreamReader,
        server_w: asyncio.StreamWriter,
    ) -> None:
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
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
