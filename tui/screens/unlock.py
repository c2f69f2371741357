"""The unlock screen: the node's member key is encrypted and not unlocked yet (`status` says
`locked`, docs/keys.md). A modal over the reading screens: the passphrase goes to the node's
`unlock` RPC; a wrong one is said here and may be typed again. Escape leaves the app."""

from __future__ import annotations

import logging

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


class UnlockScreen(ModalScreen[bool]):
    """Dismisses with True once the node has unlocked the key."""

    BINDINGS = [
        Binding("escape", "leave", "Quit", id="unlock_quit"),
    ]
    AUTO_FOCUS = "#passphrase"

    def __init__(self) -> None:
        super().__init__(classes="form-screen")
        self._busy = False  # an unlock is under way (a KDF run on the node): Enter waits

    def compose(self) -> ComposeResult:
        with Vertical(classes="form"):
            yield Label("Unlock your member key", classes="form-title")
            yield Static(
                "Your signing key is encrypted on this machine. Type its passphrase to post,\n"
                "comment and tag; escape quits.",
                classes="form-context",
            )
            yield Input(placeholder="Passphrase", password=True, id="passphrase")
            yield Static("", classes="form-error", id="unlock-error")
            with Horizontal(classes="form-buttons"):
                yield Button("Unlock", variant="primary", id="unlock")
                yield Button("Quit", id="leave")

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
        self.app.exit()

    @work(exclusive=True, group="unlock")
    async def unlock(self, text: str) -> None:
        """The field stays focused and editable meanwhile (keys typed ahead land there)."""
        field = self.query_one("#passphrase", Input)
        try:
            await rpc_client(self).call("unlock", passphrase=text)
        except RpcError as exc:
            log.info("unlock failed: %s", exc.code)
            field.value = ""
            self.show_error(WRONG_PASSPHRASE if exc.code == "wrong_passphrase"
                            else exc.message or exc.code)  # fmt: skip
            return
        except NodeUnavailable as exc:
            self.show_error(f"Node unavailable: {exc}")
            return
        finally:
            self._busy = False
        self.dismiss(True)
