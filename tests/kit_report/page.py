"""The parts of a rendered report page the tests compare with the JSON report."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Timeline:
    lanes: list[str] = field(default_factory=list)
    bars: list[tuple[str, str]] = field(default_factory=list)  # (client, class attribute)


class Page(HTMLParser):
    """Clause-matrix cells, anchors and links, timelines, the badge and every external
    reference (src, href to another document, stylesheet links, CSS imports)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str], str] = {}
        self.cell_links: dict[tuple[str, str], list[str]] = {}
        self.ids: set[str] = set()
        self.timelines: list[Timeline] = []
        self.external: list[str] = []
        self.badge = ""
        self._cell: tuple[str, str] | None = None
        self._in_badge = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if "id" in values:
            self.ids.add(values["id"])
        if "data-status" in values:
            self._cell = (values["data-clause"], values["data-backend"])
            self.cells[self._cell] = values["data-status"]
            self.cell_links[self._cell] = []
        if tag == "a" and self._cell is not None:
            self.cell_links[self._cell].append(values["href"])
        if values.get("id") == "summary":
            self._in_badge = True
        if tag in ("script", "link", "img", "iframe", "object", "embed") or "src" in values:
            self.external.append(f"<{tag} {values}>")
        if tag == "a" and not values.get("href", "#").startswith("#"):
            self.external.append(values["href"])
        if tag == "svg":
            self.timelines.append(Timeline())
        classes = values.get("class", "").split()
        if tag == "g" and "lane" in classes:
            self.timelines[-1].lanes.append(values["data-client"])
        if tag == "g" and "op" in classes:
            self.timelines[-1].bars.append((values["data-client"], values["class"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._cell = None
        if tag == "span":
            self._in_badge = False

    def handle_data(self, data: str) -> None:
        if self._in_badge:
            self.badge += data
        if "@import" in data or "url(" in data:
            self.external.append(data)
