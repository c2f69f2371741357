"""One page of projects (a lab's, or a tag's across labs), newest or most active first.

Pages come from ``projects`` with the node's cursor; a stack of cursors lets the user go back.
Projects pushed while the first page is shown appear at once, highlighted, with a "N new"
badge; on later pages only the badge grows (go to the first page to see them). Projects
with activity this member has not read (`unread`, per member on a shared machine) are
marked ● with a bold title until opened.

A lab's page also opens the lab's members (`M`), queue (`Q`), decision log (`L`) and rules
(`R`); its info line says the member's role and, for members, how many posts and newcomers
wait ("3 waiting"). With "show hidden" on (the app's `H`), hidden and queued projects are
listed with their mark (widgets/moderation.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable, Static

from tui.client import NodeUnavailable, RpcError
from tui.format import Formatter
from tui.screens.base import PercolabScreen, rpc_client
from tui.screens.forms import ProjectForm
from tui.screens.lab_log import LabLogScreen
from tui.screens.lab_members import LabMembersScreen
from tui.screens.lab_queue import LabQueueScreen
from tui.screens.lab_rules import LabRulesScreen
from tui.widgets.moderation import (
    hidden_params,
    lab_label,
    remember_labs,
    show_hidden,
)
from tui.widgets.project_table import NEW_MARK, ProjectTable

log = logging.getLogger(__name__)

PAGE_SIZE = 20
ORDERS = ("newest", "active")
UNREAD_STYLE = "bold"  # the new rows' green stays theirs


class UnreadProjectTable(ProjectTable):
    """ProjectTable with unread rows marked. ``opened``: project id -> its activity when
    this screen opened it (read since, whatever the node says until `mark_read` lands)."""

    def __init__(self, fmt: Formatter, *, show_lab: bool = True, id: str | None = None) -> None:
        super().__init__(fmt, show_lab=show_lab, id=id)
        self.opened: dict[str, int] = {}

    def unread(self, project: dict[str, Any]) -> bool:
        if not project.get("unread"):
            return False
        seen = self.opened.get(str(project.get("id")))
        return seen is None or int(project.get("activity") or 0) > seen

    def _cells(self, project: dict[str, Any], new: bool) -> list[Text]:
        cells = super()._cells(project, new)
        if not new and self.unread(project):
            cells[0] = Text(NEW_MARK, style=UNREAD_STYLE)
            cells[1] = Text(cells[1].plain, style=UNREAD_STYLE)
        return cells


class ProjectsScreen(PercolabScreen):
    """Projects of one lab (``lab``) or carrying one tag (``tag``)."""

    BINDINGS = [
        Binding("escape", "back", "Back", id="projects_back"),
        Binding("n", "next_page", "Next page", id="projects_next"),
        Binding("p", "prev_page", "Prev page", id="projects_prev"),
        Binding("o", "toggle_order", "Newest/Active", id="projects_order"),
        Binding("c", "compose", "New project", id="projects_compose"),
        Binding("home", "first_page", "First page", id="projects_first", show=False),
        Binding("M", "lab_screen('members')", "Members", id="lab_members"),
        Binding("Q", "lab_screen('queue')", "Queue", id="lab_queue"),
        Binding("L", "lab_screen('log')", "Lab log", id="lab_log", show=False),
        Binding("R", "lab_screen('rules')", "Lab rules", id="lab_rules", show=False),
    ]

    def __init__(
        self,
        *,
        lab: str | None = None,
        tag: str | None = None,
        title: str = "",
        page_size: int = PAGE_SIZE,
        lab_view: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.lab = lab
        self.lab_view = dict(lab_view or {})
        self.tag = tag
        self.heading = title or (f"#{tag}" if tag else "Projects")
        self.page_size = page_size
        self.order = "newest"
        self.cursors: list[str | None] = [None]  # cursor of each page visited so far
        self.next_cursor: str | None = None
        self.total: int | None = 0
        self.new_ids: set[str] = set()
        self.unseen = 0  # pushed projects not visible on the current page

    @property
    def page(self) -> int:
        return len(self.cursors) - 1

    def compose_body(self) -> Iterable[Widget]:
        yield Static("", id="projects-info", classes="screen-info")
        yield UnreadProjectTable(self.fmt, show_lab=self.lab is None, id="projects-table")

    def on_mount(self) -> None:
        self.sub_title = self.heading

    @property
    def table(self) -> UnreadProjectTable:
        return self.query_one(UnreadProjectTable)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("compose", "lab_screen"):
            return self.lab is not None
        if action == "next_page":
            return self.next_cursor is not None or None
        if action == "prev_page":
            return self.page > 0 or None
        return True

    def reload(self) -> None:
        self.load_page(self.cursors[-1])
        if self.lab is not None:
            self.load_lab()

    @work(exclusive=True, group="lab", exit_on_error=False)
    async def load_lab(self) -> None:
        """The lab's view again (its role, `queued`, `name_clash`); silent on error."""
        try:
            result = await rpc_client(self).call("show", id=self.lab)
        except (RpcError, NodeUnavailable) as exc:
            log.debug("show lab: %s", exc)
            return
        view = result.get("lab") if isinstance(result, dict) else None
        if isinstance(view, dict):
            self.lab_view = view
            remember_labs(self.app, [view])
            self.heading = lab_label(view, self.fmt)
            self.sub_title = self.heading
            self.show_info(self.table.row_count)

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_page(self, cursor: str | None) -> None:
        result = await self.rpc(
            "projects",
            lab=self.lab,
            tag=self.tag,
            order=self.order,
            limit=self.page_size,
            cursor=cursor,
            **hidden_params(self.app),
        )
        self.next_cursor = result.get("next")
        total = result.get("total")  # the node may not count some queries (null)
        self.total = int(total) if isinstance(total, int) else None
        items = list(result.get("items", []))
        self.table.show_page(items, self.new_ids)
        if self.page == 0:
            self.unseen = 0
        self.show_info(len(items))
        self.refresh_bindings()

    def show_info(self, shown: int) -> None:
        first = self.page * self.page_size + 1 if shown else 0
        last = self.page * self.page_size + shown
        of = "?" if self.total is None else str(self.total)
        text = f"{self.heading} — {self.order} first — {first}-{last} of {of}"
        text += f" — page {self.page + 1}"
        fresh = len(self.new_ids) if self.page == 0 else self.unseen
        if fresh:
            text += f"  [b reverse green] {fresh} new [/]"
            if self.page:
                text += " (home: first page)"
        unread = sum(1 for p in self.table.projects.values() if self.table.unread(p))
        if unread:
            text += f"  [b]● {unread} unread[/b]"
        text += self._lab_info()
        if not shown:
            text += "\nNo projects yet." + ("  Press c to post one." if self.lab else "")
        self.query_one("#projects-info", Static).update(text)

    def _lab_info(self) -> str:
        """The member's role in the lab, and what waits for its approval."""
        role = self.lab_view.get("role")
        if self.lab is None or not role:
            return ""
        text = f" — you: {role}"
        queued = self.lab_view.get("queued")
        if isinstance(queued, int) and queued > 0:
            text += f"  [b yellow]{queued} waiting[/] (Q: queue)"
        return text

    def action_lab_screen(self, which: str) -> None:
        if self.lab is None:
            return
        screens = {"members": LabMembersScreen, "queue": LabQueueScreen, "log": LabLogScreen,
                   "rules": LabRulesScreen}  # fmt: skip
        # back from them: what was approved, hidden, admitted meanwhile shows
        self.app.push_screen(screens[which](self.lab, self.heading), lambda _: self.reload())

    def action_next_page(self) -> None:
        if self.next_cursor is not None:
            self.cursors.append(self.next_cursor)
            self.reload()

    def action_prev_page(self) -> None:
        if self.page > 0:
            self.cursors.pop()
            self.reload()

    def action_first_page(self) -> None:
        self.cursors = [None]
        self.reload()

    def action_toggle_order(self) -> None:
        self.order = ORDERS[(ORDERS.index(self.order) + 1) % len(ORDERS)]
        self.cursors = [None]
        self.reload()

    def action_back(self) -> None:
        self.dismiss()

    def on_screen_resume(self) -> None:  # (PercolabScreen's runs too: Textual calls both)
        if any(pid in self.table.opened for pid in self.table.projects):
            self.reload()  # the opened row is read now

    def action_compose(self) -> None:
        if self.lab is None:
            return

        def posted(result: Any) -> None:
            if result:
                self.notify("Project posted")
                self.action_first_page()

        self.app.push_screen(
            ProjectForm({"lab": self.lab}, context=f"in {self.heading}"), posted
        )

    @on(DataTable.RowSelected, "#projects-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        from tui.screens.project import ProjectScreen

        if event.row_key.value is not None:
            pid = str(event.row_key.value)
            project = self.table.projects.get(pid, {})
            self.table.opened[pid] = int(project.get("activity") or 0)
            self.app.push_screen(ProjectScreen(pid))

    def matches(self, project: dict[str, Any]) -> bool:
        if self.lab is not None and self.lab not in (project.get("lab"), project.get("lab_name")):
            return False
        return self.tag is None or self.tag in (project.get("tags") or [])

    def _left_out(self, view: dict[str, Any]) -> bool:
        """A pushed project the page will not list (someone else's queued or a hidden one):
        no "new" badge for it; the lab's waiting count moves instead."""
        me = (getattr(self.app, "me", None) or {}).get("author")
        left_out = view.get("moderation") == "hidden" or (
            view.get("moderation") == "queued" and view.get("member") != me)
        if left_out and not show_hidden(self.app):
            if self.lab is not None:
                self.load_lab()
            return True
        return False

    def object_arrived(self, view: dict[str, Any]) -> None:
        kind = view.get("kind")
        if kind == "project" and self.matches(view) and not self._left_out(view):
            self.new_ids.add(str(view["id"]))
            if self.page == 0:
                self.reload()
            else:
                self.unseen += 1
                self.show_info(self.table.row_count)
        elif kind == "tag" and self.tag is not None and self.tag in (view.get("labels") or []):
            self.new_ids.add(str(view.get("target")))
            self.reload()
        elif kind == "retraction" and str(view.get("target")) in self.table.projects:
            self.reload()
        elif kind == "decision" and self.lab is not None and view.get("lab") == self.lab:
            self.reload()  # approved, hidden, admitted: the list and the waiting count
        elif kind in ("comment", "tag", "revision", "pledge") and str(
            view.get("target")) in self.table.projects:  # a revised title/stage at once
            self.new_ids.add(str(view["target"]))
            self.reload()
