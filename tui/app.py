"""The Percolab TUI: a Textual app attached to a node's control socket.

``run_tui(socket_path)`` is the entry point the CLI calls. The app keeps one ``NodeClient``
running a reconnect loop in a worker; connection changes and pushed objects become Textual
messages that the app forwards to the screens of the current mode.
"""

from __future__ import annotations

import gc
import logging
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.timer import Timer

from protocols.rpc import Push
from tui.client import NodeClient, NodeUnavailable, RpcError
from tui.commands import PercolabCommands
from tui.crash import EXIT_INTERNAL, crash_line, report
from tui.format import Formatter
from tui.messages import IdentityReady, NodeStateChanged, ObjectPushed, PairingPushed, SyncPushed
from tui.screens.devices import PairingScreen
from tui.screens.forms import OnboardingForm
from tui.screens.labs import LabsScreen
from tui.screens.members import MemberPickerScreen
from tui.screens.network import NetworkScreen
from tui.screens.profile import ProfileScreen
from tui.screens.search import SearchScreen
from tui.screens.tags import TagsScreen
from tui.screens.unlock import UnlockScreen

log = logging.getLogger(__name__)

DARK, LIGHT = "textual-dark", "textual-light"
ANNOUNCE_DELAY_S = 0.6
# Kinds whose arrival from other members is announced ("2 new revisions, 1 new pledge").
ANNOUNCED = ("lab", "project", "comment", "tag", "revision", "pledge")


class PercolabApp(App[int]):
    """Labs, projects, comments and tags of the node at ``socket_path``.

    ``redact_volatile`` replaces ids, times and addresses on screen by placeholders (for
    deterministic snapshots). An unexpected exception ends the app with EXIT_INTERNAL and a
    crash report in ``crash_dir`` (default: the socket's folder, the node's data directory);
    ``crash_message`` is then the one line to print once the terminal is restored.
    """

    TITLE = "Percolab"
    CSS_PATH = "app.tcss"
    MODES: ClassVar[dict[str, Any]] = {
        "labs": LabsScreen,
        "tags": TagsScreen,
        "search": SearchScreen,
        "network": NetworkScreen,
        "profile": ProfileScreen,
    }
    DEFAULT_MODE = "labs"
    COMMANDS: ClassVar[set[Any]] = App.COMMANDS | {PercolabCommands}
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, id="quit_ctrl_c"),
        Binding("1", "switch_mode('labs')", "Labs", id="goto_labs"),
        Binding("2", "switch_mode('tags')", "Tags", id="goto_tags"),
        Binding("3,slash", "switch_mode('search')", "Search", id="goto_search"),
        Binding("4", "switch_mode('network')", "Network", id="goto_network"),
        Binding("5", "switch_mode('profile')", "Profile", id="goto_profile"),
        Binding("d", "toggle_theme", "Dark/Light", id="toggle_theme"),
        # Shown on a shared machine only (2+ members); the palette has it on any seat node.
        Binding("m", "switch_member", "Switch member", id="switch_member"),
        # Hidden and queued posts listed with their marks (`show_hidden` on the node's lists).
        Binding("H", "toggle_hidden", "Show/leave out hidden posts", id="show_hidden",
                show=False),
    ]
    # Not while the member picker is up (the screens behind are not the chosen member's).
    NOT_WHILE_PICKING = frozenset({"switch_mode", "command_palette", "switch_member"})

    def __init__(
        self, socket_path: Path | str, *, redact_volatile: bool = False,
        crash_dir: Path | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.socket_path = Path(socket_path)
        self.crash_dir = crash_dir if crash_dir is not None else self.socket_path.parent
        self.crash_message: str | None = None
        self.fmt = Formatter(redact=redact_volatile)
        self.client = NodeClient(self.socket_path, on_push=self._push, on_state=self._state)
        self.client.on_no_seat = self._no_seat
        self.connected = False
        self.me: dict[str, Any] | None = None
        self._ever_connected = False
        self._onboarding = False
        self._unlocking = False
        self.show_hidden = False  # the `show_hidden` toggle (tui/widgets/moderation.py)
        self.seats: list[dict[str, Any]] = []  # `seats` of the node (empty: an older node)
        self._picking = False  # the member picker is up
        self._incoming: Counter[str] = Counter()
        self._announce_timer: Timer | None = None
        self.theme = DARK

    def _handle_exception(self, error: Exception) -> None:
        """Textual's hook for an unhandled exception anywhere in the app (handlers, workers,
        timers, rendering). Textual's own prints a traceback with locals on the terminal at
        exit; this writes it to a crash report instead, and `run_tui` prints one line."""
        if self.crash_message is None:
            self.crash_message = crash_line(error, self.crash_dir)
        self._return_code = EXIT_INTERNAL
        if self._exception is None:  # as Textual does: run_test() re-raises it (tests see it)
            self._exception = error
            self._exception_event.set()
        self._close_messages_no_wait()

    # -- connection -----------------------------------------------------------------------

    def on_mount(self) -> None:
        # Everything so far (Textual, Rich, the modules, styles) lives as long as the app:
        # keep it out of the cyclic collector's scans, whose full passes over it paused
        # the UI for ~50 ms (a typed character's search results waited for them). Collect
        # first (~20 ms) so that no garbage is kept for good (earlier apps, in tests).
        gc.collect()
        gc.freeze()
        self.run_client()

    async def on_unmount(self) -> None:
        await self.client.close()

    @work(group="client", exit_on_error=False)
    async def run_client(self) -> None:
        await self.client.run()

    def _state(self, up: bool) -> None:
        self.post_message(NodeStateChanged(up))

    def _push(self, push: Push) -> None:
        if push.kind == "object" and isinstance(push.data, dict):
            self.post_message(ObjectPushed(push.data))
        elif push.kind == "sync" and isinstance(push.data, dict):
            self.post_message(SyncPushed(push.data))
        elif push.kind == "pairing" and isinstance(push.data, dict):
            self.post_message(PairingPushed(push.data))

    def _broadcast(self, make: Any) -> None:
        for screen in self.screen_stack:
            screen.post_message(make())

    def on_node_state_changed(self, message: NodeStateChanged) -> None:
        up = message.connected
        log.info("node %s", "connected" if up else "unavailable")
        self.connected = up
        if up:
            if self._ever_connected:
                self.notify("Reconnected to the node", title="Node")
            self._ever_connected = True
            self.refresh_identity()
        else:
            self.notify(
                f"Node unavailable at {self.socket_path}; reconnecting…",
                title="Node",
                severity="error",
            )
        self._broadcast(lambda: NodeStateChanged(up))

    def on_object_pushed(self, message: ObjectPushed) -> None:
        view = message.view
        self._broadcast(lambda: ObjectPushed(view))
        # whoami's "author" is the member id; objects are signed by its devices
        who = view.get("member") or view.get("author")
        mine = self.me is not None and who == self.me.get("author")
        if not mine and view.get("kind") in ANNOUNCED:
            self._incoming[str(view["kind"])] += 1
            if self._announce_timer is None:
                self._announce_timer = self.set_timer(ANNOUNCE_DELAY_S, self._announce)

    def _announce(self) -> None:
        self._announce_timer = None
        parts = [f"{n} new {kind}{'s' if n != 1 else ''}" for kind, n in self._incoming.items()]
        self._incoming.clear()
        if parts:
            self.notify(", ".join(parts), title="New")

    def on_sync_pushed(self, message: SyncPushed) -> None:
        data = message.data
        self._broadcast(lambda: SyncPushed(data))

    def on_pairing_pushed(self, message: PairingPushed) -> None:
        data = message.data
        self._broadcast(lambda: PairingPushed(data))  # the pairing modal (screens/devices)

    # -- identity -------------------------------------------------------------------------

    @work(exclusive=True, group="identity", exit_on_error=False)
    async def refresh_identity(self, reload: bool = False) -> None:
        """Who is using the app: the signed-in member (a seat), the member picker (a shared
        machine, nobody signed in), or the node's own member (unlock / onboarding).
        ``reload``: the screens reload once the identity is known (another member)."""
        try:
            status = await self.client.call("status")
            if self.client.seat is None:
                seats = await self._load_seats()
                if len(seats) >= 2:
                    self.open_member_picker(seats)
                    return
            me = await self.client.call("whoami")
        except (RpcError, NodeUnavailable) as exc:  # no_seat: _no_seat asks again
            log.warning("whoami failed: %s", exc)
            return
        if status.get("locked") and self.client.seat is None:  # reading works meanwhile
            self._start_unlock()
        if me is None:
            self._start_onboarding(ask_passphrase=status.get("new_key") == "ask")
            return
        self._set_identity(me)
        if reload:
            self._broadcast(lambda: NodeStateChanged(True))

    async def _load_seats(self) -> list[dict[str, Any]]:
        try:
            seats = await self.client.call("seats")
        except RpcError as exc:  # a node without seats (unknown_method): one member
            log.info("seats: %s", exc.code)
            seats = []
        self.seats = [s for s in seats or [] if isinstance(s, dict)]
        self.refresh_bindings()
        return self.seats

    # -- members of a shared machine ------------------------------------------------------

    def open_member_picker(self, seats: list[dict[str, Any]]) -> None:
        """"Who is using Percolab?"; the chosen member's seat goes with every call."""
        if self._picking:
            return
        self._picking = True
        self.me = None
        self.sub_title = ""
        self.refresh_bindings()

        def done(result: dict[str, Any] | None) -> None:
            self._picking = False
            self.refresh_bindings()
            if result is not None:
                self._seat_opened(result)
            elif len(self.seats) >= 2:  # escape: nobody to use the app as
                self.exit()
            else:  # a one-member machine: the node's own member, as before
                self.refresh_identity(reload=True)

        self.push_screen(MemberPickerScreen(seats, redact=self.fmt.redact), done)

    def _seat_opened(self, result: dict[str, Any]) -> None:
        self.client.seat = str(result["seat"])
        name = str(result.get("name") or result.get("label") or "")
        log.info("signed in as seat %s", result.get("label"))
        self.sub_title = name
        self.notify(f"Signed in as {name}", title="Members")
        self.call_later(self._fresh_screens)

    async def _fresh_screens(self) -> None:
        """Another member: no screen keeps the previous member's follows, unread marks or
        half-typed drafts. Every mode starts again from its base screen."""
        await self.switch_mode(self.DEFAULT_MODE)
        for mode, screen in self.MODES.items():
            if mode != self.DEFAULT_MODE:
                await self.remove_mode(mode)
                self.add_mode(mode, screen)
        while len(self.screen_stack) > 1 and not self._picking:
            await self.pop_screen()
        self.refresh_identity(reload=True)

    def _no_seat(self) -> None:
        """The node no longer knows our seat (it restarted, or it was closed): choose
        again. Called by the client, once per lost seat."""
        self.call_later(self._seat_lost)

    def _seat_lost(self) -> None:
        self.me = None
        self.sub_title = ""
        self.notify("This member is no longer signed in here; choose again.", title="Members",
                    severity="warning")  # fmt: skip
        self.refresh_identity()

    def action_switch_member(self) -> None:
        self.switch_member()

    @work(exclusive=True, group="identity", exit_on_error=False)
    async def switch_member(self) -> None:
        """Sign the current member out (`seat_close`) and ask who is using the app."""
        seat, self.client.seat = self.client.seat, None
        try:
            if seat is not None:
                await self.client.call("seat_close", seat=seat)
            seats = await self._load_seats()
        except (RpcError, NodeUnavailable) as exc:
            log.warning("switch member: %s", exc)
            self.notify(f"Could not switch member: {exc}", title="Members", severity="error")
            return
        self.open_member_picker(seats)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self._picking and action in self.NOT_WHILE_PICKING:
            return False
        if action == "switch_member":
            return len(self.seats) >= 2
        return True

    def _start_unlock(self) -> None:
        if self._unlocking:
            return
        self._unlocking = True

        def done(result: Any) -> None:
            self._unlocking = False
            if result:
                self.notify("Your member key is unlocked", title="Key")

        self.push_screen(UnlockScreen(), done)

    def _set_identity(self, me: dict[str, Any]) -> None:
        self.me = me
        self.sub_title = f"{me.get('name', '')}"
        self._broadcast(IdentityReady)

    def _start_onboarding(self, *, ask_passphrase: bool = False) -> None:
        if self._onboarding:
            return
        self._onboarding = True

        def done(result: Any) -> None:
            if result == "join":  # pairing with a device of an existing member instead
                self.push_screen(PairingScreen("join"), paired)
                return
            self._onboarding = False
            if isinstance(result, dict):
                self.notify(f"Welcome, {result.get('name', '')}!", title="Identity created")
                self._set_identity(result)
                self._broadcast(lambda: NodeStateChanged(True))
            else:
                self.refresh_identity()

        def paired(result: Any) -> None:
            self._onboarding = False
            self.refresh_identity()  # whoami: the member, or onboarding again

        context = (
            "This node has no identity yet. Choose the name other members will see;\n"
            "a signing key is created on this machine."
        )
        self.push_screen(OnboardingForm(context=context, ask_passphrase=ask_passphrase), done)

    # -- actions --------------------------------------------------------------------------

    def action_toggle_hidden(self) -> None:
        self.show_hidden = not self.show_hidden
        self.notify("Hidden and waiting posts are shown, marked" if self.show_hidden
                    else "Hidden posts are left out again", title="Show hidden")  # fmt: skip
        for screen in self.screen_stack:  # the current mode's; others reload as they do
            reload = getattr(screen, "reload", None)
            if callable(reload):
                reload()

    def action_toggle_theme(self) -> None:
        self.theme = LIGHT if self.theme == DARK else DARK


def run_tui(socket_path: Path) -> int:
    """Run the TUI attached to the node listening on ``socket_path``; returns an exit code."""
    return run_app(PercolabApp(socket_path))


def run_app(app: PercolabApp, *, headless: bool = False) -> int:
    """Run `app` to its end; its exit code. An unexpected exception ends it with one line on
    stderr naming the crash report, after Textual has restored the terminal, and
    EXIT_INTERNAL; never a traceback on the terminal."""
    try:
        result = app.run(headless=headless)
    except Exception as exc:  # outside the app's handlers (its driver, start-up)
        report(crash_line(exc, app.crash_dir))
        return EXIT_INTERNAL
    if app.crash_message is not None:  # the terminal is restored by now
        report(app.crash_message)
        return EXIT_INTERNAL
    return int(result or 0)
