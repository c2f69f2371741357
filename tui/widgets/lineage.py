"""A project's lineage in an OptionList: what it derives from (ancestors, ↑) and the projects
that derive from it (descendants, ↓), across labs, a few links away (indented by distance, in
the node's breadth-first order). Option ids are project ids (Enter opens)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tui.format import Formatter
from tui.widgets.vocab import derive_label

MAX_INDENT_DEPTH = 4  # deeper links (the node walks a few) are indented as this one
# How a descendant relates to this project (derive_label says it the other way round).
HOW_BACK = {"fork": "forked as", "remix": "remixed in", "built": "built as",
            "inspired": "inspired"}  # fmt: skip


def project_id(entry: Mapping[str, Any]) -> str:
    return str(entry.get("project") or entry.get("id") or "")


class LineageList(OptionList):
    """Ancestors then descendants; ``count`` is how many projects are listed."""

    def __init__(self, fmt: Formatter, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.fmt = fmt
        self.count = 0
        self.entries: dict[str, Mapping[str, Any]] = {}  # option (project) id -> its entry

    def show(self, ancestors: Sequence[Mapping[str, Any]],
             descendants: Sequence[Mapping[str, Any]]) -> None:
        self.clear_options()
        self.entries = {}
        options: list[Option] = []
        seen: set[str] = set()
        for entries, up in ((ancestors, True), (descendants, False)):
            for entry in entries:
                pid = project_id(entry)
                if not pid or pid in seen:  # OptionList ids are unique
                    continue
                seen.add(pid)
                self.entries[pid] = entry
                options.append(Option(self._text(entry, up), id=pid))
        self.count = len(options)
        self.add_options(options)
        if options:
            self.highlighted = 0

    def _text(self, entry: Mapping[str, Any], up: bool) -> Text:
        how = str(entry.get("how") or "fork")
        depth = min(int(entry.get("depth") or 1), MAX_INDENT_DEPTH)
        text = Text("  " * (depth - 1) + ("↑ " if up else "↓ "), style="bold")  # by distance
        label = (entry.get("how_label") or derive_label(how)) if up else HOW_BACK.get(how, how)
        text.append(f"{label} ", style="dim")
        title = entry.get("title")
        if title:
            text.append(str(title), style="bold")
        else:  # not here (yet): the id is all we know
            text.append(f"project {self.fmt.short_id(project_id(entry))} (not on this node)",
                        style="italic")  # fmt: skip
        if entry.get("lab_name"):
            text.append(f"  in {entry['lab_name']}", style="dim")
        if entry.get("note"):
            text.append(f" — {entry['note']}")
        return text
