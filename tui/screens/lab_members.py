"""A lab's members (`lab_members`): stewards, members, suspended members, newcomers with
who vouches for them, and the pending proposals with their backing ("2 of 3").

The actions follow the caller's role: a member vouches for a newcomer; a steward admits,
proposes a steward, removes, suspends / unsuspends (remove and suspend ask a reason) and
endorses proposals. Each sends one decision; the list reloads after it."""

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

from tui.screens.base import PercolabScreen
from tui.screens.devices import ConfirmScreen
from tui.screens.moderate import ReasonForm, send
from tui.widgets.moderation import member_name, member_text

log = logging.getLogger(__name__)

SECTIONS = (("steward", "stewards", "Stewards"), ("member", "members", "Members"),
            ("suspended", "suspended", "Suspended"),
            ("newcomer", "newcomers", "Newcomers (waiting to be admitted)"))  # fmt: skip
# action -> (role needed, row kinds it applies to)
ACTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "vouch": ("member", ("newcomer",)),
    "admit": ("steward", ("newcomer",)),
    "make_steward": ("steward", ("member",)),
    "remove": ("steward", ("member", "steward")),
    "suspend": ("steward", ("member",)),
    "unsuspend": ("steward", ("suspended",)),
    "endorse": ("steward", ("proposal",)),
}


def proposal_text(proposal: dict[str, Any]) -> str:
    """"make Bob a steward", "remove Bob as steward", "rules: posts shown"."""
    act, subject = proposal.get("act"), member_name(proposal.get("subject"))
    if act == "admit":
        return f"make {subject} a steward"
    if act == "remove":
        return f"remove {subject} as steward"
    if act == "rules":
        rules = proposal.get("rules") or {}
        return "rules: " + ", ".join(f"{k} {v}" for k, v in rules.items())
    return str(act)


def backing_text(proposal: dict[str, Any]) -> str:
    return f"{proposal.get('backing', 0)} of {proposal.get('needed', '?')}"


class LabMembersScreen(PercolabScreen):
    """The members of ``lab`` (named ``heading``)."""

    BINDINGS = [
        Binding("escape", "back", "Back", id="members_back"),
        Binding("v", "vouch", "Vouch", id="members_vouch"),
        Binding("a", "admit", "Admit", id="members_admit"),
        Binding("e", "endorse", "Endorse", id="members_endorse"),
        Binding("S", "make_steward", "Make steward", id="members_steward"),
        Binding("x", "remove", "Remove", id="members_remove"),
        Binding("s", "suspend", "Suspend", id="members_suspend"),
        Binding("u", "unsuspend", "Unsuspend", id="members_unsuspend"),
    ]

    def __init__(self, lab: str, heading: str) -> None:
        super().__init__()
        self.lab, self.heading = lab, heading
        self.role: str | None = None
        self.rows: dict[str, tuple[str, dict[str, Any]]] = {}  # option id -> (kind, entry)

    def compose_body(self) -> Iterable[Widget]:
        yield Static("", id="lab-members-info", classes="screen-info")
        yield OptionList(id="lab-members")

    def on_mount(self) -> None:
        self.sub_title = f"Members of {self.heading}"

    @property
    def members(self) -> OptionList:
        return self.query_one("#lab-members", OptionList)

    def reload(self) -> None:
        self.load_members()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_members(self) -> None:
        self.show_members(await self.rpc("lab_members", lab=self.lab))

    def show_members(self, data: dict[str, Any]) -> None:
        self.role = data.get("role")
        me = (getattr(self.app, "me", None) or {}).get("author")
        options: list[Option] = []
        self.rows = {}

        def heading(text: str) -> None:
            options.append(Option(Text(text, style="bold underline"), disabled=True))

        stewards = {s.get("member") for s in data.get("stewards") or [] if isinstance(s, dict)}
        for kind, key, title in SECTIONS:
            entries = [e for e in data.get(key) or [] if isinstance(e, dict)]
            if kind == "member":  # the node lists stewards among the members too
                entries = [e for e in entries if e.get("member") not in stewards]
            if not entries and kind in ("suspended", "newcomer"):
                continue
            heading(f"{title} ({len(entries)})")
            for entry in entries:
                member = entry.get("member") if kind == "newcomer" else entry
                if not isinstance(member, dict):
                    continue
                oid = f"{kind}:{member.get('member')}"
                self.rows[oid] = (kind, member)
                text = member_text(member, me, self.fmt)
                if kind == "newcomer":
                    vouchers = [member_name(v, self.fmt) for v in entry.get("vouchers") or []]
                    text.append("  vouched for by " + (", ".join(vouchers) or "nobody yet"),
                                style="italic")  # fmt: skip
                options.append(Option(text, id=oid))
        proposals = [p for p in data.get("proposals") or [] if isinstance(p, dict)]
        if proposals:
            heading(f"Pending proposals ({len(proposals)})")
        for proposal in proposals:
            oid = f"proposal:{proposal.get('id')}"
            self.rows[oid] = ("proposal", proposal)
            text = Text(proposal_text(proposal), style="bold")
            text.append(f"  {backing_text(proposal)} stewards", style="yellow")
            text.append(f"  proposed by {member_name(proposal.get('by'), self.fmt)}",
                        style="dim")  # fmt: skip
            options.append(Option(text, id=oid))
        keep = self.current
        listed = self.members
        listed.clear_options()
        listed.add_options(options)
        ids = [o.id for o in options]
        if keep is not None and keep in ids:
            listed.highlighted = ids.index(keep)
        elif self.rows:
            listed.highlighted = ids.index(next(iter(self.rows)))
        self.query_one("#lab-members-info", Static).update(self._info(data))
        self.refresh_bindings()

    def _info(self, data: dict[str, Any]) -> str:
        rules = data.get("rules") or {}
        you = {"steward": "you are a steward", "member": "you are a member"}.get(
            str(self.role), "you are not a member")
        posts = "members only (others wait in the queue)" if rules.get("posts") == "queued" \
            else "anyone"  # fmt: skip
        return (f"{self.heading} — {you} — who can post: {posts} — a newcomer needs "
                f"{rules.get('admit_vouches', '?')} members' vouches")

    @property
    def current(self) -> str | None:
        listed = self.members
        if listed.highlighted is None or listed.option_count == 0:
            return None
        return listed.get_option_at_index(listed.highlighted).id

    def _row(self) -> tuple[str, dict[str, Any]] | None:
        current = self.current
        return self.rows.get(current) if current is not None else None

    @on(OptionList.OptionHighlighted, "#lab-members")
    def _highlighted(self) -> None:
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        needs = ACTIONS.get(action)
        if needs is None:
            return True
        role, kinds = needs
        if self.role is None or (role == "steward" and self.role != "steward"):
            return False  # not for this member's role: not in the footer
        row = self._row()
        return True if row is not None and row[0] in kinds else None

    def _member(self, kinds: tuple[str, ...]) -> dict[str, Any] | None:
        row = self._row()
        if row is None or row[0] not in kinds:
            self.notify("Highlight a member this applies to first", severity="warning")
            return None
        return row[1]

    def action_back(self) -> None:
        self.dismiss()

    def _decide(self, method: str, said: str, **params: Any) -> None:
        send(self, method, {"lab": self.lab, **params}, said, self.reload)

    def action_vouch(self) -> None:
        if (m := self._member(("newcomer",))) is not None:
            self._decide("vouch", f"You vouched for {member_name(m)}", member=m["member"])

    def action_admit(self) -> None:
        if (m := self._member(("newcomer",))) is not None:
            self._decide("lab_admit", f"{member_name(m)} admitted", member=m["member"])

    def action_make_steward(self) -> None:
        if (m := self._member(("member",))) is None:
            return
        name = member_name(m)

        def answered(yes: bool | None) -> None:
            if yes:
                self._decide("lab_admit", f"Proposed {name} as a steward", member=m["member"],
                             role="steward")  # fmt: skip

        self.app.push_screen(ConfirmScreen(
            f"Propose {name} as a steward of {self.heading}? It takes effect once a majority "
            "of the stewards back it.", "Propose"), answered)  # fmt: skip

    def _with_reason(self, method: str, verb: str, kinds: tuple[str, ...]) -> None:
        if (m := self._member(kinds)) is None:
            return
        kind = self._row()
        params: dict[str, Any] = {"lab": self.lab, "member": m["member"]}
        if method == "lab_remove" and kind is not None and kind[0] == "steward":
            params["role"] = "steward"  # a proposal: they stay a member
            verb = "Propose to remove as steward:"
        name = member_name(m)

        def done(result: Any) -> None:
            if result:
                self.notify(f"{verb} {name}")
                self.reload()

        self.app.push_screen(ReasonForm(method, params, title=f"{verb} {name}",
                                        context=f"in {self.heading}", submit=verb.split()[0]),
                             done)  # fmt: skip

    def action_remove(self) -> None:
        self._with_reason("lab_remove", "Remove", ("member", "steward"))

    def action_suspend(self) -> None:
        self._with_reason("suspend", "Suspend", ("member",))

    def action_unsuspend(self) -> None:
        if (m := self._member(("suspended",))) is not None:
            self._decide("unsuspend", f"{member_name(m)} is no longer suspended",
                         member=m["member"])  # fmt: skip

    def action_endorse(self) -> None:
        if (p := self._member(("proposal",))) is not None:
            send(self, "endorse", {"id": p["id"]}, f"You endorsed: {proposal_text(p)}",
                 self.reload)  # fmt: skip

    def object_arrived(self, view: dict[str, Any]) -> None:
        if view.get("kind") == "decision" and view.get("lab") == self.lab:
            self.reload()
