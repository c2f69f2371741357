"""ProjectTable's cached/fast cell rendering paints exactly what DataTable paints."""

from __future__ import annotations

from typing import Any

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable

from tui.format import Formatter
from tui.widgets.project_table import ProjectTable

pytestmark = pytest.mark.anyio


class PlainTable(ProjectTable):
    """The same table with DataTable's own rendering (no content caches, no fast path)."""

    _render_cell = DataTable._render_cell  # type: ignore[assignment]
    _render_line = DataTable._render_line  # type: ignore[assignment]
    render_line = DataTable.render_line  # type: ignore[assignment]
    render_lines = DataTable.render_lines  # type: ignore[assignment]
    _get_row_style = DataTable._get_row_style  # type: ignore[assignment]
    _update_dimensions = DataTable._update_dimensions  # type: ignore[assignment]


def project(i: int, title: str) -> dict[str, Any]:
    return {"id": f"p{i:03d}", "title": title, "lab_name": f"lab-{i % 3}", "stage": "idea",
            "author_name": "Ana 日本", "comments": i, "tags": ["solar", "💬"] * (i % 3),
            "activity": 1_700_000_000_000 + i}  # fmt: skip


PAGES = [
    [project(i, t) for i, t in enumerate(["Solar kiln", "Café [b]x[/b]", "", "tab\there"])],
    [project(i, f"Row {i} " + "long " * (i % 4)) for i in range(3, 12)],
    [project(i, f"Row {i} " + "long " * (i % 4)) for i in range(5, 9)],  # same rows, moved
    [project(i, "Wide " * (30 + i)) for i in range(2)],  # wider than the table: cropped
]


class TwoTables(App[None]):
    def compose(self) -> ComposeResult:
        fmt = Formatter(redact=True)
        yield ProjectTable(fmt, id="fast")
        yield PlainTable(fmt, id="plain")


def lines(table: ProjectTable) -> list[Strip]:
    return [table.render_line(y) for y in range(table.row_count + 1)]


async def test_same_strips_as_datatable() -> None:
    app = TwoTables()
    async with app.run_test(size=(120, 40)) as pilot:
        fast = app.query_one("#fast", ProjectTable)
        plain = app.query_one("#plain", PlainTable)
        app.set_focus(None)  # focus changes DataTable's styles: compare like with like
        await pilot.pause()
        for page in PAGES:
            for new in (set(), {str(page[0]["id"])}):
                for table in (fast, plain):
                    table.show_page(page, new)
                await pilot.pause()
                for cursor, scroll_x in ((0, 0), (len(page) - 1, 0), (0, 7)):
                    fast.move_cursor(row=cursor)
                    plain.move_cursor(row=cursor)
                    for table in (fast, plain):
                        table.scroll_to(x=scroll_x, animate=False, immediate=True)
                    assert fast.scroll_offset == plain.scroll_offset
                    # segments with their styles, including the row/column click meta
                    got = [list(strip) for strip in lines(fast)]
                    want = [list(strip) for strip in lines(plain)]
                    for g, w in zip(got, want, strict=True):
                        for a, b in zip(g, w, strict=False):
                            assert a == b, (a, b)
                        assert len(g) == len(w), (g, w)
                    assert [[s.style.meta if s.style else None for s in line] for line in got] == [
                        [s.style.meta if s.style else None for s in line] for line in want
                    ]
                    # the same through render_lines (one pass: styles and widths read once)
                    crop = Region(0, 0, fast.size.width, fast.row_count + 1)
                    assert fast.render_lines(crop) == plain.render_lines(crop)
        assert fast._content_cache and fast._strips  # the cached paths did run
        assert fast.max_scroll_x > 0  # the wide page did scroll
        for theme in ("textual-dark", "textual-light"):
            app.theme = theme
            focused = []
            for table in (fast, plain):
                table.focus()
                await pilot.pause()
                focused.append([list(strip) for strip in lines(table)])
            assert focused[0] == focused[1]


async def test_same_page_again_keeps_the_rows() -> None:
    app = TwoTables()
    async with app.run_test(size=(120, 40)) as pilot:
        fast = app.query_one("#fast", ProjectTable)
        page = PAGES[1]
        fast.show_page(page, set())
        await pilot.pause()
        fast.move_cursor(row=3)
        updates = fast._update_count
        fast.show_page([dict(p, body="not shown") for p in page], set())  # same cells
        assert fast._update_count == updates and fast.cursor_row == 3  # nothing redone
        assert fast.projects[str(page[0]["id"])]["body"] == "not shown"  # the new dicts
        fast.show_page(page, {str(page[0]["id"])})  # a "new" mark: a different row
        assert fast._update_count != updates and fast.cursor_row == 3


def test_text_key_distinguishes_styles() -> None:
    from tui.widgets.project_table import _text_key

    assert _text_key(Text("a")) != _text_key(Text("a", style="bold"))
    assert _text_key(Text("a")) != _text_key(Text("a", justify="right"))
