"""Devices: this member's devices (`device_list`), adding one by pairing (`device_add`), this
machine joining a member (`device_join`), revoking one (`device_revoke`, confirmed first).
The pairing itself runs in the node; its modal follows `pairing` pushes (docs/pairing.md)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, DataTable, Input, Label, Static

from tui.client import NodeUnavailable, RpcError
from tui.messages import PairingPushed
from tui.screens.base import PercolabScreen, rpc_client
from tui.widgets.pairing import PairingView

log = logging.getLogger(__name__)
RUNNING = ("waiting", "sas")


class DevicesScreen(PercolabScreen):
    TITLE = "Devices"
    BINDINGS = [
        Binding("a", "add", "Add a device", id="devices_add"),
        Binding("r", "revoke", "Revoke", id="devices_revoke"),
        Binding("j", "join", "Join a member", id="devices_join"),
        Binding("escape", "back", "Back", id="devices_back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.devices: list[dict[str, Any]] = []

    def compose_body(self) -> Iterable[Widget]:
        yield Static("Your member's devices. a: add a device (type the code it shows); "
                     "r: revoke the selected one; j: make this machine a new device of an "
                     "existing member.", classes="screen-info")  # fmt: skip
        table: DataTable[str] = DataTable(id="devices-table", cursor_type="row")
        table.add_columns("Name", "Fingerprint", "Certified", "Revoked")
        yield table

    def reload(self) -> None:
        self.load_devices()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_devices(self) -> None:
        try:
            devices = await rpc_client(self).call("device_list")
        except (RpcError, NodeUnavailable) as exc:
            log.info("device_list: %s", exc)
            devices = []
        self.devices = list(devices or [])
        table = self.query_one("#devices-table", DataTable)
        table.clear()
        for d in self.devices:
            name = f"{d['name']} (this machine)" if d.get("this") else str(d["name"])
            revoked = ("since " + self.fmt.volatile(str(d["revoked_since"]))
                       if d.get("revoked_since") is not None else "no")  # fmt: skip
            table.add_row(name, self.fmt.volatile(str(d["fingerprint"])),
                          self.fmt.volatile(str(d["certified"])), revoked, key=d["key"])

    def selected(self) -> dict[str, Any] | None:
        table = self.query_one("#devices-table", DataTable)
        if not self.devices or table.cursor_row < 0 or table.cursor_row >= len(self.devices):
            return None
        return self.devices[table.cursor_row]

    def _after_pairing(self, result: Any) -> None:
        self.reload()
        if isinstance(result, dict) and result.get("state") == "done":
            self.papp.refresh_identity()

    def action_add(self) -> None:
        self.app.push_screen(PairingScreen("add"), self._after_pairing)

    def action_join(self) -> None:
        self.app.push_screen(PairingScreen("join"), self._after_pairing)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_revoke(self) -> None:
        device = self.selected()
        if device is None:
            self.notify("Select a device first", severity="warning")
            return

        def answered(yes: Any) -> None:
            if yes:
                self.revoke(device)

        text = (f"Revoke the device {device['name']!r}?\nWhat it signs from now on no longer "
                "counts as yours. This cannot be undone.")  # fmt: skip
        self.app.push_screen(ConfirmScreen(text, "Revoke"), answered)

    @work(group="revoke", exit_on_error=False)
    async def revoke(self, device: dict[str, Any]) -> None:
        try:
            await self.rpc("device_revoke", device=device["key"], force=bool(device.get("this")))
        except Exception as exc:  # CallFailed: already notified
            log.info("revoke: %s", exc)
            return
        self.notify(f"Device {device['name']!r} revoked", title="Devices")
        self.reload()


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; dismisses with True for yes."""

    BINDINGS = [Binding("escape", "no", "Cancel", id="confirm_cancel")]

    def __init__(self, text: str, yes_label: str = "Yes") -> None:
        super().__init__(classes="form-screen")
        self.text, self.yes_label = text, yes_label

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="form"):
            yield Static(self.text, classes="form-context")
            with Horizontal(classes="form-buttons"):
                yield Button(self.yes_label, variant="error", id="confirm-yes")
                yield Button("Cancel", id="confirm-no")

    @on(Button.Pressed, "#confirm-yes")
    def action_yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#confirm-no")
    def action_no(self) -> None:
        self.dismiss(False)


class PairingScreen(ModalScreen[Any]):
    """One pairing: `join` shows this machine's code; `add` asks for the other's code first.
    Dismisses with the last pairing state. ``params`` go with `device_join`: with `member`
    (a new label on a shared machine, and the new key's `passphrase`), the machine joins
    into that member's seat, and the screen closes by itself once paired."""

    BINDINGS = [Binding("escape", "close", "Cancel / close", id="pairing_close")]
    AUTO_FOCUS = "#pair-input"

    def __init__(self, role: str, params: dict[str, Any] | None = None) -> None:
        super().__init__(classes="form-screen")
        self.role = role
        self.params = dict(params or {})
        self.seat = self.params.get("member")  # joining into this new seat
        self.closed = False
        self.state: dict[str, Any] = {"state": "idle"}
        self.started = False

    def compose(self) -> ComposeResult:
        title = ("Add a device" if self.role == "add" else "Pair this machine with yours"
                 if self.seat else "Join an existing member")  # fmt: skip
        with VerticalScroll(classes="form pair-form"):
            yield Label(title, classes="form-title")
            if self.role == "add":
                yield Static("Type the code the new device shows (or paste its ticket).",
                             classes="form-context")  # fmt: skip
                yield Input(placeholder="Code, e.g. 7K3QD-M9X2A", id="pair-input")
            elif self.seat:
                yield Static("This machine becomes one of your devices, for you only (you sign "
                             f"in here as {self.seat!r}): type the code below on a device of "
                             "yours.", classes="form-context")  # fmt: skip
            else:
                yield Static("This machine becomes a device of an existing member: type the "
                             "code below on one of its devices.", classes="form-context")
            yield PairingView(id="pair-view")
            yield Static("", classes="form-error", id="pair-error")
            with Horizontal(classes="form-buttons"):
                if self.role == "add":
                    yield Button("Pair", variant="primary", id="pair-start")
                yield Button("Cancel", id="pair-close")

    def on_mount(self) -> None:
        if self.role == "join":
            self.start(self.params)

    @on(Input.Submitted, "#pair-input")
    @on(Button.Pressed, "#pair-start")
    def _submit(self) -> None:
        text = self.query_one("#pair-input", Input).value.strip()
        if not text:
            self.show_error("Type the code first.")
            return
        self.start({"code": text})

    def show_error(self, text: str) -> None:
        self.query_one("#pair-error", Static).update(text)

    @work(exclusive=True, group="pairing", exit_on_error=False)
    async def start(self, params: dict[str, Any]) -> None:
        method = "device_add" if self.role == "add" else "device_join"
        self.show_error("")
        try:
            st = await rpc_client(self).call(method, **params)
        except RpcError as exc:
            self.show_error(exc.message or exc.code)
            return
        except NodeUnavailable as exc:
            self.show_error(f"Node unavailable: {exc}")
            return
        self.started = True
        if self.role == "add":
            self.query_one("#pair-input", Input).disabled = True
            self.query_one("#pair-start", Button).disabled = True
        self.show_state(st)

    def show_state(self, st: dict[str, Any]) -> None:
        self.state = st
        self.query_one(PairingView).show(st)
        if st.get("state") not in RUNNING:
            self.query_one("#pair-close", Button).label = "Close"
        if self.seat and st.get("state") == "done" and not self.closed:
            self.closed = True  # (the answer to pairing_confirm and a push may both say so)
            self.dismiss(st)  # the member signs in (tui/screens/members.py)
        if st.get("state") == "sas" and st.get("answered") is None:
            self.query_one("#sas-yes", Button).focus()

    def on_pairing_pushed(self, message: PairingPushed) -> None:
        if self.started and message.data.get("role") == self.role:
            self.show_state(message.data)

    @on(Button.Pressed, "#sas-yes")
    def _yes(self) -> None:
        self.confirm(True)

    @on(Button.Pressed, "#sas-no")
    def _no(self) -> None:
        self.confirm(False)

    @work(group="confirm", exit_on_error=False)
    async def confirm(self, accept: bool) -> None:
        try:
            st = await rpc_client(self).call("pairing_confirm", accept=accept)
        except (RpcError, NodeUnavailable) as exc:
            log.info("pairing_confirm: %s", exc)
            return
        self.show_state(st)

    @on(Button.Pressed, "#pair-close")
    def action_close(self) -> None:
        self.close_pairing()

    @work(group="close", exit_on_error=False)
    async def close_pairing(self) -> None:
        if self.started and self.state.get("state") in RUNNING:
            try:
                self.state = await rpc_client(self).call("pairing_cancel")
            except (RpcError, NodeUnavailable) as exc:
                log.info("pairing_cancel: %s", exc)
        self.dismiss(self.state)
