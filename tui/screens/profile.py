"""Profile: the member's identity (``whoami``); edit the display name (``profile_set``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from rich.markup import escape
from textual import work
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Static

from tui.screens.base import PercolabScreen
from tui.screens.devices import DevicesScreen
from tui.screens.forms import ProfileForm

log = logging.getLogger(__name__)


class ProfileScreen(PercolabScreen):
    TITLE = "Profile"
    BINDINGS = [
        Binding("e", "edit", "Edit profile", id="profile_edit"),
        Binding("v", "devices", "Devices", id="profile_devices"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.me: dict[str, Any] | None = None

    def compose_body(self) -> Iterable[Widget]:
        yield Static("", id="profile-info", classes="screen-info")

    def on_screen_resume(self) -> None:
        self.reload()

    def reload(self) -> None:
        self.load_profile()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_profile(self) -> None:
        me = await self.rpc("whoami")
        self.me = me
        info = self.query_one("#profile-info", Static)
        if me is None:
            info.update("No identity yet.")
            return
        info.update(
            "\n".join(
                [
                    f"[b]Name:[/b] {escape(str(me.get('name', '')))}",
                    f"[b]About:[/b] {escape(str(me.get('about', '') or '—'))}",
                    f"[b]Member key:[/b] {self.fmt.short_id(str(me.get('author', '')), 64)}",
                    f"[b]Fingerprint:[/b] {self.fmt.volatile(str(me.get('fingerprint', '')))}",
                    "",
                    "Press e to edit your name and about text; v for your devices (add one "
                    "by pairing, revoke one).",
                ]
            )
        )

    def action_devices(self) -> None:
        self.app.push_screen(DevicesScreen())

    def action_edit(self) -> None:
        me = self.me or {}

        def saved(result: Any) -> None:
            if result:
                self.notify("Profile saved")
                self.papp.refresh_identity()
                self.reload()

        self.app.push_screen(
            ProfileForm(str(me.get("name", "")), str(me.get("about", "") or "")), saved
        )
