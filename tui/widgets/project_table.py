"""A DataTable showing one page of projects, with new rows highlighted."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from tui.format import Formatter

NEW_STYLE = "bold green"
NEW_MARK = "●"


class ProjectTable(DataTable[Text]):
    """Rows are keyed by project id; ``show_page`` replaces the rows with one page."""

    DEFAULT_CSS = "ProjectTable { height: 1fr; }"

    def __init__(self, fmt: Formatter, *, show_lab: bool = True, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        self.fmt = fmt
        self.show_lab = show_lab
        self.projects: dict[str, dict[str, Any]] = {}

    def on_mount(self) -> None:
        self.add_column(" ", key="new", width=1)
        self.add_column("Title", key="title")
        if self.show_lab:
            self.add_column("Lab", key="lab")
        self.add_column("Stage", key="stage")
        self.add_column("Author", key="author")
        self.add_column("💬", key="comments")
        self.add_column("Tags", key="tags")
        self.add_column("Active", key="activity")

    def show_page(self, items: Iterable[dict[str, Any]], new_ids: set[str]) -> None:
        keep = self.current_id
        self.clear()
        self.projects = {}
        for project in items:
            pid = str(project["id"])
            self.projects[pid] = project
            self.add_row(*self._cells(project, pid in new_ids), key=pid)
        if keep is not None and keep in self.projects:
            self.move_cursor(row=self.get_row_index(keep))

    def _cells(self, project: dict[str, Any], new: bool) -> list[Text]:
        style = NEW_STYLE if new else ""
        cells = [
            Text(NEW_MARK if new else "", style=style),
            Text(str(project.get("title", "")), style=style),
        ]
        if self.show_lab:
            cells.append(Text(str(project.get("lab_name", ""))))
        cells += [
            Text(str(project.get("stage", "") or "")),
            Text(str(project.get("author_name", "") or "")),
            Text(str(project.get("comments", 0)), justify="right"),
            Text(", ".join(project.get("tags", []) or [])[:30]),
            Text(self.fmt.when(project.get("activity") or project.get("ts"))),
        ]
        return cells

    @property
    def current_id(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:
            return None
        return None if key.value is None else str(key.value)
