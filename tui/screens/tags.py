"""Tags: the folksonomy ranked by use; enter shows a tag's projects across labs."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable, Static

from tui.screens.base import PercolabScreen

log = logging.getLogger(__name__)

TAG_LIMIT = 200


class TagsScreen(PercolabScreen):
    """``tags`` (most used first) in a DataTable; new tag labels are highlighted."""

    TITLE = "Tags"
    BINDINGS = [Binding("enter", "open", "Projects", id="tags_open", show=False)]

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self.fresh: set[str] = set()

    def compose_body(self) -> Iterable[Widget]:
        yield Static("", id="tags-info", classes="screen-info")
        yield DataTable[Text](cursor_type="row", zebra_stripes=True, id="tags-table")

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#tags-table", DataTable)

    def on_mount(self) -> None:
        self.table.add_column("Tag", key="label")
        self.table.add_column("Uses", key="count")

    def on_screen_resume(self) -> None:
        self.reload()

    def reload(self) -> None:
        self.load_tags()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_tags(self) -> None:
        tags = await self.rpc("tags", limit=TAG_LIMIT)
        table = self.table
        table.clear()
        previous, self.counts = self.counts, {}
        for row in tags:
            label, count = str(row["label"]), int(row["count"])
            self.counts[label] = count
            if previous and count > previous.get(label, 0):
                self.fresh.add(label)
            style = "bold green" if label in self.fresh else ""
            table.add_row(
                Text("#" + label, style=style), Text(str(count), justify="right"), key=label
            )
        info = f"{len(tags)} tags, most used first — enter: projects with the tag"
        if self.fresh:
            info += f"  [b reverse green] {len(self.fresh)} new [/]"
        if not tags:
            info = "No tags yet — tag a project with t."
        self.query_one("#tags-info", Static).update(info)

    @on(DataTable.RowSelected, "#tags-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        from tui.screens.projects import ProjectsScreen

        table = self.table
        if table.row_count == 0:
            return
        label = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if label is not None:
            self.fresh.discard(str(label))
            self.app.push_screen(ProjectsScreen(tag=str(label), title=f"#{label}"))

    def object_arrived(self, view: dict[str, Any]) -> None:
        if view.get("kind") == "tag" or (view.get("kind") == "project" and view.get("tags")):
            self.reload()
