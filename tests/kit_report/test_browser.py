"""The report in a real browser: Debian's headless Chromium, driven by Playwright.

Playwright drives the system's Chromium (``executable_path``), so nothing is downloaded. Without
Chromium or Playwright the test fails, saying how to install them (``.ci/run`` installs
Chromium, tox the ``testing-html`` extra): a skip would let tox pass a test that never ran.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from kit_report.kit_run import KitRun

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not on the PATH (Debian: apt-get install chromium)")
    return found


def _playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install 'pmcp-tasks[testing-html]'")
    return sync_playwright


# Reads what Chromium laid out, not what the HTML says: lanes and bars of every timeline, and
# whether the marked bar is drawn (non-empty box, its own fill).
_TIMELINES = """() => [...document.querySelectorAll('svg.timeline')].map(svg => ({
    lanes: [...svg.querySelectorAll('g.lane')].map(g => g.dataset.client),
    clients: [...new Set([...svg.querySelectorAll('g.op')].map(g => g.dataset.client))],
    marked: [...svg.querySelectorAll('g.op.culprit rect')].map(r => {
        const box = r.getBoundingClientRect();
        return {width: box.width, height: box.height, fill: getComputedStyle(r).fill};
    }),
    plain: getComputedStyle(svg.querySelector('g.op:not(.culprit) rect')).fill,
}))"""


def test_chromium_renders_the_report_without_console_errors(
    kit_run: KitRun, tmp_path: Path
) -> None:
    chromium = _chromium()
    sync_playwright = _playwright()
    errors: list[str] = []
    screenshot = tmp_path / "report.png"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh profile
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("requestfailed", lambda request: errors.append(f"failed: {request.url}"))
            page.goto((kit_run.path / "report.html").as_uri(), wait_until="load")
            page.screenshot(path=str(screenshot), full_page=True)
            timelines = page.evaluate(_TIMELINES)
            cells = page.locator("td[data-status]").count()
        finally:
            context.close()
    assert errors == []
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    assert screenshot.stat().st_size > 10_000
    backends = len(kit_run.report["backends"])
    assert cells == len(kit_run.report["clauses"]) * backends
    assert timelines, "no timeline on the page"
    for timeline in timelines:
        assert len(timeline["lanes"]) == len(timeline["clients"]) >= 2
        assert sorted(timeline["lanes"]) == sorted(timeline["clients"])
        [marked] = timeline["marked"]
        assert marked["width"] > 0
        assert marked["height"] > 0
        assert marked["fill"] != timeline["plain"]
