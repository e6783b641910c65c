"""The README's benchmark command keeps working: ``python3 -m benchmarks --quick``, every section,
against the real servers it starts itself (redis-server, moto's server, the example MCP server).

Nothing here is timed and no figure is judged: the assertions are about what a user reads
(every table, in order, between two warnings that a smoke run proves nothing) and where the
servers' output went (log files, not the terminal). Needs every extra (tox env
``mcp-redis-dynamodb``) and ``redis-server`` on PATH; without it the run fails saying so.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = [
    "1. InMemoryBackend vs a dict under a lock",
    "2. RedisBackend vs raw redis-py (real redis-server)",
    "3. DynamoDbBackend vs raw boto3 (moto server over HTTP)",
    "4. GenericTaskStore over each backend",
    "5. Conformance kit wall time (pytest --backend=NAME, empty dir)",
    "6. The MCP binding over streamable HTTP (example server)",
    "7. The per-owner cap on a real redis-server",
    "8. Redis: 100,000 dead records in one owner's partition",
]


def _tables(section: str) -> list[list[str]]:
    """The rows (cells split) of each Markdown table in ``section``, header and rule dropped."""
    tables: list[list[str]] = []
    previous = ""
    for line in section.splitlines():
        if line.startswith("|") and not line.startswith("|-"):
            if not previous.startswith("|"):
                tables.append([])
            tables[-1].append(line)
        previous = line
    return [rows[1:] for rows in tables]  # the first line of each is its header


def test_quick_run_prints_every_section_in_order_between_two_warnings(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--logs", str(logs)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    out = done.stdout
    lines = out.strip().splitlines()
    for warning in (lines[0], lines[-1]):
        assert warning.startswith("SMOKE RUN (--quick)"), out
        assert "prove nothing" in warning, warning
    headings = re.findall(r"^## (.*)$", out, flags=re.MULTILINE)
    assert headings == SECTIONS, headings
    parts = re.split(r"^## .*$", out, flags=re.MULTILINE)[1:]
    for heading, part in zip(SECTIONS, parts, strict=True):
        tables = _tables(part)
        assert tables, f"section {heading!r} printed no table:\n{part}"
        assert all(tables), f"section {heading!r} has a table without rows:\n{part}"
        assert "FAILED" not in part, part
        assert "timed out" not in part, part
    # Section 1-3's operation tables have every operation on every area.
    for part in parts[:3]:
        operations = {row.split("|")[2].strip() for row in _tables(part)[0]}
        assert operations == {"get", "put", "cas", "delete", "list page"}, part
    # The servers' own output is in the log directory, not between the tables (its logger
    # wraps the message at 80 columns, so one word of it is what the log reliably holds).
    assert "StreamableHTTP" not in out, out
    assert "StreamableHTTP" in (logs / "mcp-example-memory.log").read_text()
    assert sorted(path.name for path in logs.iterdir()) == [
        "mcp-example-memory.log",
        "mcp-example-redis.log",
        "moto-server.log",
        "redis-server.log",
    ]
    assert f"Server logs: {logs}" in out


def test_peer_section_without_the_peer_fails_saying_how_to_install_it(tmp_path: Path) -> None:
    """``--only peer`` installs nothing: where fastmcp, fastmcp-tasks and pydocket cannot be
    imported (here: blocked in ``sys.modules``, whatever this environment holds), it names them
    and the install command, exits 3, and starts no server."""
    logs = tmp_path / "logs"
    blocked = (
        "import runpy, sys\n"
        "sys.modules.update(dict.fromkeys(('fastmcp', 'fastmcp_tasks', 'docket')))\n"
        "sys.argv = ['benchmarks', '--only', 'peer', '--logs', sys.argv[1]]\n"
        "runpy.run_module('benchmarks', run_name='__main__', alter_sys=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", blocked, str(logs)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 3, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.stderr.strip() == (
        "python -m benchmarks: the peer section needs fastmcp, fastmcp_tasks, docket: "
        "pip install 'pmcp-tasks[testing-mcp]' (fastmcp-tasks 4.1.4, fastmcp, pydocket)"
    ), done.stderr
    assert done.stdout == "", done.stdout
    assert list(logs.iterdir()) == []
