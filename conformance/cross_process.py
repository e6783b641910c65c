"""A client of the backend under test in a second Python process, driven from the kit.

A backend that declares ``shared_across_processes`` promises what two instances in one process
cannot show: a store whose instances share state only through process memory or an in-process
lock passes every one-process check and still loses acknowledged writes between processes. So
the kit starts ``python -m conformance.cross_process``, which opens the same factory with the
same options and namespace, and sends it the contract's calls one JSON line at a time. The
parent's kit clock travels with every request, so expiry is judged at the same instant on
both sides.

The factory must be importable by name in the child (``package.module:attr``, plain or
wrapped in ``functools.partial`` with string keywords): that is how the child finds "the same
factory". The child inherits ``sys.path`` and the working directory.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

from conformance.harness import ManualClock, open_target
from pmcp_tasks.backend import StorageBackend, VersionedRecord
from pmcp_tasks.errors import RecordNotFound, VersionConflict

REPLY_TIMEOUT = 600.0
"""Seconds to wait for the peer's reply before failing: a hang guard, never a verdict."""


@dataclass(frozen=True)
class FactoryReference:
    """How a second process finds the same factory: ``module:qualname`` and its keywords."""

    path: str
    options: dict[str, str]


def reference_of(factory: Any) -> FactoryReference | str:
    """The factory's importable reference, or why it has none (a lambda, a closure, ...)."""
    options: dict[str, str] = {}
    target = factory
    while isinstance(target, functools.partial):
        if target.args:
            return f"{factory!r} binds positional arguments"
        options = {**target.keywords, **options}
        target = target.func
    bad = {key: value for key, value in options.items() if not isinstance(value, str)}
    if bad:
        return f"{factory!r} binds options that are not strings: {bad!r}"
    module_name = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if not module_name or not qualname:
        return f"{target!r} has no module and name"
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return f"module {module_name!r} cannot be imported ({type(exc).__name__}: {exc})"
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if found is target:
        return FactoryReference(f"{module_name}:{qualname}", options)
    # A factory made by a function (a closure) is still reachable if the module binds it.
    for name, value in vars(module).items():
        if value is target:
            return FactoryReference(f"{module_name}:{name}", options)
    return f"{target!r} is not bound to a name in module {module_name!r}"


class PeerFailed(AssertionError):
    """The peer process failed in a way the contract does not allow (or could not start)."""


def _record(value: dict[str, Any] | None) -> VersionedRecord | None:
    if value is None:
        return None
    return VersionedRecord(bytes.fromhex(value["data"]), value["version"], value["expires_at"])


class Peer:
    """The parent's handle on the second process: the contract's methods, over a pipe.

    Contract errors come back as the same exceptions (``VersionConflict`` with its ``actual``,
    ``RecordNotFound``); anything else the peer raised is a :class:`PeerFailed` naming it.
    """

    def __init__(self, process: asyncio.subprocess.Process, clock: ManualClock) -> None:
        self._process = process
        self._clock = clock

    @classmethod
    async def start(cls, reference: FactoryReference, namespace: str, clock: ManualClock) -> Peer:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "conformance.cross_process",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        peer = cls(process, clock)
        hello = {"factory": reference.path, "options": reference.options, "namespace": namespace}
        await peer._ask({"op": "open", **hello})
        return peer

    async def _ask(self, request: dict[str, Any]) -> Any:
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None
        assert stdout is not None
        stdin.write((json.dumps({**request, "now": self._clock()}) + "\n").encode())
        await stdin.drain()
        line = await asyncio.wait_for(stdout.readline(), REPLY_TIMEOUT)
        if not line:
            stderr = b""
            if self._process.stderr is not None:
                stderr = await self._process.stderr.read()
            raise PeerFailed(
                f"the peer process exited during {request['op']} "
                f"(exit code {await self._process.wait()}): {stderr.decode(errors='replace')}"
            )
        reply = json.loads(line)
        error = reply.get("error")
        if error == "VersionConflict":
            raise VersionConflict(reply["key"], reply["expected"], reply["actual"])
        if error == "RecordNotFound":
            raise RecordNotFound(reply["key"])
        if error is not None:
            raise PeerFailed(f"in the peer process, {request['op']} raised {error}")
        return reply["ok"]

    async def get(self, key: str) -> VersionedRecord | None:
        return _record(await self._ask({"op": "get", "key": key}))

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        reply: int = await self._ask(
            {"op": "put", "key": key, "data": data.hex(), "expires_at": expires_at}
        )
        return reply

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        request = {"op": "put_if_version", "key": key, "data": data.hex()}
        reply: int = await self._ask(
            {**request, "expected": expected_version, "expires_at": expires_at}
        )
        return reply

    async def delete(self, key: str) -> bool:
        reply: bool = await self._ask({"op": "delete", "key": key})
        return reply

    async def list_keys(self, prefix: str) -> list[str]:
        reply: list[str] = await self._ask({"op": "list_keys", "prefix": prefix})
        return reply

    async def cleanup_expired(self) -> int:
        reply: int = await self._ask({"op": "cleanup_expired"})
        return reply

    async def increment(self, key: str, times: int) -> dict[str, int]:
        """Run :func:`increment` in the peer; returns its counts."""
        reply: dict[str, int] = await self._ask({"op": "increment", "key": key, "times": times})
        return reply

    async def aclose(self) -> None:
        """Close the peer's backend and wait for the process to end."""
        if self._process.returncode is None:
            try:
                await self._ask({"op": "close"})
            finally:
                if self._process.stdin is not None:
                    self._process.stdin.close()
                await self._process.wait()


async def increment(backend: StorageBackend, key: str, times: int) -> dict[str, int]:
    """Add 1 to the decimal counter at ``key`` ``times`` times, each by read then CAS, retrying
    on conflict: every acknowledged CAS is one increment, so none may be lost."""
    acked = conflicts = 0
    while acked < times:
        record = await backend.get(key)
        if record is None:
            raise PeerFailed(f"the counter at {key!r} is gone after {acked} increments")
        try:
            await backend.put_if_version(key, str(int(record.data) + 1).encode(), record.version)
        except VersionConflict:
            conflicts += 1
        else:
            acked += 1
    return {"acked": acked, "conflicts": conflicts}


async def _serve(reader: asyncio.StreamReader, write: Any) -> None:
    clock = ManualClock()
    backend: StorageBackend | None = None
    while True:
        line = await reader.readline()
        if not line:
            break
        request = json.loads(line)
        clock.set(request["now"])
        op = request["op"]
        try:
            if op == "open":
                module, _, attr = request["factory"].partition(":")
                factory: Any = importlib.import_module(module)
                for part in attr.split("."):
                    factory = getattr(factory, part)
                opened = await open_target(
                    factory, namespace=request["namespace"], clock=clock, **request["options"]
                )
                backend = opened.backend
                result: Any = None
            else:
                assert backend is not None, "open first"
                result = await _call(backend, op, request)
        except VersionConflict as exc:
            reply = {"error": "VersionConflict", "key": exc.key, "actual": exc.actual}
            write({**reply, "expected": exc.expected})
        except RecordNotFound as exc:
            write({"error": "RecordNotFound", "key": exc.key})
        except Exception as exc:
            write({"error": f"{type(exc).__name__}: {exc}"})
        else:
            write({"ok": result})
        if op == "close":
            break


async def _call(backend: StorageBackend, op: str, request: dict[str, Any]) -> Any:
    key = request.get("key", "")
    if op == "get":
        record = await backend.get(key)
        if record is None:
            return None
        return {
            "data": record.data.hex(),
            "version": record.version,
            "expires_at": record.expires_at,
        }
    if op == "put":
        data = bytes.fromhex(request["data"])
        return await backend.put(key, data, expires_at=request["expires_at"])
    if op == "put_if_version":
        data = bytes.fromhex(request["data"])
        expected = request["expected"]
        return await backend.put_if_version(key, data, expected, expires_at=request["expires_at"])
    if op == "delete":
        return await backend.delete(key)
    if op == "list_keys":
        return [k for k, _ in await backend.list_by_prefix(request["prefix"])]
    if op == "cleanup_expired":
        return await backend.cleanup_expired()
    if op == "increment":
        return await increment(backend, key, request["times"])
    if op == "close":
        await backend.aclose()
        return None
    raise ValueError(f"unknown peer request {op!r}")


async def _main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout

    def write(reply: dict[str, Any]) -> None:
        out.write(json.dumps(reply) + "\n")
        out.flush()

    await _serve(reader, write)


if __name__ == "__main__":
    asyncio.run(_main())
