"""reference_backends.causes.describe: what a backend error shows of its cause."""

from __future__ import annotations

import socket

import pytest

from reference_backends.causes import describe


class Hidden(Exception):
    """Like redis-py 8's errors: the repr hides the message."""

    def __repr__(self) -> str:
        return "network:Hidden"


def _refused() -> OSError:
    """A real refusal: connect to a loopback port that is bound but not listening."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        except OSError as exc:
            return exc
    pytest.fail(f"port {port} accepted a connection while bound and not listening")


def _raise_from(exc: BaseException, cause: BaseException | None) -> None:
    raise exc from cause


def _raise_during(exc: BaseException, context: BaseException) -> None:
    try:
        raise context
    except type(context):
        raise exc  # noqa: B904 - the implicit context is what is tested


def test_the_message_and_the_cause_it_was_raised_from() -> None:
    refused = _refused()
    with pytest.raises(Hidden) as raised:
        _raise_from(Hidden(f"Error {refused.errno} connecting to 127.0.0.1"), refused)
    assert repr(raised.value) == "network:Hidden"
    assert describe(raised.value) == (
        f"Hidden: Error {refused.errno} connecting to 127.0.0.1; "
        f"caused by {type(refused).__name__}: {refused}"
    )


def test_the_context_is_followed_unless_suppressed() -> None:
    with pytest.raises(RuntimeError) as raised:
        _raise_during(RuntimeError("write failed"), OSError("disk full"))
    assert describe(raised.value) == "RuntimeError: write failed; caused by OSError: disk full"
    with pytest.raises(RuntimeError) as raised:
        _raise_from(RuntimeError("write failed"), None)  # raise ... from None
    raised.value.__context__ = OSError("disk full")
    assert describe(raised.value) == "RuntimeError: write failed"


def test_a_message_already_shown_is_left_out() -> None:
    with pytest.raises(RuntimeError) as raised:
        _raise_during(RuntimeError("write failed: disk full"), OSError("disk full"))
    assert describe(raised.value) == "RuntimeError: write failed: disk full"


def test_no_message_shows_the_type_and_a_cycle_ends() -> None:
    outer, inner = TimeoutError(), ConnectionError("reset")
    outer.__cause__, inner.__cause__ = inner, outer
    assert describe(outer) == "TimeoutError; caused by ConnectionError: reset"
