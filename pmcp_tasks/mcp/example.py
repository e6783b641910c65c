"""An MCP server with durable tasks, carrying the tools the official conformance suite calls.

Run ``python -m pmcp_tasks.mcp.example --host 127.0.0.1 --port 8000`` (streamable HTTP at
``/mcp``). The store is in memory unless ``--backend NAME`` picks another entry point of
``pmcp_tasks.backends`` (``redis``, ``dynamodb``), with ``--backend-option KEY=VALUE`` passed to
its factory as the conformance kit does; instances started with the same backend and namespace
share their tasks. With ``--backend redis``, cancels reach the instance running the task at once
over Redis pub/sub, and ``slow_compute`` (resumable) continues on another instance when the
one running it dies.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import signal
import time
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, ElicitRequest, InputRequiredResult, TextContent

from pmcp_tasks.backend import StorageBackend
from pmcp_tasks.config import StoreConfig
from pmcp_tasks.context import TaskContext
from pmcp_tasks.mcp.extension import DEFAULT_MAX_RUNNING, TasksExtension, current_task
from pmcp_tasks.mcp.resume import ResumableContext
from pmcp_tasks.notify import CancelNotifier
from pmcp_tasks.store import GenericTaskStore

BACKENDS = "pmcp_tasks.backends"
CHECKPOINT = 1.0
"""Seconds of ``slow_compute``'s work between two saves of how far it got."""


def _elicit(message: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "method": "elicitation/create",
        "params": {
            "mode": "form",
            "message": message,
            "requestedSchema": {"type": "object", "properties": properties},
        },
    }


class StaticTokens:
    """Bearer tokens fixed on the command line, each standing for one subject (the owner).

    A stand-in for a real OAuth resource server, so that the owner rule can be seen at work:
    tasks created with one token are invisible with another.
    """

    def __init__(self, owners: dict[str, str]) -> None:
        self.owners = owners

    async def verify_token(self, token: str) -> AccessToken | None:
        owner = self.owners.get(token)
        if owner is None:
            return None
        return AccessToken(token=token, client_id="example-client", scopes=[], subject=owner)


def build_server(
    tasks: TasksExtension,
    *,
    tokens: dict[str, str] | None = None,
    url: str = "http://127.0.0.1:8000/mcp",
) -> MCPServer[Any]:
    """The example server over ``tasks``: one plain tool and seven task tools.

    The caller owns ``tasks`` so that it can close it when the server stops. With ``tokens``
    (token -> owner) every request needs one of them as its bearer token.
    """
    auth: dict[str, Any] = {}
    if tokens:
        auth = {
            "token_verifier": StaticTokens(tokens),
            "auth": AuthSettings.model_validate({"issuer_url": url, "resource_server_url": url}),
        }
    server: MCPServer[Any] = MCPServer("pmcp-tasks-example", extensions=[tasks], **auth)

    @server.tool()
    def greet(name: str) -> str:
        """Say hello, synchronously (never a task)."""
        return f"Hello, {name}!"

    _add_work_tools(server, tasks)
    _add_input_tools(server, tasks)
    return server


def _add_work_tools(server: MCPServer[Any], tasks: TasksExtension) -> None:
    """The task tools that work, report and fail without asking the client anything."""

    @tasks.tool(server, support="optional", resume=True)
    async def slow_compute(seconds: float = 1.0, label: str = "") -> str:
        """Wait ``seconds``, then answer; a task for clients that declared the extension.

        Resumable: as a task it saves the seconds done in its variable ``done`` every
        ``CHECKPOINT`` s, so an instance that takes it over waits only for the rest.
        """
        try:
            task = current_task()
        except RuntimeError:
            await asyncio.sleep(seconds)
            return f"computed {label or 'result'} after {seconds:g} s"
        return await _compute(task, seconds, label)

    @tasks.tool(server, support="required")
    async def progress_job(steps: int = 3, seconds_per_step: float = 1.0) -> str:
        """Report each step as the task's status message (``step (k/steps)``), then answer."""
        task = current_task()
        for step in range(1, steps + 1):
            await task.report("step", progress=step, total=steps)
            await task.sleep(seconds_per_step)
        return f"{steps} steps done"

    @tasks.tool(server, support="required")
    async def failing_job() -> CallToolResult:
        """Fail as a tool error (``isError: true``), which completes the task."""
        await current_task().sleep(1)
        return CallToolResult(
            content=[TextContent(type="text", text="the job failed")], is_error=True
        )

    @tasks.tool(server, support="required")
    async def protocol_error_job() -> str:
        """Fail with a JSON-RPC error, which fails the task."""
        await current_task().sleep(0.1)
        raise MCPError(code=-32000, message="the upstream service refused the job")


def _add_input_tools(server: MCPServer[Any], tasks: TasksExtension) -> None:
    """The task tools that ask the client (in a task, or before one exists)."""

    @tasks.tool(server, support="required", resume=True)
    async def confirm_delete(filename: str = "") -> str:
        """Ask the client to confirm, then answer. Resumable: the question survives the
        instance that asked it (another instance waits for the same answer)."""
        answers = await current_task().request_input(
            {
                "confirm": _elicit(
                    f"Delete {filename or 'the file'}?", {"confirm": {"type": "boolean"}}
                )
            }
        )
        return f"delete of {filename or 'the file'}: {answers['confirm']}"

    @tasks.tool(server, support="required")
    async def multi_input() -> str:
        """Ask two questions at once, then answer."""
        answers = await current_task().request_input(
            {
                "name": _elicit("Your name?", {"name": {"type": "string"}}),
                "confirm": _elicit("Go ahead?", {"confirm": {"type": "boolean"}}),
            }
        )
        return f"got {sorted(answers)}"

    @tasks.tool(server, support="required", start="in_handler")
    async def test_tool_with_task(ctx: Context) -> CallToolResult | InputRequiredResult:
        """Ask for a name before any task exists (multi-round trip), then greet in a task."""
        answer = (ctx.input_responses or {}).get("user_name")
        content = getattr(answer, "content", None) or {}
        if not content.get("name"):
            ask = ElicitRequest.model_validate(_elicit("Your name?", {"name": {"type": "string"}}))
            return InputRequiredResult(input_requests={"user_name": ask})
        name = str(content["name"])

        async def work(task: TaskContext) -> str:
            await task.sleep(0.1)
            return f"Hello from a task, {name}!"

        return await tasks.start(ctx, work)


async def _compute(task: TaskContext, seconds: float, label: str) -> str:
    """``slow_compute`` as a task: sleep in steps, saving how far it got after each (then
    reporting it: a client that sees the report knows the variable is saved)."""
    done = 0.0
    if seconds >= CHECKPOINT:  # a shorter run has saved nothing: skip the read
        done = float(await task.get_variable("done", 0.0) or 0.0)
    resumed_at = done
    while done < seconds:
        step = min(CHECKPOINT, seconds - done)
        await task.sleep(step)
        done += step
        if done < seconds:
            await task.set_variable("done", done)
            await task.report("computing", progress=done, total=seconds)
    text = f"computed {label or 'result'} after {seconds:g} s"
    if isinstance(task, ResumableContext) and task.resumed:
        text += f" (start {task.attempt}, resumed at {resumed_at:g} s)"
    return text


async def open_backend(name: str, options: dict[str, str], namespace: str) -> StorageBackend:
    """The backend of entry point ``name`` of ``pmcp_tasks.backends`` (the kit's names)."""
    found = {ep.name: ep for ep in metadata.entry_points(group=BACKENDS)}
    if name not in found:
        raise SystemExit(f"unknown backend {name!r}; installed: {', '.join(sorted(found))}")
    made = found[name].load()(namespace=namespace, clock=time.time, **options)
    if inspect.isawaitable(made):
        made = await made
    # A kit factory may return its backend inside a conformance.KitTarget, beside the kit's
    # test hooks; the server uses only the backend (and imports nothing of the kit for it).
    return getattr(made, "backend", made)  # type: ignore[no-any-return]


def cancel_notifier(backend: str, options: dict[str, str], namespace: str) -> CancelNotifier | None:
    """Redis pub/sub on the backend's own server for ``--backend redis`` (a cluster's seed
    node); other stores have none, and their workers find a cancel at their next watch."""
    url = options.get("redis_url")
    if backend != "redis" or url is None:
        return None
    from reference_backends.redis.notify import RedisNotifier

    return RedisNotifier.from_url(url, namespace=namespace)


def _options(pairs: Sequence[str], flag: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"{flag} wants KEY=VALUE, not {pair!r}")
        options[key] = value
    return options


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pmcp_tasks.mcp.example", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--backend", default="memory")
    parser.add_argument("--backend-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--namespace", default="pmcp-example")
    parser.add_argument("--poll-interval", type=float, default=0.5, help="seconds (default 0.5)")
    parser.add_argument("--lease", type=float, default=30.0, help="seconds (default 30)")
    parser.add_argument(
        "--max-running",
        type=int,
        default=DEFAULT_MAX_RUNNING,
        help="handlers run at once by this instance (default %(default)s); the rest wait",
    )
    parser.add_argument(
        "--max-tasks",
        type=int,
        default=StoreConfig().max_tasks_per_owner,
        help="unfinished tasks per owner (default %(default)s); anonymous clients share one owner",
    )
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="TOKEN=OWNER",
        help="accept this bearer token for this owner (repeatable); none: anonymous access",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    tokens = _options(args.token, "--token")
    import uvicorn

    async def serve() -> None:
        options = _options(args.backend_option, "--backend-option")
        backend = await open_backend(args.backend, options, args.namespace)
        config = StoreConfig(
            allow_anonymous=not tokens,
            poll_interval=args.poll_interval,
            max_tasks_per_owner=args.max_tasks,
        )
        url = f"http://{args.host}:{args.port}/mcp"
        tasks = TasksExtension(
            GenericTaskStore(backend, config),
            lease=args.lease,
            max_running=args.max_running,
            notifier=cancel_notifier(args.backend, options, args.namespace),
        )
        app = build_server(tasks, tokens=tokens, url=url).streamable_http_app(host=args.host)
        await tasks.open()
        try:
            await uvicorn.Server(
                uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")
            ).serve()
        finally:
            # Handlers still running here stop now: resumable tasks' leases are released, so
            # another instance sharing the store takes them over at once; the others' leases
            # lapse and their tasks fail (docs/mcp.md). Then the connections close.
            await tasks.aclose()
            await backend.aclose()

    # uvicorn stops gracefully on SIGTERM, then raises it again once it has restored the
    # handler it found: this one, so that serve()'s clean-up runs instead of the process dying.
    signal.signal(signal.SIGTERM, _terminated)
    try:
        asyncio.run(serve())
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled: stop without a traceback
        raise SystemExit(130) from None
    except Terminated:
        raise SystemExit(0) from None


class Terminated(Exception):
    """SIGTERM, raised where the process is, so that clean-up on the way out runs."""


def _terminated(signum: int, frame: object) -> None:
    raise Terminated


if __name__ == "__main__":
    main()
