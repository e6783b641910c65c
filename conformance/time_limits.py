"""``--conformance-test-timeout``: a kit test ends, whatever its backend does, in every phase.

A mutant that pages for ever (a resume point that never moves) hung the whole run, and one whose
scan never ends hung it in the fixture teardown that drops the test's namespace, where a limit on
the test body alone does not reach. So the kit's own backend work in fixtures (opening the
backend, dropping the namespace, closing) and the test body run in cancel scopes of that many
seconds, which end a backend that awaits I/O. A backend whose loop never yields to the event loop
(fakeredis answers without suspending, so a cleanup that loops for ever never reaches a
cancellation point), and the tests Hypothesis drives, are stopped by ``SIGALRM`` as long again
later (at most 30 s), where the platform has it, in the main thread, and no one else
(pytest-timeout, the project) handles it. Either way the test ends with
:class:`~conformance.verdicts.KitTimeout`: undecided, no clause charged.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import signal
import threading
from collections.abc import Awaitable, Generator
from types import FrameType
from typing import Any, TypeVar

import pytest

from conformance.verdicts import KitTimeout

T = TypeVar("T")

OPTION = "--conformance-test-timeout"


def seconds(config: pytest.Config) -> float:
    """The limit, or 0 for none."""
    return float(config.getoption("conformance_test_timeout", 0.0) or 0.0)


def _message(name: str, limit: float, where: str = "") -> str:
    return f"{name} did not finish within {limit:g} s ({OPTION}){where}"


async def bounded(request: pytest.FixtureRequest, what: str, work: Awaitable[T]) -> T:
    """``await work``, a kit fixture's backend call, ended with ``KitTimeout`` past the limit."""
    limit = seconds(request.config)
    if limit <= 0:
        return await work
    return await _cancelled_after(limit, _message(request.node.name, limit, f", {what}"), work)


async def _cancelled_after(limit: float, message: str, work: Awaitable[T]) -> T:
    import anyio

    task = asyncio.current_task()
    seen: list[str] = []

    def look() -> None:  # just before the deadline, while the call still waits
        if task is not None:
            seen.append(waiting_in(_frames_of(task.get_coro())))

    handle = asyncio.get_running_loop().call_later(max(limit * 0.99, limit - 1.0), look)
    try:
        with anyio.move_on_after(limit):
            return await work
    finally:
        handle.cancel()
    raise KitTimeout(message + (seen[0] if seen else ""))


BACKEND_METHODS = frozenset(
    ("get", "put", "put_if_version", "delete", "list_by_prefix", "cleanup_expired", "aclose")
)


def _frames_of(coro: object) -> list[FrameType]:
    """The frames of a coroutine and of everything it awaits, outermost first."""
    frames: list[FrameType] = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return frames


def waiting_in(frames: list[FrameType]) -> str:
    """``", waiting in Backend.method(args)"`` for the outermost frame among ``frames`` that is
    a backend's contract method (one with a ``self`` that has ``capabilities``), else ``""``:
    a test that never finishes is most often one backend call that never returns."""
    for frame in frames:
        owner = frame.f_locals.get("self")
        if frame.f_code.co_name in BACKEND_METHODS and hasattr(owner, "capabilities"):
            names = frame.f_code.co_varnames[
                1 : frame.f_code.co_argcount + frame.f_code.co_kwonlyargcount
            ]
            args = ", ".join(f"{name}={frame.f_locals.get(name)!r:.80}" for name in names)
            return f", waiting in {type(owner).__name__}.{frame.f_code.co_name}({args})"
    return ""


@contextlib.contextmanager
def phase(item: pytest.Item, when: str) -> Generator[None, None, None]:
    """The ``SIGALRM`` backstop around a kit test's setup or teardown (its fixtures)."""
    limit = seconds(item.config)
    if limit <= 0:
        yield
        return
    with _alarm(_backstop(limit), _message(item.name, limit, f", in its {when}")):
        yield


@contextlib.contextmanager
def call(item: pytest.Item) -> Generator[None, None, None]:
    """The test body: a cancel scope for an async test, and the ``SIGALRM`` backstop."""
    limit = seconds(item.config)
    if limit <= 0:
        yield
        return
    message = _message(item.name, limit)
    with _alarm(_backstop(limit), message):
        test = getattr(item, "obj", None)
        if not inspect.iscoroutinefunction(test):
            yield
            return

        @functools.wraps(test)
        async def within(*args: Any, **kwargs: Any) -> Any:
            return await _cancelled_after(limit, message, test(*args, **kwargs))

        item.obj = within  # type: ignore[attr-defined]
        try:
            yield
        finally:
            item.obj = test  # type: ignore[attr-defined]


def _backstop(limit: float) -> float:
    return limit + min(limit, 30.0)


@contextlib.contextmanager
def _alarm(after: float, message: str) -> Generator[None, None, None]:
    """Raises ``KitTimeout(message)`` in the main thread after ``after`` seconds, where it can."""
    alarm = getattr(signal, "SIGALRM", None)
    if (
        alarm is None
        or threading.current_thread() is not threading.main_thread()
        or signal.getsignal(alarm) not in (signal.SIG_DFL, signal.SIG_IGN, None)
    ):
        yield
        return

    def expired(signum: int, frame: FrameType | None) -> None:
        stack = []
        while frame is not None:
            stack.append(frame)
            frame = frame.f_back
        raise KitTimeout(message + waiting_in(stack[::-1]))

    previous = signal.signal(alarm, expired)
    # Again every 5 s: a retry loop that catches Exception may swallow the first one.
    signal.setitimer(signal.ITIMER_REAL, after, 5.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(alarm, previous)
