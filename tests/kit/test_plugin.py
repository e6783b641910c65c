"""The plugin's command line, collection and reporting, through pytester."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from xml.etree import ElementTree

import pytest
from hypothesis import settings

from conformance import plugin, registry

pytest_plugins = ["pytester"]

HERE = Path(__file__).parent.parent  # tests/, where the broken_backends package lives
BROKEN_DELETE = "broken_backends:delete_always_true"

RECORDING_FACTORY = """
import json, pathlib
from reference_backends.memory import InMemoryBackend

def factory(*, namespace, clock, **options):
    pathlib.Path("options.json").write_text(json.dumps(options))
    return InMemoryBackend(namespace=namespace, clock=clock)
"""


def test_project_with_its_own_backend_option_keeps_working(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_addoption(parser):
            parser.addoption("--backend", default="sqlite", help="the project's own option")
        """
    )
    pytester.makepyfile(
        """
        def test_own_option(request):
            assert request.config.getoption("backend") == "postgres"
        """
    )
    result = pytester.runpytest("--backend=postgres")
    result.assert_outcomes(passed=1)
    # The kit stays reachable under its namespaced name.
    help_text = pytester.runpytest("--help").stdout.str()
    assert "--taskstore-backend" in help_text
    assert "the project's own option" in help_text


def test_list_backends_shows_names_factories_and_extras(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--list-backends")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "name *factory *extra *status",
            "*memory *reference_backends.memory:kit_factory *- *ready",
            "*redis *reference_backends.redis:kit_factory *redis *",
        ]
    )


def test_unknown_backend_is_a_usage_error_listing_the_names(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--backend=nosuch")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: unknown backend 'nosuch': available backends: *memory*"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_missing_extra_is_a_usage_error_naming_pip_install(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    ep = metadata.EntryPoint(
        name="fancy", value="no_such_module_for_kit:factory [fancy]", group=registry.GROUP
    )
    monkeypatch.setattr(registry, "entry_points", lambda: {"fancy": ep})
    result = pytester.runpytest("--backend=fancy")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: backend 'fancy' needs the 'fancy' extra: pip install '*[[]fancy[]]'*"]
    )
    assert "Traceback" not in result.stderr.str()


def test_missing_testing_extra_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plugin, "TESTING_EXTRA_MODULES", ("no_such_module_for_kit",))
    result = pytester.runpytest("--backend=memory")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *pip install 'pmcp-tasks[[]testing[]]'"])


def test_bad_factory_path_is_a_usage_error(pytester: pytest.Pytester) -> None:
    for name, message in [
        ("no_such_module_for_kit:factory", "*cannot import module 'no_such_module_for_kit'*"),
        ("json:no_such_attr", "*module 'json' has no attribute 'no_such_attr'*"),
        ("json:__doc__", "*resolves to str, not a factory*"),
    ]:
        result = pytester.runpytest(f"--backend={name}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR, name
        result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_malformed_backend_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--backend=memory", "--backend-option", "novalue")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --backend-option 'novalue': expected KEY=VALUE*"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "raise ImportError(\"needs an engine: pip install 'mykit[engine]'\")",
            "*could not be opened: ImportError: needs an engine: pip install 'mykit?engine?'",
        ),
        ("raise ValueError('unknown option: colour')", "*ValueError: unknown option: colour"),
    ],
)
def test_factory_that_cannot_open_is_one_usage_error(
    pytester: pytest.Pytester, body: str, message: str
) -> None:
    """Not the same error charged to every test's clause (it used to fail KV-CAP-1 first)."""
    pytester.makepyfile(badfactory=f"def factory(*, namespace, clock, **options):\n    {body}\n")
    pytester.syspathinsert()
    result = pytester.runpytest("--backend=badfactory:factory")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: backend 'badfactory:factory'{message}"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_backend_options_reach_the_factory_as_strings(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(kitfactory=RECORDING_FACTORY)
    pytester.syspathinsert()
    result = pytester.runpytest(
        "--backend=kitfactory:factory",
        "--backend-option",
        "flavour=mint",
        "--backend-option=size=3",
        "-k",
        "test_capabilities_are_well_formed",
    )
    result.assert_outcomes(passed=1)
    assert json.loads((pytester.path / "options.json").read_text()) == {
        "flavour": "mint",
        "size": "3",
    }


def test_several_backends_repeated_and_comma_separated(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(kitfactory=RECORDING_FACTORY)
    pytester.syspathinsert()
    result = pytester.runpytest(
        "--backend=memory,kitfactory:factory",
        "--taskstore-backend=memory",
        "-k",
        "test_capabilities_are_well_formed",
        "-v",
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*[[]memory[]] PASSED*", "*[[]kitfactory:factory[]] PASSED*"])


def test_bare_kit_run_collects_only_the_kit(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntestpaths = tests\n")
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_mine.py").write_text("def test_mine():\n    pass\n")
    result = pytester.runpytest("--backend=memory", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    collected = result.stdout.str()
    assert "test_mine" not in collected
    assert "test_keys.py::TestKeys::" in collected
    # With an explicit path, the user's tests run as usual and the kit stays out.
    own = pytester.runpytest("--backend=memory", "tests")
    own.assert_outcomes(passed=1)


def test_suite_without_a_backend_says_what_is_missing(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--pyargs", "conformance.suite.test_keys")
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*the conformance suite needs a backend: pytest --backend NAME*"])


def test_third_party_subclass_with_its_own_factory(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mine="""
        import pytest
        from conformance import BackendContract
        from reference_backends.memory import InMemoryBackend, MemoryStore

        STORE = MemoryStore()

        class TestMine(BackendContract):
            @pytest.fixture
            def backend_factory(self):
                def factory(*, namespace, clock):
                    return InMemoryBackend(namespace=namespace, clock=clock, store=STORE)
                return factory
        """
    )
    result = pytester.runpytest("test_mine.py", "-k", "cas or keys or shared", "--strict-markers")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["*pmcp-tasks conformance summary*", "backend TestMine: *"])


def test_failure_names_clause_and_rule_and_report_is_complete(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert(HERE)
    report_path = pytester.path / "out" / "report.json"
    report_path.parent.mkdir()
    result = pytester.runpytest(
        f"--backend={BROKEN_DELETE}",
        "-k",
        "test_delete or test_capabilities",
        "--conformance-report",
        str(report_path),
        "--conformance-html",
        str(report_path.with_suffix(".html")),
        "--strict-markers",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*- contract clause broken -*",
            "KV-DEL-1: `delete` returns `True` iff a live record was removed*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*pmcp-tasks conformance summary*",
            f"backend {BROKEN_DELETE}: max_record_bytes=None, shared_in_process=True, *",
            "  area *passed *failed *skipped",
            "  delete *2 *2 *0",
            "  expiry *0 *1 *0",
        ]
    )
    report = json.loads(report_path.read_text())
    assert report["kit_version"] == metadata.version("pmcp-tasks")
    assert report["selected"] == [{"name": BROKEN_DELETE, "options": {}}]
    assert report["backends"][BROKEN_DELETE]["capabilities"] == {
        "max_record_bytes": None,
        "shared_in_process": True,
        "shared_across_processes": False,
        "injectable_clock": True,
    }
    assert report["hypothesis"]["profile"] in {"dev", "ci", "thorough"}
    delete = report["clauses"]["KV-DEL-1"]["results"][BROKEN_DELETE]
    assert delete["status"] == "failed"
    assert delete["failed"] == 3
    assert report["clauses"]["KV-CAP-1"]["results"][BROKEN_DELETE]["status"] == "passed"
    assert report["clauses"]["KV-LIST-6"]["results"][BROKEN_DELETE]["status"] == "untested"
    # Each failure keeps the kit's statement that failed, beside the values its message shows.
    absent = next(t for t in report["tests"] if "test_delete_of_an_absent_key" in t["nodeid"])
    assert absent["failure"]["message"] == "AssertionError: assert True is False"
    check = absent["failure"]["check"]
    assert re.fullmatch(
        r'conformance/contract/delete\.py:\d+: assert await backend\.delete\("p:never"\) is False',
        check,
    ), check
    assert html.escape(check) in report_path.with_suffix(".html").read_text()


def test_backend_route_shows_the_values_of_a_failed_assert(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kit compares with plain ``assert``: the plugin registers rewriting for its modules
    before they are imported, so a ``--backend`` run in a fresh process shows both values.
    (tests/kit/test_verdicts.py checks the same on the subclass route.)"""
    monkeypatch.setenv("PYTHONPATH", str(HERE))  # the fresh process imports broken_backends
    result = pytester.runpytest_subprocess(
        f"--backend={BROKEN_DELETE}",
        "-k",
        "test_delete_of_an_absent_key_returns_false",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            '>       assert await backend.delete("p:never") is False',
            "E       assert True is False",
            "*- contract clause broken -*",
            "KV-DEL-1: *",
        ]
    )


def test_clause_section_is_part_of_the_failure_text(pytester: pytest.Pytester) -> None:
    """The plugin adds its section to the traceback's representation through ``addsection``,
    which pytest does not document: only that way does JUnit XML's failure text carry it, so
    this fails when pytest changes that method."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.pmcp_clause("KV-DEL-1")
        def test_mine():
            assert 1 == 2
        """
    )
    result = pytester.runpytest("--junitxml", "junit.xml", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    failure = ElementTree.parse(pytester.path / "junit.xml").find(".//failure")
    assert failure is not None
    assert failure.get("message", "").startswith("[KV-DEL-1] assert 1 == 2"), failure.attrib
    text = failure.text or ""
    assert "contract clause broken" in text, text
    assert "KV-DEL-1: `delete` returns `True` iff a live record was removed" in text, text


@pytest.mark.parametrize("profile", ["dev", "ci", "thorough"])
def test_hypothesis_profile_option_selects_the_kits_profiles(
    pytester: pytest.Pytester, profile: str
) -> None:
    """``--hypothesis-profile`` is loaded by Hypothesis before any kit module is imported."""
    report_path = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "--backend=memory",
        f"--hypothesis-profile={profile}",
        "-k",
        "test_backend_matches_model",
        "--conformance-report",
        str(report_path),
        "-p",
        "no:cacheprovider",
        *(["--collect-only"] if profile == "thorough" else []),
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    if profile != "thorough":
        report = json.loads(report_path.read_text())
        assert report["hypothesis"]["profile"] == profile
        assert report["hypothesis"]["max_examples"] == settings.get_profile(profile).max_examples


def test_xdist_runs_the_kit_on_two_workers(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        "--backend=memory", "-n", "2", "-k", "test_cas or test_isolation"
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["*pmcp-tasks conformance summary*", "  cas *0 *0", "  isolation *0 *0"]
    )


def test_plugin_imports_neither_hypothesis_nor_anyio() -> None:
    code = (
        "import sys, conformance.plugin; "
        "bad = {'hypothesis', 'anyio'} & set(sys.modules); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_summary_shows_capabilities_even_when_no_test_opens_the_backend(
    pytester: pytest.Pytester,
) -> None:
    """The state machine opens its own backends; the summary still says what was declared."""
    result = pytester.runpytest("--backend=memory", "-k", "test_backend_matches_model")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "backend memory (on Python dicts, in process): max_record_bytes=None, "
            "shared_in_process=True, "
            "shared_across_processes=False, injectable_clock=True"
        ]
    )
