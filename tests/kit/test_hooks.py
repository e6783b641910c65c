"""The kit finds hooks by name: it says which it found, and a misspelled one is an error."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

FACTORY = """
from conformance.harness import KitTarget
from reference_backends.memory import InMemoryBackend, MemoryKitHooks


class Misspelled(MemoryKitHooks):
    async def drop_namspace(self) -> None:
        pass


def misspelled(*, namespace, clock):
    backend = InMemoryBackend(namespace=namespace, clock=clock)
    return KitTarget(backend, Misspelled(backend))
"""


def test_a_misspelled_hook_is_a_usage_error_naming_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(my_factories=FACTORY)
    pytester.syspathinsert()
    result = pytester.runpytest("--backend", "my_factories:misspelled")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*'drop_namspace', which looks like the hook 'drop_namespace' misspelled*"]
    )


def test_the_run_header_lists_the_hooks_each_backend_offers(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--backend", "memory", "-k", "test_capabilities_are_well_formed")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["pmcp-tasks kit: backend memory: hooks seed, drop_namespace"])


def test_junit_xml_carries_the_broken_clause(pytester: pytest.Pytester) -> None:
    """docs/conformance.md: a failure adds ``kit_broken`` (the clause it charges)."""
    pytester.makepyfile(
        always_true="""
from reference_backends.memory import InMemoryBackend


class AlwaysTrue(InMemoryBackend):
    async def delete(self, key):
        return True


def factory(*, namespace, clock):
    return AlwaysTrue(namespace=namespace, clock=clock)
"""
    )
    pytester.syspathinsert()
    result = pytester.runpytest(
        "--backend", "always_true:factory", "-k", "TestDelete", "--junitxml", "junit.xml"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    xml = (pytester.path / "junit.xml").read_text()
    assert '<property name="kit_broken" value="KV-DEL-1" />' in xml, xml
