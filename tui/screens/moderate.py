"""Moderation prompts shared by the lab screens and the project screen: a reason for an act
that takes one (remove, suspend, hide for the lab), a choice between two ways, and the hide /
mute flows (each confirms before anything is sent)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from tui.screens.base import CallFailed, rpc_call
from tui.screens.devices import ConfirmScreen
from tui.screens.forms import FormScreen
from tui.widgets.moderation import role_in

log = logging.getLogger(__name__)

Done = Callable[[], object]


class ReasonForm(FormScreen):
    """One act of the lab with an optional reason (public in the lab's log): ``method`` is
    called with ``fixed`` and `reason`; dismisses with the decision's id."""

    def __init__(self, method: str, fixed: dict[str, Any], *, title: str, context: str,
                 submit: str) -> None:  # fmt: skip
        super().__init__(fixed, context)
        self.METHOD, self.TITLE_TEXT, self.SUBMIT_LABEL = method, title, submit

    def fields(self) -> Iterable[Widget]:
        yield Input(placeholder="Reason (optional; public in the lab's log)", id="reason")

    def params(self) -> dict[str, Any]:
        return {"reason": self.value("reason") or None}


class ChoiceScreen(ModalScreen[str | None]):
    """A question with a few answers (an OptionList); dismisses with the chosen id, or None
    on escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="choice_cancel")]
    AUTO_FOCUS = "#choices"

    def __init__(self, question: str, choices: list[tuple[str, str]]) -> None:
        super().__init__(classes="form-screen")
        self.question, self.choices = question, choices

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="form"):
            yield Static(self.question, classes="form-title")
            yield OptionList(*[Option(text, id=key) for key, text in self.choices],
                             id="choices")  # fmt: skip
            yield Static("↑/↓ and enter to choose, esc to cancel", classes="form-hint")

    @on(OptionList.OptionSelected, "#choices")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option_id)

    def action_cancel(self) -> None:
        self.dismiss(None)


def send(screen: Screen[Any], method: str, params: dict[str, Any], said: str,
         done: Done | None = None) -> None:  # fmt: skip
    """Call ``method`` in a worker; on success notify ``said`` and call ``done``."""

    async def call() -> None:
        try:
            await rpc_call(screen, method, **params)
        except CallFailed:  # already notified
            return
        screen.notify(said)
        if done is not None:
            done()

    screen.run_worker(call(), group="moderate", exit_on_error=False)


def ask_hide(screen: Screen[Any], obj_id: str, what: str, lab: str | None,
             done: Done | None = None) -> None:  # fmt: skip
    """Hide ``obj_id`` (described as ``what``): a steward of ``lab`` chooses for the lab
    (`lab_hide`, with a reason) or on this machine (`hide`); anyone else, this machine only.
    Each way asks first."""
    app = screen.app

    def local(yes: bool | None) -> None:
        if yes:
            send(screen, "hide", {"id": obj_id}, f"Hidden on this machine: {what}", done)

    def confirm_local() -> None:
        app.push_screen(ConfirmScreen(
            f"Hide {what} on this machine? Only this machine stops showing it; nobody "
            "else is told.", "Hide here"), local)  # fmt: skip

    def for_lab(result: Any) -> None:
        if result:
            screen.notify(f"Hidden for the lab: {what}")
            if done is not None:
                done()

    def chosen(choice: str | None) -> None:
        if choice == "lab":
            app.push_screen(ReasonForm(
                "lab_hide", {"id": obj_id}, title="Hide for the lab",
                context=f"Hide {what} for everyone in the lab: a decision of the lab, "
                "public in its log with your name and the reason.",
                submit="Hide for the lab"), for_lab)  # fmt: skip
        elif choice == "node":
            confirm_local()

    if role_in(app, lab) != "steward":
        confirm_local()
        return
    app.push_screen(ChoiceScreen(f"Hide {what}", [
        ("lab", "For the lab (a steward's decision, public in the lab's log)"),
        ("node", "On this machine only"),
    ]), chosen)  # fmt: skip


def ask_mute(screen: Screen[Any], member: str, name: str, done: Done | None = None) -> None:
    """Mute ``member`` (`mute`: everything they post is left out on this machine)."""

    def answered(yes: bool | None) -> None:
        if yes:
            send(screen, "mute", {"member": member}, f"{name} muted on this machine", done)

    screen.app.push_screen(ConfirmScreen(
        f"Mute {name}? What they post is no longer shown on this machine (nobody else is "
        "told; `percolab unmute` undoes it).", "Mute"), answered)  # fmt: skip
