"""Who is using Percolab? The members of a shared machine (docs/rpc.md "A shared machine").

``MemberPickerScreen`` lists the node's `seats` (name, label, short fingerprint) and
"Someone new…". Choosing an encrypted member asks its passphrase (UnlockScreen with the
member), an unencrypted one is signed in at once (`seat_open`); someone new fills
``AddMemberForm`` (`seat_add`, then `seat_open`). The picker dismisses with `seat_open`'s
answer (``{"seat", "label", "member", "name"}``), or None on escape. It hides the screens
behind it: they show the previous member's data until the app reloads them.

Someone who already uses Percolab (on their laptop) ticks "I already use Percolab": the form
then pairs this machine as one of their devices into a new seat (PairingScreen, `device_join`
with `member` and the new ring's passphrase), then signs them in.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from tui.client import NodeUnavailable, RpcError
from tui.screens.base import rpc_client
from tui.screens.devices import PairingScreen
from tui.screens.forms import FormScreen
from tui.screens.unlock import UnlockScreen, error_text

log = logging.getLogger(__name__)

NEW = "+new"  # the "Someone new…" option (a label starts with a letter or digit)
LABEL_MAX = 32


def short_fingerprint(fingerprint: str) -> str:
    """The first two groups of a key's fingerprint ("abcd-efgh")."""
    return "-".join(fingerprint.split("-")[:2])


def slug(name: str) -> str:
    """A label from a profile name: lowercase letters, digits, "-" (what the node takes);
    accents dropped ("Zoé" -> "zoe")."""
    plain = unicodedata.normalize("NFKD", name.casefold())
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    text = re.sub(r"[^a-z0-9]+", "-", plain).strip("-_")
    return text[:LABEL_MAX].rstrip("-")


class MemberPickerScreen(ModalScreen[dict[str, Any] | None]):
    """The members of this machine (``seats``, as `seats` answers) and someone new."""

    BINDINGS = [Binding("escape", "leave", "Quit", id="picker_quit")]
    AUTO_FOCUS = "#members"

    def __init__(self, seats: list[dict[str, Any]], *, redact: bool = False) -> None:
        super().__init__(classes="form-screen", id="member-picker")
        self.seats = {str(s["label"]): s for s in seats if s.get("label")}
        self.redact = redact
        self._busy = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="form"):
            yield Label("Who is using Percolab?", classes="form-title")
            yield Static("Choose yourself; your follows and what you have read are yours. "
                         "Escape quits.", classes="form-context")  # fmt: skip
            yield OptionList(*self._options(), id="members")
            yield Static("", classes="form-error", id="picker-error")

    def _options(self) -> Iterable[Option]:
        for label, seat in self.seats.items():
            name = escape(str(seat.get("name") or label))
            fingerprint = short_fingerprint(str(seat.get("fingerprint") or ""))
            if self.redact:
                fingerprint = "··"
            lock = " 🔒" if seat.get("encrypted") else ""
            yield Option(f"[b]{name}[/b]  [dim]{escape(label)} · {fingerprint}{lock}[/dim]",
                         id=label)  # fmt: skip
        yield Option("Someone new…", id=NEW)

    def show_error(self, text: str) -> None:
        self.query_one("#picker-error", Static).update(text)

    def action_leave(self) -> None:
        self.dismiss(None)

    @on(OptionList.OptionSelected, "#members")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if self._busy or event.option_id is None:
            return
        self.show_error("")
        if event.option_id == NEW:
            self.app.push_screen(AddMemberForm(), self._signed_in)
            return
        seat = self.seats[event.option_id]
        if seat.get("encrypted"):
            self.app.push_screen(UnlockScreen(member=seat), self._signed_in)
        else:
            self._busy = True
            self.open_seat(event.option_id)

    def _signed_in(self, result: Any) -> None:
        if isinstance(result, dict) and result.get("seat"):
            self.dismiss(result)

    @work(exclusive=True, group="seat")
    async def open_seat(self, label: str) -> None:
        """An unencrypted member: no passphrase to ask."""
        try:
            result = await rpc_client(self).call("seat_open", member=label)
        except RpcError as exc:
            self.show_error(error_text(exc))
            return
        except NodeUnavailable as exc:
            self.show_error(f"Node unavailable: {exc}")
            return
        finally:
            self._busy = False
        self._signed_in(result)


class AddMemberForm(FormScreen):
    """A new member of this machine: `seat_add` (a new key in its own seat), or, for someone
    with an identity elsewhere, a pairing into a new seat; then `seat_open`; dismisses with
    seat_open's answer."""

    TITLE_TEXT = "Someone new on this machine"
    METHOD = "seat_add"
    SUBMIT_LABEL = "Add me"
    ENTER_SUBMITS = False

    def __init__(self) -> None:
        super().__init__()
        self._added: str | None = None  # the label added, when seat_open then failed

    def fields(self) -> Iterable[Widget]:
        yield Checkbox("I already use Percolab: pair this machine with my devices",
                       id="existing")  # fmt: skip
        yield Input(placeholder="Your name (others see it)", id="name")
        yield Input(placeholder="Short local label (default: from the name)", id="label")
        yield Label("A passphrase encrypts your key on this machine; it is asked each time "
                    "you sign in here.", classes="form-hint")  # fmt: skip
        yield Input(placeholder="Passphrase", password=True, id="passphrase")
        yield Input(placeholder="Repeat the passphrase", password=True, id="passphrase2")
        yield Checkbox("No passphrase (anyone at this machine can act as me)",
                       id="unencrypted")  # fmt: skip

    def existing(self) -> bool:
        return self.query_one("#existing", Checkbox).value

    def params(self) -> dict[str, Any]:
        name = self.value("name")
        if not name and not self.existing():
            raise ValueError("Your name is required")
        label = self.value("label") or slug(name)
        if not label:
            raise ValueError("Choose a label: lowercase letters, digits, - or _")
        if self.query_one("#unencrypted", Checkbox).value:
            return {"label": label, "name": name, "unencrypted": True}
        first = self.query_one("#passphrase", Input).value  # as typed: spaces count
        if not first:
            raise ValueError("Choose a passphrase (or tick “no passphrase”)")
        if self.query_one("#passphrase2", Input).value != first:
            raise ValueError("The two passphrases differ; type them again")
        return {"label": label, "name": name, "passphrase": first}

    def input_submitted(self, field: Input) -> None:
        """Enter goes on to the next field; in the last one it submits."""
        if field.id == "passphrase2" or (field.id == "label" and self.query_one(
                "#unencrypted", Checkbox).value):  # fmt: skip
            self.action_submit()
        else:
            self.focus_next()

    @on(Checkbox.Changed, "#existing")
    def _existing_changed(self, event: Checkbox.Changed) -> None:
        """Their name comes with their identity; the label is this machine's."""
        name = self.query_one("#name", Input)
        name.placeholder = ("Your name (only to make the label)" if event.value
                            else "Your name (others see it)")  # fmt: skip
        self.query_one("#submit", Button).label = (
            "Pair this machine" if event.value else self.SUBMIT_LABEL)

    @on(Checkbox.Changed, "#unencrypted")
    def _unencrypted_changed(self, event: Checkbox.Changed) -> None:
        for field in self.query("#passphrase, #passphrase2").results(Input):
            field.disabled = event.value
            if event.value:
                field.value = ""

    @work(exclusive=True, group="form")
    async def send(self, params: dict[str, Any]) -> None:
        if self.existing() and self._added != params["label"]:
            self.pair(params)
        else:
            await self.add(params)

    def pair(self, params: dict[str, Any]) -> None:
        """This machine joins the member into the seat `label`; signed in once paired."""
        join = {"member": params["label"], "passphrase": params.get("passphrase"),
                "unencrypted": params.get("unencrypted")}  # fmt: skip

        def ended(st: Any) -> None:
            if isinstance(st, dict) and st.get("state") == "done":
                self._added = params["label"]
                self.notify("This machine is now one of your devices", title="Paired")
                self.send(params)  # seat_open only
            elif isinstance(st, dict) and st.get("state") == "failed":
                self.show_error(f"Pairing failed: {st.get('reason', '')}.")

        self.app.push_screen(PairingScreen("join", {k: v for k, v in join.items()
                                                    if v is not None}), ended)  # fmt: skip

    async def add(self, params: dict[str, Any]) -> None:
        client = rpc_client(self)
        try:
            if self._added != params["label"]:
                await client.call("seat_add", **params)
                self._added = params["label"]
            result = await client.call("seat_open", member=params["label"],
                                       passphrase=params.get("passphrase"))  # fmt: skip
        except RpcError as exc:
            self.show_error(self.node_error(exc))
            return
        except NodeUnavailable as exc:
            self.show_error(f"Node unavailable: {exc}")
            return
        self.dismiss(result)

    def node_error(self, exc: RpcError) -> str:
        if exc.code == "label_taken":
            return "That label is taken on this machine; choose another."
        if exc.code == "bad_label":
            return ("A label is 1-32 lowercase letters, digits, - or _, starting with a "
                    "letter or digit.")  # fmt: skip
        return super().node_error(exc)
