"""A banner shown at the top of every screen while the node is unreachable."""

from __future__ import annotations

from textual.widgets import Static


class ConnectionBanner(Static):
    """Visible only while the control connection is down (class ``-down``)."""

    DEFAULT_CLASSES = "banner"

    def set_state(self, connected: bool, socket_path: str) -> None:
        self.set_class(not connected, "-down")
        if connected:
            self.update("")
        else:
            self.update(f"⚠ Node unavailable at {socket_path} — reconnecting…")
