"""The changes of one revision, readable: a unified diff for the body, old → new for the rest.

``render_changes`` is pure (a Rich ``Text`` from a `history` entry, docs/rpc.md); ``DiffView``
is the Static that shows it on the history screen.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from rich.text import Text
from textual.widgets import Static

from tui.format import Formatter, who

MAX_DIFF_LINES = 400  # longer diffs are cut, with a count of what is left out
DIFF_CONTEXT_LINES = 2
MEMBER_HEX_CHARS = 64
TEXT_FIELDS = ("body", "summary")  # multi-line fields: a unified diff
FIELD_NAMES = {
    "title": "Title", "summary": "Summary", "body": "Body", "stage": "Stage",
    "needs": "Needs", "licence": "Licence", "coauthors": "Co-authors", "derives": "Derives from",
}
EFFECTS = {
    "applied": ("applied", "green"),
    "not_author": ("no effect: not an author then", "red"),
    "removed_concurrently": ("no effect: made beside this co-author's removal", "red"),
    "forged_link": ("no effect: supersedes an object that is not a revision of this", "red"),
    "wrong_lab": ("no effect: signed for another lab", "red"),
    "waiting": ("waiting for an earlier revision to arrive", "yellow"),
}


def effect_text(effect: str) -> tuple[str, str]:
    """(what an effect means, its style); an effect this release does not know is shown as
    itself."""
    return EFFECTS.get(effect, (effect, "yellow"))


def field_name(name: str) -> str:
    return FIELD_NAMES.get(name, name)


def _member(value: Any, fmt: Formatter, names: Mapping[str, str]) -> str:
    text = str(value)
    if text in names:
        return names[text]
    if len(text) == MEMBER_HEX_CHARS:
        return fmt.short_id(text)
    return text


def _item(name: str, value: Any, fmt: Formatter, names: Mapping[str, str]) -> str:
    """One element of a list field as a line."""
    if name == "coauthors":
        return _member(value, fmt, names)
    if isinstance(value, Mapping):  # a derives record
        project = value.get("title") or fmt.short_id(str(value.get("project", "")))
        note = f" — {value['note']}" if value.get("note") else ""
        return f"{value.get('how', '?')} of {project}{note}"
    return str(value)


def _scalar(value: Any) -> str:
    if value is None or value == "":
        return "(none)"
    return str(value)


def _lines_diff(out: Text, old: str, new: str, budget: list[int]) -> None:
    diff = difflib.unified_diff(old.splitlines(), new.splitlines(), "before", "after",
                                lineterm="", n=DIFF_CONTEXT_LINES)  # fmt: skip
    for line in diff:
        if line.startswith(("---", "+++")):
            continue
        if budget[0] <= 0:
            budget[1] += 1
            continue
        budget[0] -= 1
        style = ("cyan" if line.startswith("@@") else "green" if line.startswith("+")
                 else "red" if line.startswith("-") else "")  # fmt: skip
        out.append("  " + line + "\n", style=style)


def render_changes(entry: Mapping[str, Any], fmt: Formatter,
                   names: Mapping[str, str] | None = None) -> Text:
    """A history entry's header (author, time, effect, note) and each changed field."""
    names = names or {}
    out = Text()
    out.append(who(entry) or "unknown member", style="bold")
    out.append(f"  {fmt.when(entry.get('ts'))}  ", style="dim")
    meaning, style = effect_text(str(entry.get("effect", "")))
    out.append(meaning + "\n", style=f"bold {style}")
    if entry.get("note"):
        out.append("“" + str(entry["note"]) + "”\n", style="italic")
    supersedes = entry.get("supersedes") or []
    if len(supersedes) > 1:
        out.append(f"joins {len(supersedes)} branches\n", style="magenta")
    changes: Mapping[str, Any] = entry.get("changes") or {}
    if not changes:
        out.append("\nno field this release knows was changed\n", style="dim")
    budget = [MAX_DIFF_LINES, 0]  # lines left, lines cut
    for name, change in changes.items():
        old = change.get("old") if isinstance(change, Mapping) else None
        new = change.get("new") if isinstance(change, Mapping) else change
        out.append(f"\n{field_name(name)}\n", style="bold underline")
        if name in TEXT_FIELDS and isinstance(old or "", str) and isinstance(new or "", str):
            _lines_diff(out, str(old or ""), str(new or ""), budget)
        elif isinstance(old or [], list) and isinstance(new or [], list):
            before = [_item(name, v, fmt, names) for v in old or []]
            after = [_item(name, v, fmt, names) for v in new or []]
            for item in before:
                if item not in after:
                    out.append(f"  - {item}\n", style="red")
            for item in after:
                out.append(f"  {'+' if item not in before else ' '} {item}\n",
                           style="green" if item not in before else "")  # fmt: skip
            if not before and not after:
                out.append("  (none)\n", style="dim")
        else:
            out.append("  " + _scalar(old), style="red")
            out.append(" → ")
            out.append(_scalar(new) + "\n", style="green")
    if budget[1]:
        out.append(f"\n… {budget[1]} more diff lines not shown\n", style="dim")
    return out


class DiffView(Static):
    """The selected revision's changes (``show``), or a hint when there is none."""

    def __init__(self, fmt: Formatter, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.fmt = fmt

    def show(self, entry: Mapping[str, Any] | None, names: Mapping[str, str]) -> None:
        if entry is None:
            self.update(Text("No revision selected.", style="dim"))
        else:
            self.update(render_changes(entry, self.fmt, names))
