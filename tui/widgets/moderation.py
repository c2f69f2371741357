"""Labs without a chief, as shown: lab names that clash, members, moderation marks, the
effects of the lab's decisions in words, a comment thread with marks (docs/governance.md).

Lab views the app has seen (`lab_list`, `show` of a lab) are remembered per app
(``remember_labs`` / ``known_lab``), so that every place naming a lab (the projects page's
title, a project's header) can say `name (short_id)` when the name clashes, and the
caller's role in the object's lab is known when it offers to hide something.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from rich.text import Text
from textual.app import App

from tui.format import Formatter
from tui.widgets.comments import CommentThread

HIDDEN_MARK = "⊘"
QUEUED_MARK = "⏳"
HIDDEN_STYLE = "dim red"
QUEUED_STYLE = "yellow"
WAITING_MINE = "waiting for the lab's approval"

# A decision's effect (protocols/lab_authority.py) in words.
EFFECTS = {
    "applied": "applied",
    "pending": "pending (needs more backing)",
    "no_authority": "no effect: the signer had no authority",
    "no_effect": "no effect: nothing changed",
    "unknown_act": "ignored: an act this release does not know",
}

_labs: weakref.WeakKeyDictionary[App[Any], dict[str, dict[str, Any]]] = (
    weakref.WeakKeyDictionary())  # fmt: skip


def remember_labs(app: App[Any], labs: Iterable[Mapping[str, Any]]) -> None:
    """Keep the lab views ``app`` was given (by id), for ``known_lab``."""
    known = _labs.setdefault(app, {})
    for lab in labs:
        if lab.get("id"):
            known[str(lab["id"])] = dict(lab)


def known_lab(app: App[Any], lab_id: str | None) -> dict[str, Any] | None:
    if lab_id is None:
        return None
    return _labs.get(app, {}).get(str(lab_id))


def lab_label(lab: Mapping[str, Any], fmt: Formatter | None = None) -> str:
    """A lab's name, with its short id when another known lab has the same or a
    confusable name (`name_clash`): "fablab (3fa2c1d0)"."""
    name = str(lab.get("name") or lab.get("id") or "")
    if not lab.get("name_clash"):
        return name
    short = str(lab.get("short_id") or str(lab.get("id", ""))[:8])
    return f"{name} ({fmt.short_id(short) if fmt is not None else short})"


def lab_name_of(app: App[Any], view: Mapping[str, Any], fmt: Formatter | None = None) -> str:
    """The label of an object's lab (``lab`` / ``lab_name`` of a project view)."""
    lab = known_lab(app, view.get("lab"))
    if lab is not None:
        return lab_label(lab, fmt)
    return str(view.get("lab_name") or "")


def role_in(app: App[Any], lab_id: str | None) -> str | None:
    """The caller's role in a lab ("steward", "member" or None), as last seen."""
    lab = known_lab(app, lab_id)
    role = lab.get("role") if lab is not None else None
    return str(role) if role else None


def show_hidden(app: App[Any]) -> bool:
    return bool(getattr(app, "show_hidden", False))


def hidden_params(app: App[Any]) -> dict[str, bool]:
    """`show_hidden: true` when the toggle is on (nothing otherwise: older nodes)."""
    return {"show_hidden": True} if show_hidden(app) else {}


def member_name(member: Mapping[str, Any] | None, fmt: Formatter | None = None) -> str:
    """An M of the governance RPCs ({member, name, fingerprint}) in a few words."""
    if not member:
        return "?"
    name = str(member.get("name") or "")
    if name:
        return name
    hex_id = str(member.get("member") or "")
    return fmt.short_id(hex_id) if fmt is not None else hex_id[:8]


def member_text(member: Mapping[str, Any], me: str | None, fmt: Formatter) -> Text:
    """Name, short fingerprint, "(you)"."""
    text = Text(member_name(member, fmt), style="bold")
    fingerprint = str(member.get("fingerprint") or "")
    if fingerprint:
        text.append("  " + fmt.volatile("-".join(fingerprint.split("-")[:2])), style="dim")
    if me is not None and member.get("member") == me:
        text.append("  (you)", style="green")
    return text


def effect_text(effect: str | None) -> str:
    return EFFECTS.get(str(effect), str(effect or ""))


def moderation_mark(view: Mapping[str, Any], me: str | None) -> Text | None:
    """The mark of a hidden or queued object (None when shown): who hid it and why; one's
    own queued post is "waiting for the lab's approval"."""
    status = view.get("moderation")
    if status == "hidden":
        by = view.get("hidden_by")
        text = Text(f"{HIDDEN_MARK} hidden", style=HIDDEN_STYLE)
        text.append(" on this machine" if by == "node" else " by the lab" if by else "")
        reason = view.get("hidden_reason")
        if reason:
            text.append(f": {reason}")
        return text
    if status == "queued":
        who = view.get("member") or view.get("author")
        mine = me is not None and who == me
        return Text(f"{QUEUED_MARK} " + (WAITING_MINE if mine else "waiting in the queue"),
                    style=QUEUED_STYLE)  # fmt: skip
    return None


def marked_title(view: Mapping[str, Any], title: Text, me: str | None) -> Text:
    """A list's title cell with a hidden/queued object's mark in front and, after the
    title, the reason it is hidden or that one's own post waits for approval."""
    mark = moderation_mark(view, me)
    if mark is None:
        return title
    hidden = view.get("moderation") == "hidden"
    out = Text(f"{HIDDEN_MARK if hidden else QUEUED_MARK} ", style=mark.style)
    out.append_text(title)
    words = mark.plain.split(" ", 1)[1]  # without the mark
    if hidden or words == WAITING_MINE:
        out.append(f"  {words}", style=mark.style)
    return out


class ModeratedThread(CommentThread):
    """CommentThread whose hidden or queued comments carry their mark and reason."""

    def __init__(self, fmt: Formatter, *, id: str | None = None) -> None:
        super().__init__(fmt, id=id)
        self.me: str | None = None

    def _comment_text(self, depth: int, comment: dict[str, Any], new: bool) -> Text:
        text = super()._comment_text(depth, comment, new)
        mark = moderation_mark(comment, self.me)
        if mark is None:
            return text
        end = len(text.plain.split("\n", 1)[0])  # the mark goes on the head line
        out = text[:end]
        out.append("  ")
        out.append_text(mark)
        out.append_text(text[end:])
        return out
