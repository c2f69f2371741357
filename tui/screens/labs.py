"""Labs: followed labs first, with project counts and, for the followed ones, how many
projects have activity this member has not read (`unread`, capped by the node at 99: "99+");
follow/unfollow; create a lab. A lab whose name clashes with another's is shown as
`name (short_id)`; the member's role in each lab, and for members how many posts and
newcomers wait for the lab's approval ("3 waiting")."""

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
from tui.screens.forms import LabForm
from tui.widgets.moderation import lab_label, remember_labs

log = logging.getLogger(__name__)

UNREAD_COUNT_CAP = 99  # the node counts up to this many (node/service: UNREAD_COUNT_CAP)


def unread_text(count: int) -> str:
    return f"{UNREAD_COUNT_CAP}+" if count >= UNREAD_COUNT_CAP else str(count)


class LabsScreen(PercolabScreen):
    """All known labs (``lab_list``); enter opens a lab's projects."""

    TITLE = "Labs"
    BINDINGS = [
        Binding("enter", "open", "Open", id="labs_open", show=False),
        Binding("f", "toggle_follow", "Follow/Unfollow", id="labs_follow"),
        Binding("c", "create", "New lab", id="labs_create"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.labs: dict[str, dict[str, Any]] = {}
        self.new_counts: dict[str, int] = {}

    def compose_body(self) -> Iterable[Widget]:
        yield Static("", id="labs-summary", classes="screen-info")
        table: DataTable[Text] = DataTable(cursor_type="row", zebra_stripes=True, id="labs-table")
        yield table

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#labs-table", DataTable)

    def on_mount(self) -> None:
        self.table.add_column("★", key="followed", width=1)
        self.table.add_column("Lab", key="name")
        self.table.add_column("Place", key="place")
        self.table.add_column("Projects", key="projects")
        self.table.add_column("New", key="new")
        self.table.add_column("You", key="role")  # after "New": tests read columns by index
        self.table.add_column("Description", key="description")

    def reload(self) -> None:
        self.load_labs()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_labs(self) -> None:
        labs = await self.rpc("lab_list")
        self.show_labs(labs)

    def show_labs(self, labs: list[dict[str, Any]]) -> None:
        table = self.table
        keep = self.current_id
        table.clear()
        self.labs = {str(lab["id"]): lab for lab in labs}
        remember_labs(self.app, labs)
        unread_labs = 0
        for lab in labs:
            lid = str(lab["id"])
            new = self.new_counts.get(lid, 0)
            raw = lab.get("unread") if lab.get("followed") else 0
            unread = raw if isinstance(raw, int) and raw > 0 else 0
            unread_labs += bool(unread)
            style = "bold green" if new else "bold" if unread else ""
            marks = [f"{new} new"] if new else []
            marks += [f"{unread_text(unread)} unread"] if unread else []
            queued = lab.get("queued") if lab.get("role") else 0
            marks += [f"{queued} waiting"] if isinstance(queued, int) and queued > 0 else []
            table.add_row(
                Text("★" if lab.get("followed") else "", style="bold yellow"),
                Text(lab_label(lab, self.fmt), style=style),
                Text(str(lab.get("place", "") or "")),
                Text(str(lab.get("projects", 0)), justify="right"),
                Text(" · ".join(marks), style=style),
                Text(str(lab.get("role") or ""), style="cyan"),
                Text(str(lab.get("description", "") or "")[:60]),
                key=lid,
            )
        followed = sum(1 for lab in labs if lab.get("followed"))
        fresh = sum(self.new_counts.values())
        summary = f"{len(labs)} labs, {followed} followed"
        if fresh:
            summary += f" — {fresh} new project{'s' if fresh != 1 else ''}"
        if unread_labs:
            summary += f" — unread in {unread_labs} lab{'s' if unread_labs != 1 else ''}"
        if not labs:
            summary = "No labs yet — press c to create one."
        self.query_one("#labs-summary", Static).update(summary)
        if keep in self.labs:
            table.move_cursor(row=table.get_row_index(keep))

    @property
    def current_id(self) -> str | None:
        table = self.table
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return None if key is None else str(key)

    @on(DataTable.RowSelected, "#labs-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        from tui.screens.projects import ProjectsScreen

        lid = self.current_id
        if lid is None:
            return
        lab = self.labs[lid]
        self.new_counts.pop(lid, None)
        self.app.push_screen(ProjectsScreen(lab=lid, title=lab_label(lab, self.fmt),
                                            lab_view=lab))  # fmt: skip

    def action_toggle_follow(self) -> None:
        lid = self.current_id
        if lid is not None:
            self.toggle_follow(lid, not self.labs[lid].get("followed"))

    @work(group="follow", exit_on_error=False)
    async def toggle_follow(self, lab_id: str, follow: bool) -> None:
        await self.rpc("lab_follow" if follow else "lab_unfollow", lab=lab_id)
        name = lab_label(self.labs.get(lab_id, {"name": lab_id}), self.fmt)
        self.notify(f"{'Following' if follow else 'Stopped following'} {name}")
        self.reload()

    def action_create(self) -> None:
        def created(result: Any) -> None:
            if result:
                self.notify("Lab created")
                self.reload()

        self.app.push_screen(LabForm(), created)

    def on_screen_resume(self) -> None:
        self.reload()

    def object_arrived(self, view: dict[str, Any]) -> None:
        kind = view.get("kind")
        if kind == "project" and view.get("lab"):
            lab = str(view["lab"])
            self.new_counts[lab] = self.new_counts.get(lab, 0) + 1
            self.reload()
        elif kind in ("lab", "decision"):  # a decision moves roles and waiting counts
            self.reload()
