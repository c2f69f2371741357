"""Fork a project into a lab (`fork`, docs/rpc.md): a new project in the chosen lab with the
current fields and a `derives` record naming the origin (fork, remix, built, inspired)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from textual import work
from textual.widget import Widget
from textual.widgets import Input, Label, Select

from tui.client import NodeUnavailable, RpcError
from tui.screens.base import rpc_client
from tui.screens.forms import FormScreen
from tui.widgets.fields import prefilled

log = logging.getLogger(__name__)

HOW_CHOICES = [("Fork (we take it further here)", "fork"), ("Remix (parts of it)", "remix"),
               ("Built it (their design, our build)", "built"),
               ("Inspired by it", "inspired")]  # fmt: skip


class ForkForm(FormScreen):
    """Fork ``project`` (a `project` view) into one of the labs this node follows; dismisses
    with the new project's id."""

    TITLE_TEXT = "Fork into a lab"
    METHOD = "fork"
    SUBMIT_LABEL = "Fork"
    ENTER_SUBMITS = False
    AUTO_FOCUS = "#lab"
    FIELD_HELP: ClassVar[dict[str, str]] = {
        "lab": "The lab: enter opens the list of the labs you follow · ctrl+s: fork",
        "how": "How it derives: enter opens the list",
        "title": "Title of the new project (the origin's unless changed)",
        "note": "Note: what you change or why, shown in both projects' lineage",
    }

    def __init__(self, project: Mapping[str, Any]) -> None:
        super().__init__({"id": str(project["id"])}, context=(
            f"“{project.get('title', '')}” from {project.get('lab_name') or 'its lab'}: a new "
            "project in your lab, which names this one as its origin. ctrl+s forks."))
        self.project = dict(project)
        self.labs_loaded = False

    def fields(self) -> Iterable[Widget]:
        yield Label("Into the lab (labs you follow)", classes="form-label")
        yield Select([], prompt="Loading your labs…", id="lab")
        yield Label("How", classes="form-label")
        yield Select(HOW_CHOICES, allow_blank=False, id="how")
        yield Label("Title", classes="form-label")
        yield prefilled(str(self.project.get("title") or ""), placeholder="Title", id="title")
        yield Label("Note (optional)", classes="form-label")
        yield Input(placeholder="e.g. adapted to a 12 V pump", id="note")

    def on_mount(self) -> None:
        self.load_labs()

    @work(exclusive=True, group="labs", exit_on_error=False)
    async def load_labs(self) -> None:
        try:
            labs = await rpc_client(self).call("lab_list")
        except (RpcError, NodeUnavailable) as exc:
            self.show_error(f"Could not list your labs: {exc}")
            return
        own = self.project.get("lab")
        followed = [lab for lab in labs or [] if lab.get("followed")]
        followed.sort(key=lambda lab: (lab.get("id") == own, str(lab.get("name", ""))))
        select = self.query_one("#lab", Select)
        select.set_options([(str(lab.get("name") or lab["id"]), str(lab["id"]))
                            for lab in followed])  # fmt: skip
        select.prompt = "Choose a lab" if followed else "Follow a lab first (labs screen, f)"
        if followed:
            select.value = str(followed[0]["id"])
        if self.focused is None:
            select.focus()
        self.labs_loaded = True
        self.mark_pristine("lab")  # the labs arriving is not the user typing

    def params(self) -> dict[str, Any]:
        lab = self.value("lab")
        if not lab:
            raise ValueError("Choose the lab to fork into")
        title = self.value("title")
        if not title:
            raise ValueError("A title is required")
        return {
            "lab": lab,
            "how": self.value("how"),
            "title": title if title != self.project.get("title") else None,
            "note": self.value("note") or None,
        }
