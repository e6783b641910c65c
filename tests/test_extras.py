"""Each extra stands alone: what an import loads, and what a missing extra says.

Every check runs in a fresh interpreter so that modules loaded by pytest or other tests cannot
hide an import. Which checks apply depends on what this environment installed: a backend whose
client library is present must import only its own client; one whose client is absent must
fail with an ImportError (and a kit usage error) that names the extra to install. Nothing here
skips: each environment of the tox matrix runs the half that applies to it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from servers import EXPECT_ENV, expected_backends, installed_backends, is_installed

THIRD_PARTY_CLIENTS = ("redis", "fakeredis", "boto3", "botocore", "moto")
BACKENDS = {
    # backend name: (module, class, its client libraries)
    "redis": ("reference_backends.redis", "RedisBackend", ("redis",)),
    "dynamodb": ("reference_backends.dynamodb", "DynamoDbBackend", ("boto3", "botocore")),
}


def _loaded_after(statement: str) -> set[str]:
    """Top-level names of the client libraries that ``statement`` leaves in sys.modules."""
    probe = (
        f"import sys, json\n{statement}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout)) & set(THIRD_PARTY_CLIENTS)


def test_this_environment_has_the_backends_it_promises() -> None:
    """Tests parametrize over installed backends; a broken install must not make them vanish."""
    assert set(expected_backends()) <= set(installed_backends()), (
        f"${EXPECT_ENV} promises {expected_backends()}, installed: {installed_backends()}"
    )


def test_core_kit_and_reference_package_load_no_client_library() -> None:
    statement = "import pmcp_tasks, reference_backends, reference_backends.memory, conformance"
    assert _loaded_after(statement) == set()


def _installed(name: str) -> bool:
    return is_installed(BACKENDS[name][2][0])


def _run(*args: str, cwd: object) -> tuple[int, str]:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=str(cwd))
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_backend_imports_alone_or_names_its_extra(name: str, tmp_path: object) -> None:
    module, cls, libs = BACKENDS[name]
    if _installed(name):
        assert _loaded_after(f"from {module} import {cls}") == set(libs)
    else:
        code, output = _run("-c", f"from {module} import {cls}", cwd=tmp_path)
        assert code == 1
        assert "ImportError" in output
        assert f"pip install 'pmcp-tasks[{name}]'" in output


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_kit_runs_backend_or_gives_usage_error(name: str, tmp_path: object) -> None:
    code, output = _run(
        "-m",
        "pytest",
        f"--backend={name}",
        "--collect-only",
        "-q",
        "-p",
        "no:cacheprovider",
        cwd=tmp_path,
    )
    assert "Traceback" not in output
    if _installed(name):
        assert code == 0, output
        assert f"[{name}]" in output, output
    else:
        assert code == 4, output
        assert f"pip install 'pmcp-tasks[{name}]'" in output


def test_list_backends_tells_which_are_usable(tmp_path: object) -> None:
    code, output = _run("-m", "pytest", "--list-backends", "-p", "no:cacheprovider", cwd=tmp_path)
    assert code == 0, output
    lines = {line.split()[0]: line for line in output.splitlines() if line.strip()}
    assert "memory" in lines, output
    for name in BACKENDS:
        assert name in lines, output
        assert ("missing" in lines[name]) is not _installed(name), lines[name]
