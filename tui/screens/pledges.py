"""Pledges made and received (`pledges`, docs/rpc.md): by a member (yours: the command
palette's "Your pledges") or by a lab (on a lab's projects page: "Pledges of this lab").
Made: pledges the member (the lab's creator) made on other projects; received: pledges on
the member's projects (the lab's projects). Enter opens the project."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable, Static

from tui.format import who
from tui.screens.base import PercolabScreen
from tui.screens.project import ProjectScreen
from tui.widgets.vocab import pledge_label

log = logging.getLogger(__name__)

PLEDGES_LIMIT = 200  # the newest pledges listed (the node's page)
MAX_NOTE_COLUMN = 40


class PledgesScreen(PercolabScreen):
    """Pledges around one ``member`` or one ``lab`` (exactly one of them)."""

    BINDINGS = [Binding("escape", "back", "Back", id="pledges_back")]

    def __init__(self, *, member: str | None = None, lab: str | None = None,
                 heading: str = "") -> None:  # fmt: skip
        super().__init__()
        self.member, self.lab = member, lab
        self.heading = heading or "Pledges"
        self.pledges: dict[str, dict[str, Any]] = {}
        self.loaded = False

    def compose_body(self) -> Iterable[Widget]:
        yield Static("", id="pledges-info", classes="screen-info")
        table: DataTable[Text] = DataTable(id="pledges-table", cursor_type="row")
        for key, label in (("dir", ""), ("what", "Pledge"), ("project", "Project"),
                           ("need", "Need"), ("by", "By"), ("when", "When"), ("note", "Note")):
            table.add_column(label, key=key)
        yield table

    def on_mount(self) -> None:
        self.sub_title = self.heading

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#pledges-table", DataTable)

    def reload(self) -> None:
        self.load_pledges()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_pledges(self) -> None:
        result = await self.rpc("pledges", member=self.member, lab=self.lab,
                                limit=PLEDGES_LIMIT)  # fmt: skip
        self.show_pledges(list(result or []))

    def show_pledges(self, pledges: list[dict[str, Any]]) -> None:
        table = self.table
        table.clear()
        self.pledges = {}
        made = received = 0
        for p in pledges:
            pid = str(p["id"])
            self.pledges[pid] = p
            made += bool(p.get("made"))
            received += bool(p.get("received"))
            direction = "made" if p.get("made") else "received"
            note = str(p.get("note") or "")
            if len(note) > MAX_NOTE_COLUMN:
                note = note[: MAX_NOTE_COLUMN - 1] + "…"
            label = p.get("type_label") or pledge_label(str(p.get("type", "")))
            table.add_row(Text(direction, style="cyan" if p.get("made") else "green"),
                          Text(str(label), style="bold"), Text(str(p.get("project_title") or
                          "(a project not on this node)")), Text(str(p.get("need") or "—")),
                          Text(who(p) or "?"), Text(self.fmt.when(p.get("ts"))), Text(note),
                          key=pid)  # fmt: skip
        info = f"{made} made, {received} received · enter: open the project"
        if not pledges:
            info = "No pledge made or received yet."
        self.query_one("#pledges-info", Static).update(info)
        self.loaded = True
        table.focus()

    @on(DataTable.RowSelected, "#pledges-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        pledge = self.pledges.get(str(event.row_key.value))
        if pledge is None:
            return
        if not pledge.get("project_title"):
            self.notify("That project is not on this node", severity="warning")
            return
        self.app.push_screen(ProjectScreen(str(pledge["target"])))

    def action_back(self) -> None:
        self.dismiss()

    def object_arrived(self, view: dict[str, Any]) -> None:
        if view.get("kind") == "pledge" or (
            view.get("kind") == "retraction" and str(view.get("target")) in self.pledges
        ):
            self.reload()
