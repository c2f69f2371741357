"""The base of every full screen: header, connection banner, body, footer, RPC helpers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, cast

from textual import constants
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import EventTargetGone, Timer
from textual.widget import Widget
from textual.widgets import Footer, Header

from tui.client import NodeClient, NodeUnavailable, RpcError
from tui.format import Formatter
from tui.messages import NodeStateChanged, ObjectPushed
from tui.widgets.banner import ConnectionBanner


class PercolabApp(Protocol):
    """What screens need of tui/app.py's app (a Protocol: the app imports the screens, so
    the screens do not import the app)."""

    client: NodeClient
    fmt: Formatter
    connected: bool
    socket_path: Path

    def refresh_identity(self) -> Any: ...  # a Textual worker

    def notify(self, message: str, *, title: str = "", severity: str = "information") -> Any: ...

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
        if exc.code != "no_seat":  # the app shows the member picker instead
            app.notify(exc.message or exc.code, title=f"{method}: {exc.code}", severity="error")
        raise CallFailed(str(exc)) from exc
    except NodeUnavailable as exc:
        log.info("%s: node unavailable: %s", method, exc)
        raise CallFailed(str(exc)) from exc


class FrameTimer(Timer):
    """A screen's update timer: at most one update a frame, and as soon as one is allowed.

    The screen resumes its update timer when something needs painting and pauses it in each
    update. Textual's interval timer keeps a fixed phase and, after a tick that came late
    (every tick that follows a pause is late), skips ahead so that the next tick comes 1 to
    2 frames later: a change made just after a paint (search results right after the typed
    character was echoed) waited up to 33 ms for its paint. Here a tick comes when the timer
    is resumed, or one frame after the previous tick if that is later.
    """

    async def _run(self) -> None:
        interval = self._interval
        last = -interval
        count = 0
        while True:
            await self._active.wait()
            wait = last + interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                await self._active.wait()
            self._reset = False  # no phase to reset
            last = time.monotonic()
            count += 1
            try:
                await self._tick(next_timer=last, count=count)
            except EventTargetGone:
                return


class PercolabScreen(Screen[None]):
    """Composes the common chrome; subclasses implement ``compose_body`` and ``reload``."""

    BINDINGS = [
        Binding("f5", "reload", "Refresh", id="refresh"),
    ]

    _frame_timer: FrameTimer | None = None

    @property
    def _update_timer(self) -> Timer:
        """Screen's update timer (what paints this screen's changes), as a FrameTimer."""
        timer = self._frame_timer
        if timer is None:
            timer = FrameTimer(self, 1 / constants.MAX_FPS, name="screen_update",
                               callback=self._on_timer_update, pause=True)  # fmt: skip
            timer._start()
            self._timers.add(timer)
            self._frame_timer = timer
        return timer

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
