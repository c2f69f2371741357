"""A lab's decision log (`lab_log`), newest first: when, who, the act in words, its effect
(applied, pending, no authority...), the reason. Paged with the node's cursor (`n` / `p`),
as the projects pages are."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable, Static

from tui.screens.base import PercolabScreen
from tui.widgets.moderation import effect_text, member_name

log = logging.getLogger(__name__)

PAGE_SIZE = 50
EFFECT_STYLES = {"applied": "green", "pending": "yellow", "no_authority": "red",
                 "no_effect": "dim", "unknown_act": "dim"}  # fmt: skip


def act_text(entry: dict[str, Any], short_id: str) -> str:
    """A decision's act in words: "admit Bob (steward)", "hide 3fa2c1d0", "rules: posts
    shown"."""
    act = str(entry.get("act") or "?")
    subject = entry.get("subject")
    words = act
    if subject:
        words += f" {member_name(subject)}"
    elif entry.get("target"):
        words += f" {short_id}"
    if entry.get("role") and entry.get("role") != "member":
        words += f" ({entry['role']})"
    rules = entry.get("rules")
    if isinstance(rules, dict) and rules:
        words += ": " + ", ".join(f"{k} {v}" for k, v in rules.items())
    return words


class LabLogScreen(PercolabScreen):
    """Every decision of ``lab`` (named ``heading``), with what it did."""

    BINDINGS = [
        Binding("escape", "back", "Back", id="log_back"),
        Binding("n", "next_page", "Older", id="log_next"),
        Binding("p", "prev_page", "Newer", id="log_prev"),
    ]

    def __init__(self, lab: str, heading: str, *, page_size: int = PAGE_SIZE) -> None:
        super().__init__()
        self.lab, self.heading, self.page_size = lab, heading, page_size
        self.cursors: list[str | None] = [None]
        self.next_cursor: str | None = None

    def compose_body(self) -> Iterable[Widget]:
        yield Static("", id="log-info", classes="screen-info")
        table: DataTable[Text] = DataTable(cursor_type="row", zebra_stripes=True,
                                           id="log-table")  # fmt: skip
        yield table

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#log-table", DataTable)

    def on_mount(self) -> None:
        self.sub_title = f"Decisions of {self.heading}"
        for label, key in (("When", "when"), ("By", "by"), ("Decision", "act"),
                           ("Effect", "effect"), ("Reason", "reason")):  # fmt: skip
            self.table.add_column(label, key=key)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next_page":
            return self.next_cursor is not None or None
        if action == "prev_page":
            return len(self.cursors) > 1 or None
        return True

    def reload(self) -> None:
        self.load_page(self.cursors[-1])

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_page(self, cursor: str | None) -> None:
        result = await self.rpc("lab_log", lab=self.lab, limit=self.page_size, cursor=cursor)
        self.next_cursor = result.get("next")
        entries = [e for e in result.get("entries") or [] if isinstance(e, dict)]
        table = self.table
        table.clear()
        for entry in entries:
            effect = str(entry.get("effect") or "")
            table.add_row(
                Text(self.fmt.when(entry.get("ts")), style="dim"),
                Text(member_name(entry.get("by"), self.fmt) if entry.get("by") else "?"),
                Text(act_text(entry, self.fmt.short_id(entry.get("target")))),
                Text(effect_text(effect), style=EFFECT_STYLES.get(effect, "")),
                Text(str(entry.get("reason") or "")),
                key=str(entry.get("id")),
            )
        page = len(self.cursors)
        info = f"{self.heading} — the lab's decisions, newest first — page {page}"
        if not entries:
            info += "\nNo decisions yet."
        self.query_one("#log-info", Static).update(info)
        self.refresh_bindings()

    def action_next_page(self) -> None:
        if self.next_cursor is not None:
            self.cursors.append(self.next_cursor)
            self.reload()

    def action_prev_page(self) -> None:
        if len(self.cursors) > 1:
            self.cursors.pop()
            self.reload()

    def action_back(self) -> None:
        self.dismiss()

    def object_arrived(self, view: dict[str, Any]) -> None:
        if view.get("kind") == "decision" and view.get("lab") == self.lab and \
                len(self.cursors) == 1:  # fmt: skip
            self.reload()
