"""Search: full-text ``search`` as you type (debounced), results in a table."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from rich.markup import escape
from textual import on, work
from textual.binding import Binding
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static

from tui.screens.base import PercolabScreen
from tui.widgets.project_table import ProjectTable

log = logging.getLogger(__name__)

DEBOUNCE_S = 0.08
RESULT_LIMIT = 25  # about a screenful: fewer rows, faster repaint per keystroke


class SearchScreen(PercolabScreen):
    """Type to search projects; down/enter moves into the results."""

    TITLE = "Search"
    BINDINGS = [
        Binding("ctrl+l", "focus_query", "Edit query", id="search_focus"),
        Binding("down", "focus_results", "Results", id="search_results", show=False),
        Binding("escape", "leave", "Back", id="search_leave"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._timer: Timer | None = None
        self.query_text = ""

    def compose_body(self) -> Iterable[Widget]:
        yield Input(placeholder="Search projects…", id="search-input")
        yield Static("", id="search-info", classes="screen-info")
        yield ProjectTable(self.fmt, id="search-results")

    def on_mount(self) -> None:
        self.query_one("#search-input", Input).focus()

    @on(Input.Changed, "#search-input")
    def _changed(self, event: Input.Changed) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(DEBOUNCE_S, self.reload)

    @on(Input.Submitted, "#search-input")
    def _submitted(self) -> None:
        self.reload()
        self.action_focus_results()

    def reload(self) -> None:
        self.run_search(self.query_one("#search-input", Input).value.strip())

    @work(exclusive=True, group="load", exit_on_error=False)
    async def run_search(self, text: str) -> None:
        info = self.query_one("#search-info", Static)
        table = self.query_one(ProjectTable)
        if not text:
            table.show_page([], set())
            info.update("Type to search titles, summaries, bodies and tags.")
            return
        results = await self.rpc("search", query=text, limit=RESULT_LIMIT)
        self.query_text = text
        table.show_page(results, set())
        info.update(f"{len(results)} result{'s' if len(results) != 1 else ''} for “{escape(text)}”")

    def action_focus_query(self) -> None:
        self.query_one("#search-input", Input).focus()

    def action_leave(self) -> None:
        """escape: from the query box to the results; from the results to the labs."""
        if isinstance(self.focused, Input):
            self.action_focus_results()
        else:
            self.app.switch_mode("labs")

    def action_focus_results(self) -> None:
        self.query_one(ProjectTable).focus()

    @on(DataTable.RowSelected, "#search-results")
    def _selected(self, event: DataTable.RowSelected) -> None:
        from tui.screens.project import ProjectScreen

        if event.row_key.value is not None:
            self.app.push_screen(ProjectScreen(str(event.row_key.value)))
