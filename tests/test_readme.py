"""The README as a new user meets it: each Python block runs verbatim, and each command is one
that CI runs.

The blocks are read from README.md at test time, so an edit to one is tested as written. The
"Add it to your own server" block is a whole server: it runs as its own process on a free port
(the ``$PORT`` it reads) and a client drives a task through it over the wire. Runs in the tox
env ``mcp`` (the blocks need the ``mcp`` extra and nothing else).
"""

from __future__ import annotations

import ast
import configparser
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from servers import free_port, mcp_request, serving

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
MAX_POLLS = 3000  # a task that never gets there fails the test instead of hanging it


def blocks(language: str) -> dict[str, str]:
    """The README's fenced ``language`` blocks, by the heading of the section holding them."""
    found: dict[str, str] = {}
    heading = ""
    for part in re.split(r"^(## .*)$", README, flags=re.MULTILINE):
        if part.startswith("## "):
            heading = part[3:]
            continue
        for code in re.findall(rf"^```{language}\n(.*?)^```$", part, re.MULTILINE | re.DOTALL):
            assert heading not in found, f"two {language} blocks under {heading!r}: test both"
            found[heading] = code
    return found


PYTHON = blocks("python")


def test_every_python_block_has_a_test_here() -> None:
    """The requester block is run by tests/mcp/test_requester.py, against the example server."""
    assert sorted(PYTHON) == [
        "Calling a task tool from Python",
        "MCP servers: the tasks extension",
        "Using it",
    ], sorted(PYTHON)


def test_using_it_prints_the_2026_07_28_task(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PYTHON["Using it"]],
        cwd=tmp_path,  # the installed package, not the source tree
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    task = ast.literal_eval(done.stdout.strip())
    assert task["status"] == "completed", task
    assert task["ttlMs"] == 600_000, task
    assert {"taskId", "createdAt", "lastUpdatedAt", "pollIntervalMs"} <= set(task), task
    assert "ttl" not in task, "the 2025-11-25 form, not the extension's"


class Wire:
    """A client of the 2026-07-28 stateless wire: one JSON-RPC request per POST."""

    def __init__(self, http: httpx2.Client, url: str, *, declare: bool = True) -> None:
        self.http = http
        self.url = url
        self.declare = declare

    def request(self, method: str, params: dict[str, Any], name: str) -> dict[str, Any]:
        body, headers = mcp_request(method, params, name, declare=self.declare)
        answer: dict[str, Any] = self.http.post(self.url, json=body, headers=headers).json()
        return answer

    def wait_for(self, task_id: str, status: str) -> dict[str, Any]:
        for _ in range(MAX_POLLS):
            view = self.request("tasks/get", {"taskId": task_id}, task_id)["result"]
            if view["status"] == status:
                return view
            time.sleep(view.get("pollIntervalMs", 200) / 1000)
        raise AssertionError(f"task {task_id} is still {view['status']!r}, not {status!r}")


@contextmanager
def own_server(tmp_path: Path) -> Iterator[str]:
    """The README's server block, as ``my_server.py`` run with ``python3 my_server.py``."""
    script = tmp_path / "my_server.py"
    script.write_text(PYTHON["MCP servers: the tasks extension"], encoding="utf-8")
    port = free_port()
    command = [sys.executable, str(script)]
    log = tmp_path / "my_server.log"
    with serving(command, port, log, {"PORT": str(port)}, path="/mcp") as server:
        yield server.url


def test_own_server_block_serves_a_task_with_input(tmp_path: Path) -> None:
    with own_server(tmp_path) as url, httpx2.Client(timeout=60) as http:
        wire = Wire(http, url)
        call = {"name": "crunch", "arguments": {"n": 0}}
        created = wire.request("tools/call", call, "crunch")["result"]
        assert created["resultType"] == "task", created
        waiting = wire.wait_for(created["taskId"], "input_required")
        (key, ask), *others = waiting["inputRequests"].items()
        assert not others, waiting
        assert ask["params"]["message"] == "Go?", ask
        answer = {key: {"action": "accept", "content": {}}}
        update = {"taskId": created["taskId"], "inputResponses": answer}
        updated = wire.request("tasks/update", update, created["taskId"])
        assert "error" not in updated, updated
        done = wire.wait_for(created["taskId"], "completed")
        assert done["result"]["content"][0]["text"] == "crunched 0: accept", done
        # "required": a client that did not declare the extension is told what it lacks.
        refused = Wire(http, url, declare=False).request("tools/call", call, "crunch")
        assert refused["error"]["code"] == -32021, refused
    assert "Traceback" not in (tmp_path / "my_server.log").read_text(), "see my_server.log"


# Each command the README gives, and the file that shows CI running it (tox.ini runs the
# tests named there; .ci/run runs the node tools and tox).
TOX = configparser.ConfigParser(interpolation=None)
TOX.read(ROOT / "tox.ini", encoding="utf-8")
TOX_COMMANDS = "\n".join(TOX[section].get("commands", "") for section in TOX.sections())
CI_RUN = (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def _extras(command: str) -> list[str]:
    """The extras of ``pip install '.[a,b]'``."""
    return re.findall(r"[\w-]+", command[command.index("[") : command.index("]")])


def readme_commands() -> list[str]:
    """The commands of the sh blocks (split at ``&&``) and of inline code a user would type."""
    commands = [
        part.strip()
        for block in re.findall(r"^```sh\n(.*?)^```$", README, re.MULTILINE | re.DOTALL)
        for line in block.splitlines()
        for part in line.split("&&")
    ]
    inline = re.findall(r"`((?:python3 -m|bash \.ci/|tox )[^`]*)`", README)
    return [*commands, *inline]


def where_ci_runs(command: str) -> bool:
    """Whether CI runs ``command``: what makes each kind of command count as run."""
    words = command.split()
    if command.startswith("python3 -m pip install '."):
        pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
        return all(f"\n{extra} = [" in pyproject for extra in _extras(command))
    if command == "python3 -m pip install tox":
        return '"tox>=' in CI_RUN
    if command.startswith("python3 -m pytest "):
        return "pytest " + " ".join(words[3:]) in TOX_COMMANDS
    if command == "python3 -m tox":
        return "-m tox" in CI_RUN
    if command.startswith("tox -e "):
        return all(f"[testenv:{env}]" in (ROOT / "tox.ini").read_text() for env in words[2:])
    if command.startswith("python3 -m pmcp_tasks.mcp.example"):
        # tests/servers.py starts it (on a free port) for tests/mcp's binding tests.
        fixture = (ROOT / "tests" / "servers.py").read_text(encoding="utf-8")
        return '"pmcp_tasks.mcp.example"' in fixture and "tests/mcp" in TOX_COMMANDS
    if command.startswith("python3 -m benchmarks"):
        return "test_benchmarks_smoke.py" in TOX_COMMANDS
    if command.startswith("bash .ci/"):
        return command == "bash .ci/run" or f"bash {command[5:]}" in CI_RUN
    if command.startswith("python3 -m venv"):
        return "-m venv" in CI_RUN
    return False


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_is_run_in_ci(command: str) -> None:
    assert where_ci_runs(command), f"README gives {command!r}, which CI does not run"


def test_readme_commands_were_found() -> None:
    """The parsing above saw the commands (an empty list would pass every test above)."""
    assert "python3 -m tox" in readme_commands(), readme_commands()
    assert len(readme_commands()) >= 8, readme_commands()


def test_every_claimed_python_has_a_tox_env() -> None:
    """Every Python the package claims (README) is tested: each version classifier by tox,
    3.11 in every env (tox's own interpreter in CI), the others in their pyXY env."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    claimed = re.findall(r'"Programming Language :: Python :: (3\.\d+)"', pyproject)
    env_list = TOX["tox"]["env_list"]
    tested = {"3.11", *(f"3.{minor}" for minor in re.findall(r"\bpy3(\d+)\b", env_list))}
    assert set(claimed) == tested, f"classifiers claim {claimed}; tox tests {sorted(tested)}"
    assert f'requires-python = ">={min(claimed, key=lambda v: int(v[2:]))}"' in pyproject
