"""Edit a project: a revision (`edit`, docs/rpc.md) of the fields its authors may change.

The form is prefilled with the project's current fields; only the fields changed are sent
(nothing changed: said in the form, nothing sent). The node refuses with ``not_author`` when
this member is not an author now; the form then stays open with what was typed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from textual.widget import Widget
from textual.widgets import Input, Label, TextArea

from protocols.kinds import STAGES
from tui.client import RpcError
from tui.format import join_list, split_list
from tui.screens.forms import FormScreen
from tui.widgets.fields import licence_input, prefilled, stage_select
from tui.widgets.vocab import licence_problem

log = logging.getLogger(__name__)

NODE_ERRORS = {
    "not_author": "Only the project's author and co-authors can edit it, and you are not "
                  "one of them now. Nothing was sent; what you typed is still here.",
    "no_change": "Nothing would change: every field is as it is now.",
}


def coauthor_names(project: Mapping[str, Any]) -> dict[str, str]:
    """member id -> the text shown for it in the co-authors field (its name when it has one
    that no other co-author shares, else its id)."""
    entries = [c for c in project.get("coauthors") or [] if isinstance(c, Mapping)]
    names = [str(c.get("name") or "") for c in entries]
    out: dict[str, str] = {}
    for c, name in zip(entries, names, strict=True):
        member = str(c.get("member", ""))
        out[member] = name if name and names.count(name) == 1 else member
    return out


def authors_of(project: Mapping[str, Any]) -> set[str]:
    """The member ids of the project's authors now: its creator and its co-authors."""
    out = {str(c.get("member")) for c in project.get("coauthors") or [] if isinstance(c, Mapping)}
    if project.get("member"):
        out.add(str(project["member"]))
    return out


class EditForm(FormScreen):
    """A revision of ``project`` (a `project` view); dismisses with the revision id."""

    TITLE_TEXT = "Edit the project"
    METHOD = "edit"
    SUBMIT_LABEL = "Save revision"
    ENTER_SUBMITS = False
    FIELD_HELP: ClassVar[dict[str, str]] = {
        "title": "Title: the project's name · enter: next field · ctrl+s: save",
        "summary": "Summary: one line · enter: next field",
        "stage": "Stage: enter opens the list (type to search in it)",
        "needs": "Needs: what the project lacks, comma-separated; others pledge on them",
        "licence": "Licence: an SPDX id; → accepts the suggestion",
        "coauthors": "Co-authors: they can edit too; names or member ids, comma-separated",
        "note": "Note: what changed and why, shown in the history",
        "body": "Body: Markdown; enter is a new line here · ctrl+s: save",
    }

    def __init__(self, project: Mapping[str, Any], me: str | None = None) -> None:
        context = ("Your changes become a revision, signed by you; the history keeps every "
                   "one. Enter: next field, ctrl+s: save, esc: cancel.")  # fmt: skip
        if me is not None and me not in authors_of(project):
            context += ("\nYou are not listed as an author of this project: the node will "
                        "refuse the revision unless an author has just added you.")  # fmt: skip
        super().__init__({"id": str(project["id"])}, context=context)
        self.project = dict(project)
        self.coauthors = coauthor_names(project)  # member -> shown text

    def fields(self) -> Iterable[Widget]:
        p = self.project
        yield Label("Title", classes="form-label")
        yield prefilled(str(p.get("title") or ""), placeholder="Title", id="title")
        yield Label("Summary", classes="form-label")
        yield prefilled(str(p.get("summary") or ""), placeholder="One-line summary", id="summary")
        yield Label("Stage", classes="form-label")
        yield stage_select(str(p.get("stage") or ""))
        yield Label("Needs (comma-separated)", classes="form-label")
        yield prefilled(join_list(p.get("needs") or []), placeholder="welder, funding…", id="needs")
        yield Label("Licence", classes="form-label")
        yield licence_input(str(p.get("licence") or ""))
        yield Label("Co-authors (names or member ids, comma-separated)", classes="form-label")
        yield prefilled(join_list(self.coauthors.values()), placeholder="none", id="coauthors")
        yield Label("What changed (optional note)", classes="form-label")
        yield Input(placeholder="e.g. second prototype works", id="note")
        yield Label("Body (Markdown)", classes="form-label")
        yield TextArea(str(p.get("body") or ""), id="body", language="markdown",
                       classes="form-body")  # fmt: skip

    def _typed(self, widget_id: str) -> str:
        widget = self.query_one(f"#{widget_id}")
        return widget.text if isinstance(widget, TextArea) else str(getattr(widget, "value", ""))

    def params(self) -> dict[str, Any]:
        p = self.project
        out: dict[str, Any] = {}
        title = self.value("title")
        if not title:
            raise ValueError("A title is required")
        if title != str(p.get("title") or ""):
            out["title"] = title
        for name in ("summary", "licence"):
            if self.value(name) != str(p.get(name) or ""):
                out[name] = self.value(name)
        if out.get("licence") and (problem := licence_problem(out["licence"])):
            raise ValueError(problem)
        if self.value("stage") != str(p.get("stage") or STAGES[0]):  # no stage: shown "idea"
            out["stage"] = self.value("stage")
        if self._typed("body").strip() != str(p.get("body") or "").strip():
            out["body"] = self._typed("body")
        needs = split_list(self.value("needs"))
        if needs != list(p.get("needs") or []):
            out["needs"] = needs
        if split_list(self.value("coauthors")) != list(self.coauthors.values()):
            by_text = {text: member for member, text in self.coauthors.items()}
            out["coauthors"] = [by_text.get(t, t) for t in split_list(self.value("coauthors"))]
        if not out:
            raise ValueError("Nothing changed yet: change a field, or esc to close.")
        if self.value("note"):
            out["note"] = self.value("note")
        log.info("edit %s: %s", p.get("id"), sorted(out))
        return out

    def node_error(self, exc: RpcError) -> str:
        return NODE_ERRORS.get(exc.code, f"{exc.code}: {exc.message}")
