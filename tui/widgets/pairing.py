"""What a pairing shows (docs/pairing.md, "Using it"): the code and its QR (B), the numbers
to compare, large (both sides), and the outcome."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Digits, Static

STATE_TEXT = {
    "waiting": "Waiting for the other device…",
    "sas": "Do both screens show these numbers?",
}


class PairingView(Vertical):
    """Updated from ``pairing_status`` / ``pairing`` pushes with ``show(state)``."""

    def compose(self) -> ComposeResult:
        yield Static("", id="pair-code", classes="pair-code")
        yield Static("", id="pair-qr", classes="pair-qr")
        yield Static("", id="pair-state", classes="pair-state")
        with Horizontal(id="pair-sas-row", classes="pair-sas-row"):
            yield Button("Yes, the same", variant="success", id="sas-yes")
            yield Digits("", id="pair-sas", classes="pair-sas")
            yield Button("No, different", variant="error", id="sas-no")

    def on_mount(self) -> None:
        self.query_one("#pair-sas-row").display = False

    def show(self, st: dict[str, Any]) -> None:
        state = str(st.get("state", "idle"))
        code = self.query_one("#pair-code", Static)
        qr = self.query_one("#pair-qr", Static)
        running = state in ("waiting", "sas")
        if st.get("role") == "join" and running and st.get("code"):
            code.update(Text.assemble("Pairing code: ", (str(st["code"]), "bold"),
                                      "\nOn a device of your member: Profile → Devices → "
                                      "Add a device, and type it (or `percolab device add "
                                      "CODE`)."))  # fmt: skip
            qr.update(Text("\n".join(st.get("qr") or []), no_wrap=True, overflow="crop"))
            qr.display = state == "waiting"
        elif st.get("role") == "add" and running:
            code.update(Text.assemble("Pairing with the device showing ",
                                      (str(st.get("code", "")), "bold")))  # fmt: skip
            qr.display = False
        else:
            code.update("")
            qr.display = False
        row = self.query_one("#pair-sas-row")
        asking = state == "sas" and st.get("answered") is None
        row.display = state == "sas"
        for button in self.query(Button):
            button.disabled = not asking
        if state == "sas":
            self.query_one("#pair-sas", Digits).update(str(st.get("sas", "")))
        self.query_one("#pair-state", Static).update(self._state_text(st))

    @staticmethod
    def _state_text(st: dict[str, Any]) -> str:
        state = st.get("state")
        if state == "sas" and st.get("answered") is not None:
            return "Waiting for the other device…" if st["answered"] else "Refused."
        if state == "done":
            if st.get("role") == "join":
                return f"Paired: this machine is now a device of member {st.get('member')}."
            return f"Paired: device {st.get('device')!r} is now certified for your member."
        if state == "failed":
            return f"Pairing failed: {st.get('reason', '')}."
        return STATE_TEXT.get(str(state), "")
