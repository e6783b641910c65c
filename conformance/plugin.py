"""The pytest plugin of the conformance kit (entry point ``pytest11: pmcp_tasks_conformance``).

It is auto-loaded in every pytest run of every project where pmcp-tasks is installed, so it
imports only the standard library and pytest (plus the kit's own stdlib-only modules), claims
no fixture names globally, and stays out of the way until a kit run is requested (``--backend``
or a test collected from the kit's contract classes):

* it registers only namespaced options (``--taskstore-*``, ``--conformance-*``) and the
  namespaced marker ``pmcp_clause``, the one marker every kit test carries; the short options
  ``--backend``, ``--backend-option`` and ``--list-backends`` are added once the initial
  conftests are loaded, and only when no conftest or plugin defined them first, so a project
  with options of those names keeps them;
* only tests marked ``pmcp_clause`` get their reports rewritten, and the summary is printed
  only when such tests ran;
* importing the kit's modules changes no state of the plugin: a test is the kit's by its
  marker, seen at collection;
* ``pytest --backend=NAME`` with no test paths collects the kit's suite (``conformance/suite``)
  instead of the project's ``testpaths``. With explicit paths, pytest collects exactly those
  (add ``--pyargs conformance.suite`` to also run the kit);
* Hypothesis and anyio (the ``testing`` extra) are imported only when the kit runs.
"""

from __future__ import annotations

import pytest

# Before any kit module that asserts is imported: a failure then shows the values compared.
# (pytest rewrites entry-point plugins' distributions itself, but not editable installs.)
pytest.register_assert_rewrite(
    "conformance.contract", "conformance.suite", "conformance.model", "conformance.cross_process"
)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import fnmatch  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
from collections.abc import Generator  # noqa: E402
from importlib import metadata, util  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from conformance import registry, time_limits, verdicts  # noqa: E402
from conformance.baseline import Baseline  # noqa: E402
from conformance.clauses import CLAUSES, describe  # noqa: E402
from conformance.failures import failure_property  # noqa: E402
from conformance.html_report import render_html  # noqa: E402
from conformance.report import (  # noqa: E402
    PROP_AREA,
    PROP_BACKEND,
    PROP_BROKEN,
    PROP_CLAUSE,
    PROP_CLAUSES,
    PROP_EXPECTED,
    PROP_UNDECIDED,
    Results,
)

SUITE_DIR = Path(__file__).with_name("suite")
_GROUP = "pmcp-tasks"
SELECTED_KEY = pytest.StashKey[list[registry.SelectedBackend]]()
_BASELINE_KEY = pytest.StashKey[Baseline]()
TESTING_EXTRA_MODULES = ("hypothesis", "anyio")
"""What the ``testing`` extra installs and a kit run imports: checked first, for a usage error."""
CLAUSE_MARK = "pmcp_clause"

_ALIASES: dict[str, dict[str, Any]] = {
    "--backend": {
        "action": "append",
        "dest": "taskstore_backend",
        "metavar": "NAME",
        "help": "Alias of --taskstore-backend.",
    },
    "--backend-option": {
        "action": "append",
        "dest": "taskstore_backend_options",
        "metavar": "KEY=VALUE",
        "help": "Alias of --taskstore-backend-option.",
    },
    "--list-backends": {
        "action": "store_true",
        "dest": "taskstore_list_backends",
        "help": "Alias of --taskstore-list-backends.",
    },
}
"""Short options, added only where no conftest or plugin has an option of that name."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(_GROUP, "pmcp-tasks conformance kit")
    group.addoption(
        "--taskstore-backend",
        action="append",
        default=[],
        dest="taskstore_backend",
        metavar="NAME",
        help="Run the StorageBackend conformance kit against NAME: an entry point of group "
        "'pmcp_tasks.backends' (see --taskstore-list-backends) or 'package.module:attr'. "
        "Repeatable and comma-separated. Alias: --backend (unless a conftest defines it).",
    )
    group.addoption(
        "--taskstore-backend-option",
        action="append",
        default=[],
        dest="taskstore_backend_options",
        metavar="KEY=VALUE",
        help="Keyword argument (a string) for every backend factory, e.g. redis_url=... "
        "Repeatable. Alias: --backend-option (unless a conftest defines it).",
    )
    group.addoption(
        "--taskstore-list-backends",
        action="store_true",
        dest="taskstore_list_backends",
        help="List the registered backends (and any 'module:attr' given with --backend), "
        "their factories and whether their extra is installed, then exit. "
        "Alias: --list-backends (unless a conftest defines it).",
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
    group.addoption(
        "--conformance-test-timeout",
        dest="conformance_test_timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="Stop a kit test still running after SECONDS (default 600; 0: no limit) and "
        "report that the kit could not decide, charging no clause: a backend call that never "
        "returns would otherwise hang the run.",
    )
    group.addoption(
        "--conformance-baseline",
        dest="conformance_baseline",
        metavar="FILE",
        help="Clauses known to fail, one 'BACKEND CLAUSE-ID [why]' a line: their failures are "
        "expected (xfail) and a listed clause that passes fails the run as a stale entry.",
    )


def _add_unless_taken(parser: pytest.Parser, name: str, spec: dict[str, Any]) -> None:
    """Add the option ``name`` to the kit's group unless a plugin or conftest has one by that
    name.

    pytest has no public question "is this option defined?": ``OptionGroup.addoption`` checks
    names only within its own group, and a clash with another group's option surfaces as
    argparse's ``ArgumentError``, raised by ``addoption`` itself since pytest 9 and when the
    parser is built (``parse_known_args``) before. Either way the kit then leaves the name to
    its owner. tests/kit/test_plugin.py pins this: a project's own ``--backend`` keeps working
    and the kit's stays reachable as ``--taskstore-backend``.
    """
    group = parser.getgroup(_GROUP)
    try:
        group.addoption(name, **spec)
        parser.parse_known_args([])
    except argparse.ArgumentError:
        if group.options and name in group.options[-1].names():
            group.options.pop()


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> Generator[None, None, None]:
    """Add the short options nobody owns; point a bare kit run at the kit's suite.

    This runs after the initial conftests (whose ``pytest_addoption`` may define the same
    names) and before pytest parses the command line for good, which is the only window in
    which an auto-loaded plugin can offer them without breaking projects that already have them.
    """
    result = yield
    for name, spec in _ALIASES.items():
        _add_unless_taken(parser, name, spec)
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
        f"{CLAUSE_MARK}(*ids): the contract clause(s) this test checks, e.g. "
        f"{CLAUSE_MARK}('KV-CAS-3'); failures name the clause and its rule",
    )
    reporting = _Reporting(config)
    config.pluginmanager.register(reporting, "pmcp_tasks_conformance_reporting")
    names: list[str] = config.option.taskstore_backend or []
    if config.option.conformance_baseline:
        config.stash[_BASELINE_KEY] = Baseline.load(config.option.conformance_baseline)
    if names and not config.option.taskstore_list_backends:
        _select_backends(config, names, reporting)


def _select_backends(config: pytest.Config, names: list[str], reporting: _Reporting) -> None:
    """Resolve ``--backend``, probe what each declares and load the kit's Hypothesis profile."""
    missing = [name for name in TESTING_EXTRA_MODULES if util.find_spec(name) is None]
    if missing:
        raise pytest.UsageError(
            f"the conformance kit needs {', '.join(missing)}: pip install 'pmcp-tasks[testing]'"
        )
    selected = registry.select(names, config.option.taskstore_backend_options or [])
    for backend in selected:
        # What the backend declares, for the summary even when no selected test opens it.
        capabilities, hooks, engine = registry.probe(backend)
        reporting.results.capabilities[backend.name] = dataclasses.asdict(capabilities)
        if engine is not None:
            reporting.results.engines[backend.name] = engine
        reporting.hooks[backend.name] = hooks
    config.stash[SELECTED_KEY] = selected
    if config.getoption("hypothesis_profile", None) is None:
        from conformance.profiles import load_default_profile

        load_default_profile()


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if config.option.taskstore_list_backends:
        names = registry.split_names(config.option.taskstore_backend or [])
        infos = registry.available_backends() + registry.describe_paths(names)
        print(registry.format_backend_list(infos))
        return 0
    return None


def selected_backends(config: pytest.Config) -> list[registry.SelectedBackend]:
    """The backends named by ``--backend``; a usage error when the kit's suite runs without."""
    selected = config.stash.get(SELECTED_KEY, None)
    if not selected:
        raise pytest.UsageError(
            "the conformance suite needs a backend: pytest --backend NAME "
            "(or --taskstore-backend NAME); see pytest --taskstore-list-backends"
        )
    return selected


def _defined_by_kit(item: pytest.Item) -> bool:
    module = getattr(getattr(item, "function", None), "__module__", "") or ""
    return module.startswith("conformance.")


def _kit_test(item: pytest.Item) -> bool:
    """A test of the kit's own suite: the only ones its profile and time limits apply to."""
    return bool(clause_ids(item)) and _defined_by_kit(item)


def clause_ids(item: pytest.Item) -> tuple[str, ...]:
    """Every clause ID the item is tagged with, in marker order, without duplicates."""
    ids: list[str] = []
    for mark in item.iter_markers(CLAUSE_MARK):
        for clause_id in mark.args:
            if str(clause_id) not in ids:
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        clauses = clause_ids(item)
        if clauses:
            item.user_properties.extend(
                [
                    (PROP_CLAUSES, ",".join(clauses)),
                    (PROP_AREA, _area(item, clauses)),
                    (PROP_BACKEND, _backend_label(item)),
                    # One property per clause, for JUnit XML readers.
                    *((PROP_CLAUSE, clause_id) for clause_id in clauses),
                ]
            )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Kit tests run under the kit's Hypothesis profile on every route, within the kit's test
    timeout.

    A ``BackendContract`` subclass in a project's own test file gets no ``--backend`` and so no
    profile loaded at configure time; without this, Hypothesis' default deadline and health
    checks would fail a correct backend on a loaded machine.
    """
    if not _kit_test(item):
        return (yield)
    with contextlib.ExitStack() as stack:
        if "hypothesis" in sys.modules:
            from conformance.profiles import kit_profile

            stack.enter_context(kit_profile(item.config.getoption("hypothesis_profile", None)))
        stack.enter_context(time_limits.call(item))
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    """A kit test's fixtures (opening the backend) are within the kit's test timeout too."""
    with _fixture_time_limit(item, "setup"):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    """So is the teardown (dropping the namespace, closing): a scan that never ends hangs there."""
    with _fixture_time_limit(item, "teardown"):
        return (yield)


def _fixture_time_limit(item: pytest.Item, when: str) -> contextlib.AbstractContextManager[None]:
    if not _kit_test(item):
        return contextlib.nullcontext()
    return time_limits.phase(item, when)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Make every failure of a kit test say which clause broke, in words, or that the kit could
    not decide; failures of clauses listed in ``--conformance-baseline`` become expected."""
    report = yield
    clauses = clause_ids(item)
    if not report.failed or not clauses:
        return report
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    exc = call.excinfo.value if call.excinfo is not None else None
    undecided = verdicts.undecided(exc) if exc is not None else None
    if undecided is not None:
        report.user_properties.append((PROP_UNDECIDED, undecided.kind))
        title = f"kit could not decide: {undecided.kind}"
        text = f"{undecided.reason}\nhint: {undecided.hint}"
        prefix = f"[{title}]"
    else:
        broken = verdicts.charged(exc, crash.message if crash is not None else "", clauses)
        report.user_properties.append((PROP_BROKEN, ",".join(broken)))
        # JUnit XML writes the properties of the teardown report, which copies the item's.
        item.user_properties.append((PROP_BROKEN, ",".join(broken)))
        title, text = "contract clause broken", "\n".join(describe(c) for c in broken)
        prefix = f"[{', '.join(broken)}]"
        baseline = item.config.stash.get(_BASELINE_KEY, None)
        if baseline is not None and report.when == "call":
            why = baseline.expected(_backend_label(item), broken)
            if why is not None:
                report.user_properties.append((PROP_EXPECTED, ",".join(broken)))
                report.outcome = "skipped"  # with ``wasxfail``: how pytest reports an xfail
                report.wasxfail = f"{prefix} listed in {baseline.path}: {why}"
    # A traceback's representation has ``addsection`` (pytest documents none of its types): the
    # section then prints under the traceback and is part of JUnit XML's failure text, which
    # tests/kit/test_plugin.py checks. Anything else gets a report section, printed after it.
    addsection = getattr(longrepr, "addsection", None)
    if callable(addsection):
        addsection(title, text)
    else:
        report.sections.append((title, text))
    if crash is not None:
        crash.message = f"{prefix} {crash.message}"
    report.user_properties.append(failure_property(item, call, _backend_label(item), SUITE_DIR))
    return report


class _Reporting:
    """Per-run plugin object: collects results (also from xdist workers) and reports them."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results = Results()
        self.hooks: dict[str, tuple[str, ...]] = {}  # per --backend: the kit hooks it offers

    def pytest_report_header(self) -> list[str]:
        """Which hooks each backend's factory offers: a test needing another one skips."""
        return [
            f"pmcp-tasks kit: backend {name}: hooks {', '.join(hooks) or 'none'}"
            for name, hooks in self.hooks.items()
        ]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.results.record(report)

    def _stale(self) -> list[str]:
        baseline = self.config.stash.get(_BASELINE_KEY, None)
        return [] if baseline is None else baseline.stale(self.results)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.results.tests:
            return
        terminalreporter.section("pmcp-tasks conformance summary")
        for line in self.results.summary_lines():
            terminalreporter.write_line(line)
        for line in self._stale():
            terminalreporter.write_line(line, red=True)
        path = self.config.option.conformance_report
        if path:
            terminalreporter.write_line(f"conformance report: {path}")
        html_path = self.config.option.conformance_html
        if html_path:
            terminalreporter.write_line(f"conformance HTML report: {html_path}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(self.config, "workerinput"):
            return
        if self._stale() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        path = self.config.option.conformance_report
        html_path = self.config.option.conformance_html
        if not (path or html_path):
            return
        report = self.results.to_json(_meta(self.config, int(session.exitstatus)))
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
    from conformance.profiles import kit_profile_name

    name = kit_profile_name(config.getoption("hypothesis_profile", None))
    from hypothesis import settings

    profile = settings.get_profile(name)
    return {
        "profile": name,
        "seed": config.getoption("hypothesis_seed", None),
        "max_examples": profile.max_examples,
        "derandomize": profile.derandomize,
    }
