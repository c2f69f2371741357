"""The unlock screen: a member key is encrypted and not unlocked yet. A modal whose passphrase
goes to the node:

- without ``member``: the node's own key (`status` says `locked`, docs/keys.md) → `unlock`;
  escape leaves the app;
- with ``member`` (a `seats` entry, on a shared machine): that member signs in →
  `seat_open {member: label, passphrase}`; it dismisses with seat_open's answer (the seat
  token…), escape goes back to the member picker.

A wrong passphrase is said here and may be typed again."""

from __future__ import annotations

import logging
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from tui.client import NodeUnavailable, RpcError
from tui.screens.base import rpc_client

log = logging.getLogger(__name__)

WRONG_PASSPHRASE = "Wrong passphrase; try again."
TOO_MANY = "Too many wrong passphrases; wait a moment before trying again."


class UnlockScreen(ModalScreen[Any]):
    """Dismisses with True once the node has unlocked its key; for a ``member``, with the
    answer of `seat_open` (None when the member goes back)."""

    BINDINGS = [
        Binding("escape", "leave", "Quit", id="unlock_quit"),
    ]
    AUTO_FOCUS = "#passphrase"

    def __init__(self, member: dict[str, Any] | None = None) -> None:
        super().__init__(classes="form-screen")
        self.member = member
        self._busy = False  # an unlock is under way (a KDF run on the node): Enter waits

    def compose(self) -> ComposeResult:
        with Vertical(classes="form"):
            if self.member is None:
                yield Label("Unlock your member key", classes="form-title")
                yield Static(
                    "Your signing key is encrypted on this machine. Type its passphrase to "
                    "post,\ncomment and tag; escape quits.",
                    classes="form-context",
                )
            else:
                name = str(self.member.get("name") or self.member.get("label", ""))
                yield Label(f"Sign in as {name}", classes="form-title")
                yield Static(f"Type {name}'s passphrase; escape goes back to the members.",
                             classes="form-context")  # fmt: skip
            yield Input(placeholder="Passphrase", password=True, id="passphrase")
            yield Static("", classes="form-error", id="unlock-error")
            with Horizontal(classes="form-buttons"):
                yield Button("Unlock" if self.member is None else "Sign in", variant="primary",
                             id="unlock")  # fmt: skip
                yield Button("Quit" if self.member is None else "Back", id="leave")

    def show_error(self, text: str) -> None:
        self.query_one("#unlock-error", Static).update(text)

    @on(Input.Submitted, "#passphrase")
    @on(Button.Pressed, "#unlock")
    def _submit(self) -> None:
        text = self.query_one("#passphrase", Input).value
        if self._busy:
            return
        if not text:
            self.show_error("Type the passphrase first.")
            return
        self.show_error("Unlocking…")
        self._busy = True
        self.unlock(text)

    @on(Button.Pressed, "#leave")
    def _pressed_leave(self) -> None:
        self.action_leave()

    def action_leave(self) -> None:
        if self.member is None:
            self.app.exit()
        else:
            self.dismiss(None)

    @work(exclusive=True, group="unlock")
    async def unlock(self, text: str) -> None:
        """The field stays focused and editable meanwhile (keys typed ahead land there)."""
        field = self.query_one("#passphrase", Input)
        try:
            if self.member is None:
                result: Any = await rpc_client(self).call("unlock", passphrase=text)
                result = True
            else:
                result = await rpc_client(self).call(
                    "seat_open", member=str(self.member["label"]), passphrase=text)
        except RpcError as exc:
            log.info("unlock failed: %s", exc.code)
            field.value = ""
            self.show_error(error_text(exc))
            return
        except NodeUnavailable as exc:
            self.show_error(f"Node unavailable: {exc}")
            return
        finally:
            self._busy = False
        self.dismiss(result)


def error_text(exc: RpcError) -> str:
    """What to say for a refused unlock / seat_open."""
    if exc.code == "wrong_passphrase":
        return WRONG_PASSPHRASE
    if exc.code == "too_many_attempts":
        return exc.message or TOO_MANY
    return exc.message or exc.code
