"""Helpers of the living-project Pilot tests (test_living_pilot.py, test_fake_living.py)."""

from __future__ import annotations

from typing import Any

from textual.widgets import Select

from tests.tui.helpers import wait_for
from tui.app import PercolabApp
from tui.screens.project import ProjectScreen


def text_of(widget: Any) -> str:
    return str(widget.render())


async def open_project(pilot: Any, app: PercolabApp, project_id: str) -> ProjectScreen:
    """The project screen of ``project_id``, loaded (pushed as the labs screen does)."""
    await wait_for(pilot, lambda: app.connected and app.me is not None, "connected")
    screen = ProjectScreen(project_id)
    await app.push_screen(screen)
    await wait_for(pilot, lambda: app.screen is screen and screen.loaded, "project loaded")
    return screen


async def choose(pilot: Any, select: Select[str], value: str) -> None:
    """Pick ``value`` in a Select with the keyboard: open it, move to the value, enter."""
    select.focus()
    await pilot.press("enter")
    await wait_for(pilot, lambda: select.expanded, "select open")
    values = [v for _, v in select._options if v is not Select.NULL]
    start = values.index(select.value) if select.value in values else -1
    await pilot.press(*["down"] * (values.index(value) - start), "enter")
    await wait_for(pilot, lambda: select.value == value and not select.expanded, f"{value}")


async def palette(pilot: Any, text: str) -> None:
    """Run the command palette's first hit for ``text``."""
    app = pilot.app
    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: app.screen.query("CommandInput"), "palette open")
    await pilot.press(*text)
    await wait_for(pilot, lambda: app.screen.query_one("CommandList").option_count > 0,
                   f"palette hits for {text}")  # fmt: skip
    await pilot.press("enter")
