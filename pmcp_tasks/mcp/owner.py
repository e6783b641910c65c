"""Who owns a task: derived per request from the SDK's authentication context.

The owner scopes every store call, so it must come from something the client cannot choose:
the verified access token. Without one, the owner is ``""``, which ``StoreConfig`` treats as
anonymous (refused unless ``allow_anonymous=True``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.context import ServerRequestContext

OwnerFn = Callable[[ServerRequestContext[Any, Any]], str]
"""Maps a request to its owner; pass one to ``TasksExtension(owner=...)`` to replace the rule."""


def owner_from_auth(ctx: ServerRequestContext[Any, Any]) -> str:
    """The token's subject (the resource owner), else its client id, else ``""`` (anonymous).

    The subject is who the work is for; a client-credentials token has none, and then the
    client itself is the owner.
    """
    token = get_access_token()
    if token is None:
        return ""
    return token.subject or token.client_id
