"""Command palette provider: every screen and every action reachable from the keyboard.

Hits come from three sources: the app's screens (go to labs, tags, search, network, profile,
and "Switch member" on a node that has members' seats),
the pledges made and received (yours; and the lab's, on a lab's projects page), and the
bindings active on the screen the palette was opened from (so each screen's actions — next
page, comment, reply, follow, edit, history, pledge, fork, a lab's members / queue / log /
rules, hide, mute… — appear without being listed twice), and the app's own (the "show
hidden" toggle, `show_hidden`, listed though not in the footer).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from functools import partial

from textual.app import App
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen

from tui.screens.pledges import PledgesScreen
from tui.screens.projects import ProjectsScreen

log = logging.getLogger(__name__)

SCREENS = (
    ("labs", "Go to labs", "Labs you follow first, with project counts"),
    ("tags", "Go to tags", "The most used tags; pick one to see its projects"),
    ("search", "Go to search", "Search projects as you type"),
    ("network", "Go to network", "Own peer id, addresses, peers and sync progress"),
    ("profile", "Go to profile", "Your name and member key"),
)


class PercolabCommands(Provider):
    """Lists navigation commands and the current screen's actions."""

    def _commands(self) -> Iterator[tuple[str, str, Callable[[], object]]]:
        app = self.app
        for mode, name, help_text in SCREENS:
            yield name, help_text, partial(app.switch_mode, mode)
        yield from self._pledge_commands()
        seen: set[str] = set()
        if getattr(app, "seats", None) and hasattr(app, "switch_member"):  # a seat-aware node
            seen.add("switch_member")
            yield ("Switch member", "Sign out and choose who is using Percolab (key: m)",
                   app.switch_member)  # fmt: skip
        for active in self.screen.active_bindings.values():
            binding = active.binding
            if not active.enabled or not binding.description or binding.action in seen:
                continue
            if binding.action.startswith("switch_mode") or binding.action == "command_palette":
                continue
            seen.add(binding.action)
            node = active.node
            # Actions of the app and of the screen itself; not every focused widget's keys.
            if not isinstance(node, (App, Screen)):
                continue
            help_text = f"key: {binding.key_display or binding.key}"
            yield binding.description, help_text, partial(node.run_action, binding.action)

    def _pledge_commands(self) -> Iterator[tuple[str, str, Callable[[], object]]]:
        me = getattr(self.app, "me", None) or {}
        if me.get("author"):
            yield ("Your pledges", "Pledges you made, and those on your projects",
                   partial(self._open_pledges, member=str(me["author"]),
                           heading="Your pledges"))  # fmt: skip
        screen = self.screen
        if isinstance(screen, ProjectsScreen) and screen.lab:
            yield ("Pledges of this lab", "Pledges on its projects, and those its creator made",
                   partial(self._open_pledges, lab=screen.lab,
                           heading=f"Pledges of {screen.heading}"))  # fmt: skip

    def _open_pledges(self, **where: str) -> None:
        self.app.push_screen(PledgesScreen(**where))

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
