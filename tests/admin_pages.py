"""Admin pages read the way an operator reads them: the result table's rows by column, the
filter sidebar's choices, the messages, a change page's read-only fields and inline rows.

A small tree built with html.parser; each helper takes a test client's response."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return self.attrs.get("class", "").split()

    def iter(self) -> Iterator[Element]:
        for child in self.children:
            if isinstance(child, Element):
                yield child
                yield from child.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list:
        return [
            e
            for e in self.iter()
            if (tag is None or e.tag == tag)
            and (cls is None or cls in e.classes)
            and all(e.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def find(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Element | None:
        found = self.find_all(tag, cls, **attrs)
        return found[0] if found else None

    def text(self) -> str:
        """The text a reader sees, whitespace collapsed; an image counts as its alt text."""
        parts: list[str] = []

        def walk(element: Element) -> None:
            if element.tag == "img":
                parts.append(f" {element.attrs.get('alt', '')} ")
            for child in element.children:
                if isinstance(child, str):
                    parts.append(child)
                else:
                    walk(child)

        walk(self)
        return re.sub(r"\s+", " ", "".join(parts)).strip()

    def href(self) -> str | None:
        link = self if self.tag == "a" else self.find("a")
        return link.attrs.get("href") if link is not None else None


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        # Tolerant: close up to the nearest open element of that tag, ignore a stray end tag.
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def page(response: Any) -> Element:
    builder = _TreeBuilder()
    builder.feed(response.content.decode())
    builder.close()
    return builder.root


def _field_name(element: Element) -> str | None:
    for name in element.classes:
        if name.startswith("field-"):
            return name.removeprefix("field-")
    return None


def _result_cells(response: Any) -> list[dict[str, Element]]:
    table = page(response).find("table", id="result_list")
    if table is None:  # an empty list has no table
        return []
    body = table.find("tbody")
    rows = []
    for tr in body.find_all("tr") if body is not None else []:
        cells = {}
        for cell in tr.children:
            if isinstance(cell, Element) and (name := _field_name(cell)):
                cells[name] = cell
        rows.append(cells)
    return rows


def result_rows(response: Any) -> list[dict[str, str]]:
    """The change list's rows, top to bottom, as {list_display name: the cell's text}."""
    return [{name: cell.text() for name, cell in row.items()} for row in _result_cells(response)]


def result_links(response: Any) -> list[dict[str, str]]:
    """Per row, {list_display name: the href of the cell's link}, for the cells with a link."""
    return [
        {name: href for name, cell in row.items() if (href := cell.href()) is not None}
        for row in _result_cells(response)
    ]


def column(response: Any, name: str) -> list[str]:
    """One column of the result table, top to bottom."""
    return [row[name] for row in result_rows(response)]


def filter_choices(response: Any, title: str) -> dict[str, str]:
    """The sidebar filter `title`'s choices as {text shown: query string of its link}."""
    sidebar = page(response).find(id="changelist-filter")
    assert sidebar is not None, "the list has no filter sidebar"
    block = sidebar.find("details", data_filter_title=title)
    assert block is not None, f"no filter {title!r} in the sidebar"
    return {a.text(): a.attrs["href"] for a in block.find_all("a")}


def selected_filter_choice(response: Any, title: str) -> str:
    sidebar = page(response).find(id="changelist-filter")
    block = sidebar.find("details", data_filter_title=title)
    return block.find("li", cls="selected").text()


def messages(response: Any) -> list[tuple[str, str]]:
    """The messages shown at the top of the page: (level, text)."""
    found = page(response).find("ul", cls="messagelist")
    if found is None:
        return []
    return [(li.attrs.get("class", ""), li.text()) for li in found.find_all("li")]


def readonly_field(response: Any, name: str) -> Element:
    """A change page's read-only field `name` (its value's element: text(), find(), href())."""
    row = page(response).find(cls=f"field-{name}")
    assert row is not None, f"no field {name!r} on the page"
    value = row.find("div", cls="readonly")
    assert value is not None, f"field {name!r} is not shown read-only"
    return value


def fieldset_fields(response: Any, legend: str) -> list[str]:
    """The field names a change page's fieldset (by its heading) shows, in order."""
    for fieldset in page(response).find_all("fieldset"):
        heading = fieldset.find("h2")
        if heading is not None and heading.text() == legend:
            return [
                name
                for row in fieldset.find_all("div", cls="form-row")
                if (name := _field_name(row))
            ]
    raise AssertionError(f"no fieldset {legend!r}")


def inline_rows(response: Any, prefix: str) -> list[dict[str, str]]:
    """A tabular inline's rows (the group `prefix`-group) as {field name: text}."""
    group = page(response).find(id=f"{prefix}-group")
    assert group is not None, f"no inline {prefix!r} on the page"
    rows = []
    for tr in group.find_all("tr", cls="has_original"):
        cells = {name: cell.text() for cell in tr.find_all("td") if (name := _field_name(cell))}
        rows.append(cells)
    return rows
