"""A lab's rules (from `lab_members`): who can post, who can reply, how many members'
vouches admit a newcomer; the pending rules proposals with their backing. A steward proposes
a change (`lab_rules`, only what changed) and endorses the others' proposals."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from tui.screens.base import PercolabScreen
from tui.screens.forms import FormScreen
from tui.screens.lab_members import backing_text, proposal_text
from tui.screens.moderate import send
from tui.widgets.moderation import member_name

log = logging.getLogger(__name__)

WHO = {"queued": "members only (others wait in the queue)", "shown": "anyone"}


class RulesForm(FormScreen):
    """Propose new rules for ``lab``; sends the fields that differ from ``rules``."""

    TITLE_TEXT = "Propose new rules"
    METHOD = "lab_rules"
    SUBMIT_LABEL = "Propose"

    def __init__(self, lab: str, rules: dict[str, Any], context: str = "") -> None:
        super().__init__({"lab": lab}, context)
        self.rules = dict(rules)

    def fields(self) -> Iterable[Widget]:
        choices = [(text, value) for value, text in WHO.items()]
        yield Label("Who can post projects?", classes="form-label")
        yield Select(choices, value=str(self.rules.get("posts") or "queued"),
                     allow_blank=False, id="posts")  # fmt: skip
        yield Label("Who can reply (comments, tags, pledges…)?", classes="form-label")
        yield Select(choices, value=str(self.rules.get("replies") or "shown"),
                     allow_blank=False, id="replies")  # fmt: skip
        yield Label("Members' vouches that admit a newcomer", classes="form-label")
        yield Input(str(self.rules.get("admit_vouches") or 2), id="admit_vouches",
                    type="integer")  # fmt: skip

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("posts", "replies"):
            if self.value(name) != self.rules.get(name):
                out[name] = self.value(name)
        text = self.value("admit_vouches")
        if not text.isdigit() or int(text) < 1:
            raise ValueError("The vouches needed: a whole number, 1 or more")
        if int(text) != self.rules.get("admit_vouches"):
            out["admit_vouches"] = int(text)
        if not out:
            raise ValueError("Nothing changes: these are the rules already")
        return out


class LabRulesScreen(PercolabScreen):
    """The rules of ``lab`` (named ``heading``)."""

    BINDINGS = [
        Binding("escape", "back", "Back", id="rules_back"),
        Binding("c", "propose", "Propose a change", id="rules_propose"),
        Binding("e", "endorse", "Endorse", id="rules_endorse"),
    ]

    def __init__(self, lab: str, heading: str) -> None:
        super().__init__()
        self.lab, self.heading = lab, heading
        self.role: str | None = None
        self.rules: dict[str, Any] = {}
        self.proposals: dict[str, dict[str, Any]] = {}

    def compose_body(self) -> Iterable[Widget]:
        yield Static("", id="rules-text", classes="screen-info")
        yield Static("Pending rules proposals", classes="section-heading")
        yield OptionList(id="rules-proposals")

    def on_mount(self) -> None:
        self.sub_title = f"Rules of {self.heading}"

    def reload(self) -> None:
        self.load_rules()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_rules(self) -> None:
        data = await self.rpc("lab_members", lab=self.lab)
        self.role = data.get("role")
        self.rules = dict(data.get("rules") or {})
        rules = self.rules
        lines = [
            f"[b]Who can post:[/b] {WHO.get(str(rules.get('posts')), rules.get('posts'))}",
            f"[b]Who can reply:[/b] {WHO.get(str(rules.get('replies')), rules.get('replies'))}",
            f"[b]A newcomer is admitted by[/b] {rules.get('admit_vouches', '?')} members' "
            "vouches (or a steward's)",
            "Stewards change the rules by proposal: a majority of the stewards must back it.",
        ]
        self.query_one("#rules-text", Static).update("\n".join(lines))
        proposals = [p for p in data.get("proposals") or []
                     if isinstance(p, dict) and p.get("act") == "rules"]  # fmt: skip
        self.proposals = {str(p["id"]): p for p in proposals}
        listed = self.query_one("#rules-proposals", OptionList)
        listed.clear_options()
        for pid, proposal in self.proposals.items():
            text = Text(proposal_text(proposal), style="bold")
            text.append(f"  {backing_text(proposal)} stewards", style="yellow")
            text.append(f"  proposed by {member_name(proposal.get('by'), self.fmt)}",
                        style="dim")  # fmt: skip
            listed.add_option(Option(text, id=pid))
        if not proposals:
            listed.add_option(Option(Text("None.", style="dim"), disabled=True))
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("propose", "endorse"):
            if self.role != "steward":
                return False
            if action == "endorse":
                return self._current() is not None or None
        return True

    def _current(self) -> dict[str, Any] | None:
        listed = self.query_one("#rules-proposals", OptionList)
        if listed.highlighted is None or listed.option_count == 0:
            return None
        return self.proposals.get(listed.get_option_at_index(listed.highlighted).id or "")

    @on(OptionList.OptionHighlighted, "#rules-proposals")
    def _highlighted(self) -> None:
        self.refresh_bindings()

    def action_propose(self) -> None:
        def done(result: Any) -> None:
            if result:
                self.notify("Rules proposed")
                self.reload()

        self.app.push_screen(RulesForm(self.lab, self.rules, context=f"for {self.heading}"),
                             done)  # fmt: skip

    def action_endorse(self) -> None:
        proposal = self._current()
        if proposal is None:
            self.notify("Highlight a proposal first", severity="warning")
            return
        send(self, "endorse", {"id": proposal["id"]},
             f"You endorsed: {proposal_text(proposal)}", self.reload)  # fmt: skip

    def action_back(self) -> None:
        self.dismiss()

    def object_arrived(self, view: dict[str, Any]) -> None:
        if view.get("kind") == "decision" and view.get("lab") == self.lab:
            self.reload()
