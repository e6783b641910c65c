"""The binding is opt-in: ``import pmcp_tasks`` never loads it, and without the SDK importing it
is one ImportError that says what to install."""

from __future__ import annotations

import subprocess
import sys


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)


def test_core_import_loads_neither_the_binding_nor_the_sdk() -> None:
    done = _python(
        "import sys, pmcp_tasks; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mcp', 'pydantic') "
        "or m.startswith('pmcp_tasks.mcp')))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_without_the_sdk_the_error_names_the_extra() -> None:
    # ``sys.modules[name] = None`` makes ``import name`` fail as if it were not installed.
    done = _python("import sys; sys.modules['mcp'] = None; import pmcp_tasks.mcp")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: pmcp_tasks.mcp needs the MCP Python SDK"), done.stderr
    assert "pip install 'pmcp-tasks[mcp]'" in last


def test_with_the_sdk_the_binding_imports() -> None:
    done = _python("import pmcp_tasks.mcp as m; print(m.EXTENSION_ID)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "io.modelcontextprotocol/tasks"
