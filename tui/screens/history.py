"""A project's history (`history`, docs/rpc.md): its revisions, newest first, with their
effect (applied, or why they have none), and the selected one's changes as a diff. The node
gives the history a page at a time (the newest first); `o` loads the page before.

Branches (concurrent revisions, e.g. two co-authors offline at once) are marked ⑂; a revision
that supersedes several heads joins them (⑃). Revisions pushed for the project reload it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.coordinate import Coordinate
from textual.widget import Widget
from textual.widgets import DataTable, Static

from tui.format import who
from tui.screens.base import PercolabScreen
from tui.widgets.diff import DiffView, effect_text, field_name

log = logging.getLogger(__name__)

MAX_NOTE_COLUMN = 40
HISTORY_PAGE = 100  # revisions asked for at a time


def branch_marks(entries: list[dict[str, Any]]) -> dict[str, str]:
    """id -> "⑂" for a revision with a sibling (another revision superseding one of the same
    heads), "⑃" for one joining several heads, "" otherwise."""
    children: Counter[str] = Counter()
    for e in entries:
        for parent in e.get("supersedes") or []:
            children[str(parent)] += 1
    marks: dict[str, str] = {}
    for e in entries:
        parents = [str(x) for x in e.get("supersedes") or []]
        if len(parents) > 1:
            marks[str(e["id"])] = "⑃"
        elif any(children[x] > 1 for x in parents):
            marks[str(e["id"])] = "⑂"
        else:
            marks[str(e["id"])] = ""
    return marks


class HistoryScreen(PercolabScreen):
    """History of one project; ``entries`` in replay order (oldest first), shown newest first."""

    BINDINGS = [
        Binding("escape", "back", "Back", id="history_back"),
        Binding("o", "older", "Older revisions", id="history_older"),
    ]

    def __init__(self, project_id: str, title: str = "", names: dict[str, str] | None = None
                 ) -> None:  # fmt: skip
        super().__init__()
        self.project_id = project_id
        self.heading = title
        self.names = dict(names or {})  # member id -> name, for co-author changes
        self.entries: dict[str, dict[str, Any]] = {}
        self.ordered: list[dict[str, Any]] = []  # loaded entries, oldest first
        self.heads: list[str] = []
        self.total = 0
        self.before: int | None = None  # `next` of the oldest page loaded (None: no older)
        self.loaded = False

    def compose_body(self) -> Iterable[Widget]:
        yield Static("", id="history-info", classes="screen-info")
        table: DataTable[Text] = DataTable(id="history-table", cursor_type="row")
        table.add_column("", key="branch")
        table.add_column("When", key="when")
        table.add_column("By", key="by")
        table.add_column("Changed", key="changed")
        table.add_column("Effect", key="effect")
        table.add_column("Note", key="note")
        yield table
        yield Static("Changes", classes="section-heading")
        with VerticalScroll(id="history-diff-box"):
            yield DiffView(self.fmt, id="history-diff")

    def on_mount(self) -> None:
        self.sub_title = f"History — {self.heading}" if self.heading else "History"

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#history-table", DataTable)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "older":
            return self.before is not None or None
        return True

    def reload(self) -> None:
        self.load_history(None)

    def action_older(self) -> None:
        if self.before is not None:
            self.load_history(self.before)

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_history(self, before: int | None) -> None:
        result = await self.rpc("history", id=self.project_id, limit=HISTORY_PAGE,
                                before=before)  # fmt: skip
        page = [dict(e) for e in result.get("entries") or []]
        self.show_history(result, page + self.ordered if before is not None else page)

    def show_history(self, result: dict[str, Any], entries: list[dict[str, Any]]) -> None:
        self.ordered = entries
        self.heads = [str(h) for h in result.get("heads") or []]
        self.total = int(result.get("total") or len(entries))
        self.before = result.get("next")
        self.entries = {str(e["id"]): e for e in entries}
        marks = branch_marks(entries)
        table = self.table
        keep = None
        if table.row_count and table.cursor_row >= 0:
            keep = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        table.clear()
        for e in reversed(entries):
            meaning, style = effect_text(str(e.get("effect", "")))
            changed = ", ".join(field_name(f) for f in e.get("changes") or {}) or "—"
            note = str(e.get("note") or "")
            if len(note) > MAX_NOTE_COLUMN:
                note = note[: MAX_NOTE_COLUMN - 1] + "…"
            table.add_row(Text(marks[str(e["id"])], style="magenta"),
                          Text(self.fmt.when(e.get("ts"))), Text(who(e) or "?"),
                          Text(changed), Text(meaning, style=style), Text(note),
                          key=str(e["id"]))  # fmt: skip
        applied = sum(1 for e in entries if e.get("effect") == "applied")
        branches = len(self.heads)
        shown = f"the newest {len(entries)} of " if len(entries) < self.total else ""
        info = (f"{shown}{self.total} revision{'s' if self.total != 1 else ''}, {applied} "
                "applied" + (f" · {branches} branches not joined yet" if branches > 1 else "")
                + " · ↑/↓ to choose one, its changes below"
                + (" · o: older" if self.before is not None else ""))  # fmt: skip
        if not entries:
            info = "No revision yet: this is the project as first posted."
        self.query_one("#history-info", Static).update(info)
        self.loaded = True
        self.refresh_bindings()
        if keep is not None and keep in self.entries:
            table.move_cursor(row=table.get_row_index(keep))
        self.show_selected()
        table.focus()

    @on(DataTable.RowHighlighted, "#history-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_selected()

    @property
    def selected(self) -> dict[str, Any] | None:
        table = self.table
        if not table.row_count or table.cursor_row < 0:
            return None
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        return self.entries.get(str(key))

    def show_selected(self) -> None:
        self.query_one(DiffView).show(self.selected, self.names)

    def action_back(self) -> None:
        self.dismiss()

    def object_arrived(self, view: dict[str, Any]) -> None:
        if view.get("kind") in ("revision", "retraction") and (
            str(view.get("target")) == self.project_id or str(view.get("target")) in self.entries
        ):
            self.reload()
