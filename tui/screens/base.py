"""The base of every full screen: header, connection banner, body, footer, RPC helpers."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Header

from tui.client import NodeClient, NodeUnavailable, RpcError
from tui.format import Formatter
from tui.messages import NodeStateChanged, ObjectPushed
from tui.widgets.banner import ConnectionBanner

if TYPE_CHECKING:
    from tui.app import PercolabApp

log = logging.getLogger(__name__)


class CallFailed(Exception):
    """An RPC call failed; the user has already been told (notification)."""


def rpc_client(widget: Widget) -> NodeClient:
    """The node client of ``widget``'s app."""
    return cast("PercolabApp", widget.app).client


async def rpc_call(widget: Widget, method: str, **params: Any) -> Any:
    """Call the node for ``widget``'s app; notify the user and raise CallFailed on failure."""
    app = cast("PercolabApp", widget.app)
    try:
        return await app.client.call(method, **params)
    except RpcError as exc:
        log.info("%s failed: %s", method, exc)
        app.notify(exc.message or exc.code, title=f"{method}: {exc.code}", severity="error")
        raise CallFailed(str(exc)) from exc
    except NodeUnavailable as exc:
        log.info("%s: node unavailable: %s", method, exc)
        raise CallFailed(str(exc)) from exc


class PercolabScreen(Screen[None]):
    """Composes the common chrome; subclasses implement ``compose_body`` and ``reload``."""

    BINDINGS = [
        Binding("f5", "reload", "Refresh", id="refresh"),
    ]

    @property
    def papp(self) -> PercolabApp:
        return cast("PercolabApp", self.app)

    @property
    def fmt(self) -> Formatter:
        return self.papp.fmt

    def compose(self) -> ComposeResult:
        yield Header()
        yield ConnectionBanner()
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> Iterable[Widget]:
        return ()

    async def rpc(self, method: str, **params: Any) -> Any:
        return await rpc_call(self, method, **params)

    def on_mount(self) -> None:
        self._show_state(self.papp.connected)
        self.reload()

    def on_screen_resume(self) -> None:
        self._show_state(self.papp.connected)

    def _show_state(self, connected: bool) -> None:
        self.query_one(ConnectionBanner).set_state(connected, str(self.papp.socket_path))

    def on_node_state_changed(self, message: NodeStateChanged) -> None:
        self._show_state(message.connected)
        if message.connected:
            self.reload()

    def on_object_pushed(self, message: ObjectPushed) -> None:
        self.object_arrived(message.view)

    def object_arrived(self, view: dict[str, Any]) -> None:
        """A new object was pushed while this screen is on the stack. Override."""

    def action_reload(self) -> None:
        self.reload()

    def reload(self) -> None:
        """Fetch this screen's data from the node (in a worker). Override."""
