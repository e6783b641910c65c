"""How a reference backend names the exception behind one of its errors.

A backend error must let its reader see what went wrong without a debugger. ``repr`` is not
enough: redis-py 8 renders a refused connection as ``network:ConnectionError`` and a cluster
redirection as ``server:MovedError``, and the part that matters (``Error 111 connecting to
127.0.0.1:6379``, the slot and node of a MOVED) is in the message, or only in the exception it
was raised from. So every reference backend formats causes with :func:`describe`.
"""

from __future__ import annotations

_SEPARATOR = "; caused by "


def describe(exc: BaseException) -> str:
    """``TypeName: message`` of ``exc``, then of each exception behind it, outermost first.

    The chain follows ``__cause__``, else ``__context__`` (unless suppressed with ``raise ...
    from None``), as a traceback would. A link whose message already appears in an outer one
    adds nothing and is left out; an exception without a message shows its type name alone.
    """
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        message = str(current)
        if not (message and any(message in part for part in parts)):
            name = type(current).__name__
            parts.append(f"{name}: {message}" if message else name)
        if current.__cause__ is not None:
            current = current.__cause__
        elif current.__suppress_context__:
            current = None
        else:
            current = current.__context__
    return _SEPARATOR.join(parts)
