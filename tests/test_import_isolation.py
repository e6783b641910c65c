"""The core and the memory backend import nothing outside the standard library."""

from __future__ import annotations

import json
import subprocess
import sys

OWN_PACKAGES = {"pmcp_tasks", "reference_backends"}


def test_core_and_memory_backend_load_only_the_standard_library() -> None:
    code = (
        "import sys, json\n"
        "before = set(sys.modules)\n"
        "import pmcp_tasks, reference_backends.memory\n"
        "store = reference_backends.memory.InMemoryTaskStore()\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    # -I: isolated mode, so no sitecustomize or user site can pre-load anything.
    done = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    roots = {name.split(".")[0] for name in loaded}
    assert {"pmcp_tasks", "reference_backends"} <= roots  # the check saw the imports
    foreign = sorted(roots - set(sys.stdlib_module_names) - OWN_PACKAGES)
    assert foreign == [], f"third-party modules loaded: {foreign}"
