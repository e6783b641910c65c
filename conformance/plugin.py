"""The pytest plugin of the conformance kit (entry point ``pytest11: pmcp_tasks_conformance``).

It is auto-loaded in every pytest run of every project where pmcp-tasks is installed, so it
imports only the standard library and pytest (plus the kit's own stdlib-only modules), claims
no fixture names globally, and stays out of the way unless asked:

* ``--taskstore-backend`` is always registered; ``--backend`` only once the initial conftests
  are loaded, and only when no conftest or plugin defined it first, so a project with its own
  ``--backend`` keeps working.
* ``pytest --backend=NAME`` with no test paths collects the kit's suite (``conformance/suite``)
  instead of the project's ``testpaths``. With explicit paths, pytest collects exactly those
  (add ``--pyargs conformance.suite`` to also run the kit).
* Hypothesis and anyio (the ``testing`` extra) are imported only when the kit runs.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import platform
import re
import sys
from collections.abc import Generator
from importlib import metadata, util
from pathlib import Path
from typing import Any

import pytest
from _pytest._code.code import ExceptionRepr

from conformance import registry
from conformance.clauses import CLAUSES, describe
from conformance.failures import failure_property
from conformance.html_report import render_html
from conformance.report import (
    PROP_AREA,
    PROP_BACKEND,
    PROP_BROKEN,
    PROP_CLAUSES,
    Results,
)

SUITE_DIR = Path(__file__).with_name("suite")
_GROUP = "pmcp-tasks"
SELECTED_KEY = pytest.StashKey[list[registry.SelectedBackend]]()
_TESTING_EXTRA_MODULES = ("hypothesis", "anyio")
_CLAUSE_ID_RE = re.compile(r"\b[A-Z]+-[A-Z]+-\d+\b")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(_GROUP, "pmcp-tasks conformance kit")
    group.addoption(
        "--taskstore-backend",
        action="append",
        default=[],
        dest="taskstore_backend",
        metavar="NAME",
        help="Run the StorageBackend conformance kit against NAME: an entry point of group "
        "'pmcp_tasks.backends' (see --list-backends) or 'package.module:attr'. Repeatable "
        "and comma-separated. Alias: --backend (unless a conftest defines --backend itself).",
    )
    group.addoption(
        "--backend-option",
        action="append",
        default=[],
        dest="taskstore_backend_options",
        metavar="KEY=VALUE",
        help="Keyword argument (a string) for every backend factory, e.g. redis_url=... "
        "Repeatable.",
    )
    group.addoption(
        "--list-backends",
        action="store_true",
        dest="taskstore_list_backends",
        help="List the registered backends, their factories and whether their extra is "
        "installed, then exit.",
    )
    group.addoption(
        "--conformance-report",
        dest="conformance_report",
        metavar="PATH",
        help="Write the kit's JSON report (backends, capabilities, per-clause results) to PATH.",
    )
    group.addoption(
        "--conformance-html",
        dest="conformance_html",
        metavar="PATH",
        help="Write the same report as one self-contained HTML page to PATH: clause matrix, "
        "failures with reproducers, a timeline of every non-linearizable window.",
    )


def _option_defined(parser: pytest.Parser, name: str) -> bool:
    """Whether any plugin or initial conftest has registered the option ``name``."""
    return any(name in option.names() for group in parser._groups for option in group.options)


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> Generator[None, None, None]:
    """Add ``--backend`` if nobody owns it; point a bare kit run at the kit's suite.

    This runs after the initial conftests (whose ``pytest_addoption`` may define ``--backend``)
    and before pytest parses the command line for good, which is the only window in which an
    auto-loaded plugin can offer ``--backend`` without breaking projects that already have it.
    """
    result = yield
    if not _option_defined(parser, "--backend"):
        parser.getgroup(_GROUP).addoption(
            "--backend",
            action="append",
            dest="taskstore_backend",
            metavar="NAME",
            help="Alias of --taskstore-backend.",
        )
    known = parser.parse_known_args(args)
    if known.taskstore_backend and not known.file_or_dir and not known.taskstore_list_backends:
        args.extend(_suite_args(early_config))
    return result


def _suite_args(config: pytest.Config) -> list[str]:
    """The suite directory (tidy node ids), or its files if ``python_files`` would skip them."""
    files = sorted(SUITE_DIR.glob("test_*.py"))
    patterns = [str(pattern) for pattern in config.getini("python_files")]
    if all(any(fnmatch.fnmatch(path.name, p) for p in patterns) for path in files):
        return [str(SUITE_DIR)]
    return [str(path) for path in files]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Hypothesis loads --hypothesis-profile in its own pytest_configure; our profiles must be
    # registered before that (tryfirst), and only when asked for, so that a project that never
    # names a profile does not import Hypothesis through us.
    if config.getoption("hypothesis_profile", None) and util.find_spec("hypothesis"):
        import conformance.profiles  # noqa: F401

    config.addinivalue_line(
        "markers",
        "clause(*ids): the contract clause(s) this test checks, e.g. clause('KV-CAS-3'); "
        "failures name the clause and its rule",
    )
    config.addinivalue_line(
        "markers",
        "conformance: a test of the pmcp-tasks conformance kit (added to every clause-tagged test)",
    )
    reporting = _Reporting(config)
    config.pluginmanager.register(reporting, "pmcp_tasks_conformance_reporting")
    names: list[str] = config.option.taskstore_backend or []
    if not names or config.option.taskstore_list_backends:
        return
    missing = [name for name in _TESTING_EXTRA_MODULES if util.find_spec(name) is None]
    if missing:
        raise pytest.UsageError(
            f"the conformance kit needs {', '.join(missing)}: pip install 'pmcp-tasks[testing]'"
        )
    selected = registry.select(names, config.option.taskstore_backend_options or [])
    for backend in selected:
        # What the backend declares, for the summary even when no selected test opens it.
        declared = dataclasses.asdict(registry.probe(backend))
        reporting.results.capabilities[backend.name] = declared
    config.stash[SELECTED_KEY] = selected
    if config.getoption("hypothesis_profile", None) is None:
        from conformance.profiles import load_default_profile

        load_default_profile()


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if config.option.taskstore_list_backends:
        print(registry.format_backend_list(registry.available_backends()))
        return 0
    return None


def selected_backends(config: pytest.Config) -> list[registry.SelectedBackend]:
    """The backends named by ``--backend``; a usage error when the kit's suite runs without."""
    selected = config.stash.get(SELECTED_KEY, None)
    if not selected:
        raise pytest.UsageError(
            "the conformance suite needs a backend: pytest --backend NAME "
            "(or --taskstore-backend NAME); see pytest --list-backends"
        )
    return selected


def clause_ids(item: pytest.Item) -> tuple[str, ...]:
    """Every clause ID the item is tagged with, in marker order, without duplicates."""
    ids: list[str] = []
    for mark in item.iter_markers("clause"):
        for clause_id in mark.args:
            if clause_id not in ids:
                ids.append(str(clause_id))
    return tuple(ids)


def _area(item: pytest.Item, clauses: tuple[str, ...]) -> str:
    """The kit module that defines the test (``conformance.contract.cas`` -> ``cas``)."""
    module = getattr(getattr(item, "function", None), "__module__", "") or ""
    prefix = "conformance.contract."
    if module.startswith(prefix):
        return module[len(prefix) :]
    clause = CLAUSES.get(clauses[0])
    return clause.area if clause is not None else "other"


def _backend_label(item: pytest.Item) -> str:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "backend_factory" in callspec.params:
        return str(callspec.params["backend_factory"])
    cls = getattr(item, "cls", None)
    return cls.__name__ if cls is not None else item.nodeid


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        clauses = clause_ids(item)
        if clauses:
            item.add_marker("conformance")
            item.user_properties.extend(
                [
                    (PROP_CLAUSES, ",".join(clauses)),
                    (PROP_AREA, _area(item, clauses)),
                    (PROP_BACKEND, _backend_label(item)),
                ]
            )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Make every failure of a clause-tagged test say which clause broke, in words."""
    report = yield
    clauses = clause_ids(item)
    if report.failed and clauses:
        longrepr = report.longrepr
        crash = getattr(longrepr, "reprcrash", None)
        # A test that checks many clauses (the state machine, the race fuzzer) starts its
        # failure message with the one that broke; name that one alone when it does.
        named = _CLAUSE_ID_RE.findall(crash.message) if crash is not None else []
        broken = [clause_id for clause_id in clauses if clause_id in named] or clauses
        report.user_properties.append((PROP_BROKEN, ",".join(broken)))
        text = "\n".join(describe(clause_id) for clause_id in broken)
        if isinstance(longrepr, ExceptionRepr):
            longrepr.addsection("contract clause broken", text)
        else:
            report.sections.append(("contract clause broken", text))
        if crash is not None:
            crash.message = f"[{', '.join(broken)}] {crash.message}"
        report.user_properties.append(failure_property(item, call, _backend_label(item), SUITE_DIR))
    return report


class _Reporting:
    """Per-run plugin object: collects results (also from xdist workers) and reports them."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results = Results()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.results.record(report)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.results.tests:
            return
        terminalreporter.section("pmcp-tasks conformance summary")
        for line in self.results.summary_lines():
            terminalreporter.write_line(line)
        path = self.config.option.conformance_report
        if path:
            terminalreporter.write_line(f"conformance report: {path}")
        html_path = self.config.option.conformance_html
        if html_path:
            terminalreporter.write_line(f"conformance HTML report: {html_path}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, exitstatus: int) -> None:
        path = self.config.option.conformance_report
        html_path = self.config.option.conformance_html
        if not (path or html_path) or hasattr(self.config, "workerinput"):
            return
        report = self.results.to_json(_meta(self.config, int(exitstatus)))
        if path:
            Path(path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        if html_path:
            Path(html_path).write_text(render_html(report), encoding="utf-8")


def _meta(config: pytest.Config, exitstatus: int) -> dict[str, Any]:
    try:
        version = metadata.version("pmcp-tasks")
    except metadata.PackageNotFoundError:
        version = "unknown"
    selected = config.stash.get(SELECTED_KEY, [])
    return {
        "kit_version": version,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "exit_status": exitstatus,
        "selected": [{"name": backend.name, "options": backend.options} for backend in selected],
        "hypothesis": _hypothesis_meta(config),
    }


def _hypothesis_meta(config: pytest.Config) -> dict[str, Any] | None:
    if "hypothesis" not in sys.modules:
        return None
    from hypothesis import settings

    current = settings()
    return {
        "profile": settings.get_current_profile_name(),
        "seed": config.getoption("hypothesis_seed", None),
        "max_examples": current.max_examples,
        "derandomize": current.derandomize,
    }
