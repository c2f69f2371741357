"""Threaded comments in an OptionList: one option per comment, indented by depth."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tui.format import Formatter, who


def flatten(
    comments: Iterable[dict[str, Any]], depth: int = 0
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Depth-first walk of a threaded comment list: (depth, comment) pairs."""
    for comment in comments:
        yield depth, comment
        yield from flatten(comment.get("replies") or [], depth + 1)


class CommentThread(OptionList):
    """Option ids are comment ids; new comments carry a marker and a highlight style."""

    def __init__(self, fmt: Formatter, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.fmt = fmt
        self.comments: dict[str, dict[str, Any]] = {}

    def show(self, comments: list[dict[str, Any]], new_ids: set[str]) -> None:
        keep = self.current_id
        self.clear_options()
        self.comments = {}
        options: list[Option] = []
        for depth, comment in flatten(comments):
            cid = str(comment["id"])
            self.comments[cid] = comment
            options.append(Option(self._comment_text(depth, comment, cid in new_ids), id=cid))
        if not options:
            options.append(Option(Text("No comments yet — press c to comment.", style="dim"),
                                  id="_empty", disabled=True))
        self.add_options(options)
        target = next((c for c in self.comments if c in new_ids), keep)
        if target is not None and target in self.comments:
            self.highlighted = self.get_option_index(target)
        elif self.comments:
            self.highlighted = 0

    def _comment_text(self, depth: int, comment: dict[str, Any], new: bool) -> Text:
        indent = "  " * depth + ("↳ " if depth else "")
        head = Text(indent)
        head.append(who(comment) or "?", style="bold")
        head.append(f"  {self.fmt.when(comment.get('ts'))}", style="dim")
        if new:
            head.append("  ● new", style="bold green")
        pad = "  " * depth + ("  " if depth else "")
        body = "\n".join(pad + line for line in str(comment.get("body", "")).splitlines())
        head.append("\n" + body)
        return head

    @property
    def current_id(self) -> str | None:
        if self.highlighted is None:
            return None
        option = self.get_option_at_index(self.highlighted)
        return None if option.id in (None, "_empty") else option.id
