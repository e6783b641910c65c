"""The plugin is installed in every project's pytest: until a kit run is asked for, it changes
nothing there (issue 11, point 8)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SAMPLE_CONFTEST = """
def pytest_addoption(parser):
    parser.addoption("--list-backends", action="store_true", help="the project's own listing")
    parser.addoption("--backend-option", default="none", help="the project's own option")

def pytest_configure(config):
    config.addinivalue_line("markers", "clause(name): the project's own clause marker")
    config.addinivalue_line("markers", "conformance: the project's own marker")
"""

SAMPLE_TESTS = """
import pytest

@pytest.mark.clause("mine")
def test_fails():
    assert 1 + 1 == 3

@pytest.mark.clause("mine")
@pytest.mark.conformance
def test_reads_its_own_options(request):
    assert request.config.getoption("list_backends") is True
    assert request.config.getoption("backend_option") == "x"
"""

_TIMINGS = re.compile(r"\d+\.\d+s( \(\d+:\d\d:\d\d\))?")
_KIT_IN_PLUGIN_LIST = re.compile(r"pmcp-tasks-[^,\s]+(, )?")


def _run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--list-backends", "--backend-option=x", "-rA", *args],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )


def test_sample_project_run_is_byte_for_byte_unaffected(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(SAMPLE_CONFTEST)
    (tmp_path / "test_sample.py").write_text(SAMPLE_TESTS)
    runs = {}
    for label, extra in (("with", ()), ("without", ("-p", "no:pmcp_tasks_conformance"))):
        done = _run(tmp_path, "--strict-markers", "-p", "no:cacheprovider", *extra)
        assert done.returncode == 1, done.stdout + done.stderr  # one failing test, no usage error
        runs[label] = (_TIMINGS.sub("<t>", done.stdout), done.stderr)
    (with_out, with_err), (without_out, without_err) = runs["with"], runs["without"]
    # Everything else is compared byte for byte, with one exception that cannot be avoided:
    # pytest's "plugins:" header line names each distribution whose pytest11 plugin it loaded,
    # so the run that loads the kit necessarily says "pmcp-tasks-<version>" there and the run
    # that blocks it does not. That name is removed from that one line, nothing else: the rest
    # of the line (the other plugins, their order) must match too.
    plugins = [line for line in with_out.splitlines() if line.startswith("plugins:")]
    assert len(plugins) == 1, plugins
    assert "pmcp-tasks-" in plugins[0], plugins
    assert with_out.replace(plugins[0], _KIT_IN_PLUGIN_LIST.sub("", plugins[0])) == without_out
    assert with_err == without_err
    # What "unaffected" means here, spelled out: the project's own marker and failure text.
    assert "[mine]" not in with_out
    assert "contract clause broken" not in with_out
    assert "pmcp-tasks conformance summary" not in with_out
    assert "FAILED test_sample.py::test_fails - assert (1 + 1) == 3" in with_out
    assert "PASSED test_sample.py::test_reads_its_own_options" in with_out


def test_only_namespaced_names_are_claimed_outside_kit_runs(pytester: pytest.Pytester) -> None:
    # A fresh process: in this one the kit's contract may already be imported (a kit run).
    result = pytester.runpytest_subprocess("--markers", "-p", "no:cacheprovider")
    markers = result.stdout.str()
    assert "@pytest.mark.pmcp_clause(*ids)" in markers
    assert "@pytest.mark.clause(" not in markers
    assert "@pytest.mark.conformance:" not in markers
    help_text = pytester.runpytest_subprocess("--help").stdout.str()
    for option in ("--taskstore-backend", "--taskstore-backend-option", "--conformance-baseline"):
        assert option in help_text, option


def test_pmcp_clause_marker_tags_a_projects_own_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.pmcp_clause("KV-DEL-1")
        def test_mine():
            assert False
        """
    )
    result = pytester.runpytest("--strict-markers")
    result.stdout.fnmatch_lines(
        ["*- contract clause broken -*", "KV-DEL-1: *", "*pmcp-tasks conformance summary*"]
    )


def test_list_backends_resolves_module_factory_names(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        kitfactory="def factory(*, namespace, clock):\n    raise NotImplementedError\n"
    )
    pytester.syspathinsert()
    result = pytester.runpytest(
        "--list-backends", "--backend=kitfactory:factory,nosuchmod_for_kit:factory"
    )
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "*memory *reference_backends.memory:kit_factory *- *ready",
            "kitfactory:factory *kitfactory:factory *- *ready",
            "nosuchmod_for_kit:factory *error: *cannot import module 'nosuchmod_for_kit'*",
        ]
    )
    namespaced = pytester.runpytest("--taskstore-list-backends")
    namespaced.stdout.fnmatch_lines(["*memory *reference_backends.memory:kit_factory*"])
