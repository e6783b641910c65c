"""Benchmarks of the backends, the task store and the conformance kit (``python -m benchmarks``).

See ``docs/performance.md`` for the latest numbers and what they mean.
"""

import sys
from pathlib import Path

# The benchmarks start their servers with the tests' module for that, tests/servers.py, so that
# one module starts them all. Appended, so nothing in tests/ can shadow an installed module.
sys.path.append(str(Path(__file__).resolve().parent.parent / "tests"))
