"""Turning a ``--backend`` name into a factory, with errors a backend author can act on.

A name is an entry point in the group ``pmcp_tasks.backends`` or a ``package.module:attr``
path. Every failure is a :class:`pytest.UsageError` (exit code 4, one line, no traceback) that
says what to do: the names that exist, or the ``pip install`` line of a missing extra.

Standard library and pytest only: the plugin imports this in every pytest run.
"""

from __future__ import annotations

import asyncio
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pytest

from pmcp_tasks.backend import BackendCapabilities

GROUP = "pmcp_tasks.backends"
_REQUIREMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class BackendInfo:
    """One backend the kit can run, as ``--list-backends`` shows it."""

    name: str
    source: str  # "module:attr"
    extras: tuple[str, ...]
    distribution: str | None
    installed: bool  # every requirement of its extras is installed
    problem: str | None = None  # why a 'module:attr' name does not resolve to a factory


@dataclass(frozen=True)
class SelectedBackend:
    """A backend chosen on the command line: the loaded factory and its ``--backend-option``s."""

    name: str
    factory: Callable[..., Any]
    options: dict[str, str]

    def __str__(self) -> str:  # the test id pytest shows
        return self.name


def entry_points() -> dict[str, metadata.EntryPoint]:
    """Every backend installed under the kit's entry-point group, by name (public so that a test
    can stand in for what is installed)."""
    return {ep.name: ep for ep in metadata.entry_points(group=GROUP)}


def _distribution_name(ep: metadata.EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return None if dist is None else str(dist.metadata["Name"])


def _extra_installed(distribution: str | None, extra: str) -> bool:
    """True when every requirement the distribution lists for ``extra`` is importable metadata."""
    if distribution is None:
        return True
    marker = re.compile(rf"""extra\s*==\s*["']{re.escape(extra)}["']""")
    for requirement in metadata.requires(distribution) or []:
        spec, _, markers = requirement.partition(";")
        if not marker.search(markers):
            continue
        name = _REQUIREMENT_NAME.match(spec.strip())
        if name is None:
            continue
        try:
            metadata.distribution(name.group(0))
        except metadata.PackageNotFoundError:
            return False
    return True


def available_backends() -> list[BackendInfo]:
    """Every registered backend name, sorted, with whether its extra is installed."""
    infos = []
    for name, ep in sorted(entry_points().items()):
        extras = tuple(ep.extras)
        distribution = _distribution_name(ep)
        infos.append(
            BackendInfo(
                name=name,
                source=f"{ep.module}:{ep.attr}",
                extras=extras,
                distribution=distribution,
                installed=all(_extra_installed(distribution, extra) for extra in extras),
            )
        )
    return infos


def format_backend_list(infos: list[BackendInfo]) -> str:
    """The ``--list-backends`` table."""
    rows = [("name", "factory", "extra", "status")]
    for info in infos:
        extras = ",".join(info.extras) or "-"
        status = "ready" if info.installed else f"missing: {_install_hint(info)}"
        if info.problem is not None:
            status = f"error: {info.problem}"
        rows.append((info.name, info.source, extras, status))
    widths = [max(len(row[col]) for row in rows) for col in range(3)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    ]
    lines.append("")
    lines.append(
        "Any 'package.module:attr' naming a factory works too: --backend mypkg.kit:factory"
    )
    return "\n".join(lines)


def describe_paths(names: list[str]) -> list[BackendInfo]:
    """A row for each ``module:attr`` name given with ``--backend``: resolved, or why not."""
    infos = []
    for name in names:
        if ":" not in name:
            continue
        try:
            factory = _load_path(name)
        except pytest.UsageError as exc:
            infos.append(BackendInfo(name, name, (), None, installed=False, problem=str(exc)))
            continue
        source = f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', '?')}"
        infos.append(BackendInfo(name, source, (), None, installed=True))
    return infos


def _install_hint(info: BackendInfo) -> str:
    package = info.distribution or "pmcp-tasks"
    return f"pip install '{package}[{','.join(info.extras)}]'"


def _names_hint() -> str:
    names = ", ".join(sorted(entry_points())) or "(none registered)"
    return f"available backends: {names}; or give a factory as 'package.module:attr'"


def load_factory(name: str) -> Callable[..., Any]:
    """The factory behind ``name``; a usage error that says what to do when there is none."""
    if ":" in name:
        return _load_path(name)
    ep = entry_points().get(name)
    if ep is None:
        raise pytest.UsageError(f"unknown backend {name!r}: {_names_hint()}")
    try:
        factory = ep.load()
    except ImportError as exc:
        extras = tuple(ep.extras)
        distribution = _distribution_name(ep)
        if extras and (
            distribution is None
            or not all(_extra_installed(distribution, extra) for extra in extras)
        ):
            info = BackendInfo(name, ep.value, extras, distribution, installed=False)
            raise pytest.UsageError(
                f"backend {name!r} needs the {','.join(extras)!r} extra: {_install_hint(info)} "
                f"({type(exc).__name__}: {exc})"
            ) from None
        raise pytest.UsageError(
            f"backend {name!r} ({ep.value}) cannot be imported: {type(exc).__name__}: {exc}"
        ) from None
    return _check_callable(name, factory)


def _load_path(name: str) -> Callable[..., Any]:
    module_name, _, attr = name.partition(":")
    if not module_name or not attr:
        raise pytest.UsageError(f"backend {name!r} must look like 'package.module:attr'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise pytest.UsageError(
            f"backend {name!r}: cannot import module {module_name!r} "
            f"({type(exc).__name__}: {exc}); {_names_hint()}"
        ) from None
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise pytest.UsageError(
                f"backend {name!r}: module {module_name!r} has no attribute {attr!r}"
            ) from None
    return _check_callable(name, target)


def _check_callable(name: str, factory: object) -> Callable[..., Any]:
    if not callable(factory):
        raise pytest.UsageError(
            f"backend {name!r} resolves to {type(factory).__name__}, not a factory; expected "
            "'factory(*, namespace, clock, **options) -> StorageBackend' (plain or async)"
        )
    return factory


def parse_options(pairs: list[str]) -> dict[str, str]:
    """``--backend-option KEY=VALUE`` pairs; a malformed one is a usage error."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise pytest.UsageError(
                f"--backend-option {pair!r}: expected KEY=VALUE with KEY a Python identifier"
            )
        options[key] = value
    return options


def split_names(values: list[str]) -> list[str]:
    """Repeated and comma-separated ``--backend`` values, in order, without duplicates."""
    names: list[str] = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if name and name not in names:
                names.append(name)
    return names


def select(values: list[str], option_pairs: list[str]) -> list[SelectedBackend]:
    """Resolve every name given on the command line (all errors before any test runs)."""
    options = parse_options(option_pairs)
    return [SelectedBackend(name, load_factory(name), options) for name in split_names(values)]


def probe(selected: SelectedBackend) -> tuple[BackendCapabilities, tuple[str, ...], str | None]:
    """Open and close the backend once, so that a factory that cannot even start (an embedded
    engine not installed, an unknown option, a bad URL, a misspelled hook) is one usage error
    before the run, not the same error charged to every test's clause. Returns what the
    backend declares, the kit hooks its factory offers and the engine it names."""
    from conformance.harness import ManualClock, fresh_namespace, hooks_found, open_target

    async def open_and_close() -> tuple[BackendCapabilities, tuple[str, ...], str | None]:
        target = await open_target(
            selected.factory,
            namespace=fresh_namespace("probe"),
            clock=ManualClock(),
            **selected.options,
        )
        await target.backend.aclose()
        return target.backend.capabilities, hooks_found(target.hooks), target.engine

    try:
        return asyncio.run(open_and_close())
    except Exception as exc:
        raise pytest.UsageError(
            f"backend {selected.name!r} could not be opened: {type(exc).__name__}: {exc}"
        ) from None
