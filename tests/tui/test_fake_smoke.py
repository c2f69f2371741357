"""FAKE-node tests: the TUI against tests/tui/fake_node.py (development aid, not the contract)."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.tui.fake_node import FakeNode
from tests.tui.helpers import wait_for
from tui.app import PercolabApp
from tui.screens.labs import LabsScreen
from tui.screens.project import ProjectScreen
from tui.screens.projects import ProjectsScreen

pytestmark = pytest.mark.anyio


@pytest.fixture
async def fake() -> AsyncIterator[FakeNode]:
    with tempfile.TemporaryDirectory() as tmp:
        node = FakeNode(Path(tmp) / "node.sock")
        lab = node.add_lab("fablab", "A fab lab", "Lyon")
        node.add_lab("bikes", followed=False)
        for i in range(45):
            node.add_project(lab, f"Project {i:02d}", body="# Hello\n\nSome *markdown*.")
        await node.start()
        yield node
        await node.stop()


async def test_fake_browse_and_comment(fake: FakeNode) -> None:
    app = PercolabApp(fake.socket_path)
    async with app.run_test(size=(110, 36)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LabsScreen)
                       and app.screen.table.row_count == 2, "labs listed")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectsScreen)
                       and app.screen.table.row_count == 20, "first page")
        screen = app.screen
        assert isinstance(screen, ProjectsScreen)
        await pilot.press("n")
        await wait_for(pilot, lambda: screen.page == 1 and "Project 24" in str(
            screen.table.get_row_at(0)[1]), "second page")
        await pilot.press("p")
        await wait_for(pilot, lambda: "Project 44" in str(screen.table.get_row_at(0)[1]),
                       "back to first page")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen)
                       and app.screen.loaded, "project open")
        await pilot.press("c")
        await wait_for(pilot, lambda: app.screen.query("#body"), "comment form")
        await pilot.press(*"hello world")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen)
                       and len(app.screen.thread.comments) == 1, "comment in thread")


async def test_fake_live_push_and_reconnect(fake: FakeNode) -> None:
    app = PercolabApp(fake.socket_path)
    async with app.run_test(size=(110, 36)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LabsScreen)
                       and app.screen.table.row_count == 2, "labs listed")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectsScreen)
                       and app.screen.table.row_count == 20, "first page")
        screen = app.screen
        assert isinstance(screen, ProjectsScreen)
        # Someone else posts: the row appears on page 1 with a "1 new" badge, no refresh key.
        project = fake.add_project("fablab", "Pushed project")
        fake.push(project)
        await wait_for(pilot, lambda: project["id"] in screen.table.projects, "pushed row")
        assert screen.table.get_row_index(project["id"]) == 0
        assert "1 new" in str(screen.query_one("#projects-info").render())
        # The node goes away: banner shown, no crash; it comes back: banner hidden.
        await fake.stop()
        await wait_for(pilot, lambda: screen.query_one(".banner").has_class("-down"), "banner")
        await fake.start()
        await wait_for(pilot, lambda: not screen.query_one(".banner").has_class("-down"),
                       "banner hidden after reconnect")
        assert app.connected


async def test_fake_onboarding(tmp_path: Path) -> None:
    node = FakeNode(tmp_path / "node.sock", identity=False)
    await node.start()
    try:
        app = PercolabApp(node.socket_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.screen.query("#name") and app._onboarding,
                           "onboarding form")
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: "required" in str(
                app.screen.query_one("#form-error").render()), "name required error")
            app.screen.query_one("#name").focus()
            await pilot.press(*"Zoé", "enter")
            await wait_for(pilot, lambda: app.me is not None and app.me["name"] == "Zoé",
                           "identity created")
            assert node.me is not None and node.me["name"] == "Zoé"
            assert isinstance(app.screen, LabsScreen)
    finally:
        await node.stop()


async def test_fake_theme_toggle_and_palette(fake: FakeNode) -> None:
    app = PercolabApp(fake.socket_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.connected, "connected")
        assert app.theme == "textual-dark"
        await pilot.press("d")
        assert app.theme == "textual-light"
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: app.screen.query("CommandInput"), "palette open")
        await pilot.press(*"go to tags")
        await wait_for(pilot, lambda: app.screen.query_one("CommandList").option_count > 0,
                       "palette hits")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "tags", "tags via palette")


async def test_fake_search_at_once_and_one_in_flight_the_latest_query_wins(
    fake: FakeNode,
) -> None:
    from tui.screens.base import FrameTimer
    from tui.screens.search import SearchScreen

    app = PercolabApp(fake.socket_path)
    queries: list[str] = []
    held = asyncio.Event()  # the first search's answer waits for this
    real_call = app.client.call

    async def call(method: str, **params: object) -> object:
        if method == "search":
            queries.append(str(params["query"]))
            if params["query"] == "p":
                await held.wait()
        return await real_call(method, **params)

    app.client.call = call  # type: ignore[method-assign]
    async with app.run_test(size=(110, 36)) as pilot:
        await wait_for(pilot, lambda: app.connected, "connected")
        await pilot.press("3")
        await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen), "search screen")
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        assert isinstance(screen._update_timer, FrameTimer)
        await pilot.press("p")
        await wait_for(pilot, lambda: queries == ["p"], "the first key searched at once")
        await pilot.press(*"roject 4")  # typed while the first search is out
        await pilot.pause()
        assert queries == ["p"]  # no second search in flight
        held.set()
        table = screen.query_one("#search-results")
        await wait_for(pilot, lambda: queries == ["p", "project 4"]
                       and len(table.projects) == 5,  # type: ignore[attr-defined]
                       "one more search, with the whole query")
        info = str(screen.query_one("#search-info").render())
        assert "project 4" in info
