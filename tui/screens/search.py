"""Search: full-text ``search`` as you type (one search in flight, the latest query
wins), results in a table."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from rich.markup import escape
from textual import on, work
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static

from tui.screens.base import PercolabScreen
from tui.widgets.moderation import hidden_params
from tui.widgets.project_table import ProjectTable

log = logging.getLogger(__name__)

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
        self._in_flight = False  # a search RPC is out
        self._again = False  # the query changed meanwhile: search again when it is back
        self.query_text = ""

    def compose_body(self) -> Iterable[Widget]:
        yield Input(placeholder="Search projects…", id="search-input")
        yield Static("", id="search-info", classes="screen-info")
        yield ProjectTable(self.fmt, id="search-results")

    def on_mount(self) -> None:
        self.query_one("#search-input", Input).focus()

    @on(Input.Changed, "#search-input")
    def _changed(self, event: Input.Changed) -> None:
        """Search at once; while a search is out, once more when it is back, for the query
        as it is by then. No added wait for any key, and at most one search in flight however
        fast the keys come (key repeat, a paste)."""
        if self._in_flight:
            self._again = True
        else:
            self.reload()

    @on(Input.Submitted, "#search-input")
    def _submitted(self) -> None:
        self.reload()
        self.action_focus_results()

    def reload(self) -> None:
        self._again = False
        self.run_search(self.query_one("#search-input", Input).value.strip())

    @work(exclusive=True, group="load", exit_on_error=False)
    async def run_search(self, text: str) -> None:
        info = self.query_one("#search-info", Static)
        table = self.query_one(ProjectTable)
        if not text:  # an empty query asks the node nothing
            table.show_page([], set())
            info.update("Type to search titles, summaries, bodies and tags.", layout=False)
            return
        self._in_flight = True
        try:
            results = await self.rpc("search", query=text, limit=RESULT_LIMIT,
                                     **hidden_params(self.app))
        finally:
            self._in_flight = False
        if self._again:  # keys came meanwhile: their query, not this stale one, is shown
            self.reload()
            return
        self.query_text = text
        table.show_page(results, set())
        # one line (fixed height in the CSS): a repaint of the line, not a layout of the screen
        info.update(f"{len(results)} result{'s' if len(results) != 1 else ''} for “{escape(text)}”",
                    layout=False)  # fmt: skip

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
