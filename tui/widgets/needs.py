"""A project's needs with the pledges that answer them, in an OptionList.

One option per need (its id ``need:N``, selectable: Enter there pledges on that need), each
pledge under the need it answers (option id: the pledge id), then the pledges that answer no
listed need. ``current_need`` and ``current_pledge`` say what the highlight is on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tui.format import Formatter, who
from tui.widgets.vocab import pledge_label

NEED_PREFIX = "need:"
OTHER_ID = "_other"
EMPTY_ID = "_empty"


def group_pledges(needs: Sequence[str], needs_view: Sequence[Mapping[str, Any]] | None,
                  pledges: Sequence[Mapping[str, Any]]) -> list[tuple[str | None, list[Any]]]:
    """[(need or None, its pledges)]: the node's ``needs`` ([{need, pledges}]) when it gives
    them, else the pledges grouped by their ``need`` field; pledges answering no current need
    come last under None."""
    groups: dict[str | None, list[Any]] = {n: [] for n in needs}
    placed: set[str] = set()
    for item in needs_view or []:
        need = str(item.get("need", ""))
        groups.setdefault(need, [])
        for p in item.get("pledges") or []:
            groups[need].append(p)
            placed.add(str(p.get("id")))
    other: list[Any] = []
    for p in pledges:
        if str(p.get("id")) in placed:
            continue
        answers = p.get("need")
        if answers and answers in groups:
            groups[answers].append(p)
        else:
            other.append(p)
    out: list[tuple[str | None, list[Any]]] = list(groups.items())
    if other:
        out.append((None, other))
    return out


class NeedsList(OptionList):
    """Needs and pledges of one project."""

    def __init__(self, fmt: Formatter, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.fmt = fmt
        self.pledges: dict[str, dict[str, Any]] = {}
        self.need_of: dict[str, str | None] = {}  # option id -> the need it sits under
        self.me: str | None = None

    def show(self, groups: list[tuple[str | None, list[Any]]], me: str | None) -> None:
        keep = self.highlighted
        self.me = me
        self.clear_options()
        self.pledges, self.need_of = {}, {}
        options: list[Option] = []
        for index, (need, pledges) in enumerate(groups):
            if need is None:
                head = Text("Other pledges", style="bold")
                oid = OTHER_ID
            else:
                head = Text("▸ ", style="dim")
                head.append(need, style="bold")
                count = len(pledges)
                head.append(f"  {count} pledge{'s' if count != 1 else ''}" if count
                            else "  no pledge yet", style="dim")  # fmt: skip
                oid = f"{NEED_PREFIX}{index}"
            options.append(Option(head, id=oid))
            self.need_of[oid] = need
            for p in pledges:
                pid = str(p["id"])
                self.pledges[pid] = dict(p)
                self.need_of[pid] = need
                options.append(Option(self._pledge_text(p), id=pid))
        if not options:
            options.append(Option(Text("No needs listed and no pledges yet — press p to pledge.",
                                       style="dim"), id=EMPTY_ID, disabled=True))  # fmt: skip
        self.add_options(options)
        if keep is not None and keep < self.option_count:
            self.highlighted = keep
        elif options and not options[0].disabled:
            self.highlighted = 0

    def _pledge_text(self, p: Mapping[str, Any]) -> Text:
        text = Text("    ")
        label = p.get("label") or p.get("type_label") or pledge_label(str(p.get("type", "")))
        text.append(str(label), style="bold green")
        text.append(" — ")
        text.append(who(p) or "?", style="bold")
        if self.me is not None and p.get("member") == self.me:
            text.append(" (you)", style="dim")
        text.append(f"  {self.fmt.when(p.get('ts'))}", style="dim")
        if p.get("note"):
            text.append(f"\n      {p['note']}")
        return text

    def _current(self) -> str | None:
        if self.highlighted is None or not self.option_count:
            return None
        return self.get_option_at_index(self.highlighted).id

    @property
    def current_need(self) -> str | None:
        """The need under the highlight (a need's line or one of its pledges)."""
        oid = self._current()
        return self.need_of.get(oid) if oid is not None else None

    @property
    def current_pledge(self) -> dict[str, Any] | None:
        oid = self._current()
        return self.pledges.get(oid) if oid is not None else None
