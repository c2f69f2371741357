"""A lab's queue (`queue`): objects waiting for the lab's approval (posts of non-members
where only members post) and newcomers waiting to be admitted.

A member approves a waiting object (`approve`), vouches for its author or a newcomer
(`vouch`), hides it (a steward for the lab or on this machine, anyone else on this machine:
screens/moderate.py); enter opens a waiting project (or the project a comment is on)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tui.format import who
from tui.screens.base import PercolabScreen
from tui.screens.moderate import ask_hide, send
from tui.widgets.moderation import member_name, member_text

log = logging.getLogger(__name__)

SNIPPET = 70  # characters of a waiting comment's body
PAGE = 50  # waiting posts asked for at a time


def object_text(view: dict[str, Any], when: str) -> Text:
    """A waiting object in a line: kind, title or body, author, when."""
    kind = str(view.get("kind", "object"))
    text = Text(f"{kind} ", style="dim")
    if view.get("title"):
        text.append(str(view["title"]), style="bold")
    else:
        body = " ".join(str(view.get("body") or view.get("labels") or "").split())
        text.append(body[:SNIPPET] + ("…" if len(body) > SNIPPET else ""))
    text.append(f"  by {who(view) or '?'}", style="italic")
    text.append(f"  {when}", style="dim")
    return text


class LabQueueScreen(PercolabScreen):
    """What waits in ``lab`` (named ``heading``)."""

    BINDINGS = [
        Binding("escape", "back", "Back", id="queue_back"),
        Binding("a", "approve", "Approve", id="queue_approve"),
        Binding("v", "vouch", "Vouch for the author", id="queue_vouch"),
        Binding("x", "hide", "Hide…", id="queue_hide"),
        Binding("m", "more", "More", id="queue_more"),
    ]

    def __init__(self, lab: str, heading: str) -> None:
        super().__init__()
        self.lab, self.heading = lab, heading
        self.objects: dict[str, dict[str, Any]] = {}
        self.newcomers: dict[str, dict[str, Any]] = {}  # option id -> M
        self.next: str | None = None  # the cursor of the next page of waiting posts

    def compose_body(self) -> Iterable[Widget]:
        yield Static("", id="queue-info", classes="screen-info")
        yield OptionList(id="queue-list")

    def on_mount(self) -> None:
        self.sub_title = f"Queue of {self.heading}"

    @property
    def listed(self) -> OptionList:
        return self.query_one("#queue-list", OptionList)

    def reload(self) -> None:
        self.load_queue()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_queue(self) -> None:
        self.show_queue(await self.rpc("queue", lab=self.lab, limit=PAGE))

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_more(self) -> None:
        if self.next:
            page = await self.rpc("queue", lab=self.lab, limit=PAGE, cursor=self.next)
            self.show_queue(page, more=True)

    def show_queue(self, data: dict[str, Any], more: bool = False) -> None:
        """Show a page of the queue: the first, or with `more` the next after those shown."""
        me = (getattr(self.app, "me", None) or {}).get("author")
        page = [o for o in data.get("objects") or [] if isinstance(o, dict)]
        newcomers = [n for n in data.get("newcomers") or [] if isinstance(n, dict)]
        shown = self.objects if more else {}
        self.objects = shown | {str(o["id"]): o for o in page if o.get("id")}
        objects = list(self.objects.values())
        total = data.get("total")
        total = total if isinstance(total, int) else len(objects)
        nxt = data.get("next")
        self.next = nxt if isinstance(nxt, str) and nxt else None
        self.newcomers = {}
        options = [Option(Text(f"Waiting posts ({len(objects)} of {total})",
                               style="bold underline"), disabled=True)]  # fmt: skip
        for oid, view in self.objects.items():
            options.append(Option(object_text(view, self.fmt.when(view.get("ts"))), id=oid))
        options.append(Option(Text(f"Newcomers ({len(newcomers)})", style="bold underline"),
                              disabled=True))  # fmt: skip
        for entry in newcomers:
            member = entry.get("member")
            if not isinstance(member, dict):
                continue
            key = f"newcomer:{member.get('member')}"
            self.newcomers[key] = member
            text = member_text(member, me, self.fmt)
            vouchers = [member_name(v, self.fmt) for v in entry.get("vouchers") or []]
            text.append("  vouched for by " + (", ".join(vouchers) or "nobody yet"),
                        style="italic")  # fmt: skip
            options.append(Option(text, id=key))
        keep = self.current
        self.listed.clear_options()
        self.listed.add_options(options)
        ids = [o.id for o in options]
        if keep in ids:
            self.listed.highlighted = ids.index(keep)
        elif self.objects or self.newcomers:
            self.listed.highlighted = 1 if self.objects else ids.index(next(iter(self.newcomers)))
        waiting = total + len(newcomers)
        info = f"{self.heading} — {len(objects) + len(newcomers)} of {waiting} waiting"
        if not waiting:
            info += " — nothing waits for the lab's approval."
        elif self.next:
            info += " — m: more"
        self.query_one("#queue-info", Static).update(info)
        self.refresh_bindings()

    @property
    def current(self) -> str | None:
        if self.listed.highlighted is None or self.listed.option_count == 0:
            return None
        return self.listed.get_option_at_index(self.listed.highlighted).id

    @on(OptionList.OptionHighlighted, "#queue-list")
    def _highlighted(self) -> None:
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        current = self.current
        if action in ("approve", "hide"):
            return current in self.objects or None
        if action == "vouch":
            return current in self.objects or current in self.newcomers or None
        if action == "more":
            return bool(self.next) or None
        return True

    def _object(self) -> dict[str, Any] | None:
        current = self.current
        if current not in self.objects:
            self.notify("Highlight a waiting post first", severity="warning")
            return None
        return self.objects[current]

    def action_more(self) -> None:
        self.load_more()

    def action_back(self) -> None:
        self.dismiss()

    def action_approve(self) -> None:
        if (view := self._object()) is not None:
            send(self, "approve", {"id": view["id"]}, "Approved: it shows in the lab now",
                 self.reload)  # fmt: skip

    def action_vouch(self) -> None:
        current = self.current
        if current in self.newcomers:
            member: dict[str, Any] | None = self.newcomers[current]
        elif current in self.objects:
            view = self.objects[current]
            member = {"member": view.get("member") or view.get("author"),
                      "name": view.get("author_name")}  # fmt: skip
        else:
            member = None
        if member is None or not member.get("member"):
            self.notify("Highlight a waiting post or a newcomer first", severity="warning")
            return
        send(self, "vouch", {"lab": self.lab, "member": member["member"]},
             f"You vouched for {member_name(member)}", self.reload)  # fmt: skip

    def action_hide(self) -> None:
        if (view := self._object()) is not None:
            what = f"the {view.get('kind', 'post')} by {who(view) or '?'}"
            ask_hide(self, str(view["id"]), what, self.lab, self.reload)

    def action_open(self) -> None:
        from tui.screens.project import ProjectScreen

        view = self.objects.get(self.current or "")
        if view is None:
            return
        target = view["id"] if view.get("kind") == "project" else view.get("target")
        if target:
            self.app.push_screen(ProjectScreen(str(target)))

    @on(OptionList.OptionSelected, "#queue-list")
    def _selected(self) -> None:
        self.action_open()

    def object_arrived(self, view: dict[str, Any]) -> None:
        if view.get("lab") == self.lab or view.get("kind") == "decision":
            self.reload()
