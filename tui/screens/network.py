"""Network: own peer id and addresses, connected peers, object counts, sync progress."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable, ProgressBar, Static

from tui.messages import SyncPushed
from tui.screens.base import PercolabScreen
from tui.screens.forms import FormScreen

log = logging.getLogger(__name__)

REFRESH_S = 5.0


class ConnectForm(FormScreen):
    TITLE_TEXT = "Connect to a peer"
    METHOD = "connect"
    SUBMIT_LABEL = "Connect"

    def fields(self) -> Iterable[Widget]:
        from textual.widgets import Input

        yield Input(placeholder="/ip4/…/tcp/…/p2p/…", id="addr")

    def params(self) -> dict[str, Any]:
        addr = self.value("addr")
        if "/p2p/" not in addr:
            raise ValueError("The address must end with /p2p/<peer id>")
        return {"addr": addr}


class NetworkScreen(PercolabScreen):
    """``status`` and ``peers``, refreshed every few seconds and on sync pushes."""

    TITLE = "Network"
    BINDINGS = [Binding("a", "connect", "Connect peer", id="network_connect")]

    def compose_body(self) -> Iterable[Widget]:
        yield Static("", id="network-status", classes="screen-info")
        yield Static("", id="network-sync", classes="screen-info")
        yield ProgressBar(total=None, show_eta=False, id="sync-progress")
        yield Static("Connected peers", classes="section-heading")
        yield DataTable[Text](cursor_type="row", zebra_stripes=True, id="peers-table")

    def on_mount(self) -> None:
        table = self.query_one("#peers-table", DataTable)
        table.add_column("Peer id", key="peer")
        table.add_column("Addresses", key="addrs")
        self.set_interval(REFRESH_S, self._tick)

    def _tick(self) -> None:
        if self.is_current and self.papp.connected:
            self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    def reload(self) -> None:
        self.load_network()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_network(self) -> None:
        status = await self.rpc("status")
        peers = await self.rpc("peers")
        self.show_status(status)
        self.show_sync(status.get("sync"))
        table = self.query_one("#peers-table", DataTable)
        table.clear()
        for peer in peers:
            pid = str(peer.get("peer_id", ""))
            addrs = ", ".join(str(a) for a in peer.get("addrs", []))
            table.add_row(Text(self.fmt.volatile(pid)), Text(self.fmt.volatile(addrs)), key=pid)

    def show_status(self, status: dict[str, Any]) -> None:
        v = self.fmt.volatile
        counts = status.get("counts") or {}
        lines = [
            f"[b]Peer id:[/b] {escape(v(str(status.get('peer_id', ''))))}",
            "[b]Listening on:[/b]",
            *(f"  {escape(v(str(a)))}" for a in status.get("addrs") or []),
            f"[b]Peers:[/b] {status.get('peers', 0)}"
            f"   [b]Topics:[/b] {len(status.get('topics') or [])}",
            f"[b]Objects:[/b] {status.get('objects', 0)}  ("
            # Kinds this node holds none of are left out (every registered kind is counted).
            + ", ".join(f"{k} {n}" for k, n in sorted(counts.items()) if n)
            + ")",
            f"[b]Digest:[/b] {v(str(status.get('digest', ''))[:16])}",
        ]
        self.query_one("#network-status", Static).update("\n".join(lines))

    def show_sync(self, sync: dict[str, Any] | None) -> None:
        bar = self.query_one("#sync-progress", ProgressBar)
        if not isinstance(sync, dict):
            self.query_one("#network-sync", Static).update("[b]Sync:[/b] not reported by the node")
            bar.display = False
            return
        active = bool(sync.get("active"))
        missing, fetched = int(sync.get("missing", 0)), int(sync.get("fetched", 0))
        state = "syncing" if active else "idle"
        text = (
            f"[b]Sync:[/b] {state} with {sync.get('peers', 0)} peer(s)"
            f" — fetched {fetched}, missing {missing}"
        )
        self.query_one("#network-sync", Static).update(text)
        bar.display = active or missing > 0
        bar.update(total=max(1, fetched + missing), progress=fetched)

    def on_sync_pushed(self, message: SyncPushed) -> None:
        self.show_sync(message.data)

    def action_connect(self) -> None:
        def done(result: Any) -> None:
            if result:
                self.notify("Connected")
                self.reload()

        self.app.push_screen(ConnectForm(), done)
