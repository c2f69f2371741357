"""Pilot tests of the TUI against a REAL node (subprocess) seeded through the real CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.tui.helpers import wait_for
from tests.tui.real_node import RealNode, seeded_node
from tui.app import PercolabApp
from tui.client import NodeClient
from tui.screens.labs import LabsScreen
from tui.screens.network import NetworkScreen
from tui.screens.profile import ProfileScreen
from tui.screens.project import ProjectScreen
from tui.screens.projects import ProjectsScreen
from tui.screens.search import SearchScreen
from tui.screens.tags import TagsScreen
from tui.widgets.comments import flatten

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SIZE = (110, 36)
FABLAB_PROJECTS = 2 + 22  # seeded: dryer, loom and 22 workshops


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RealNode, dict[str, str]]]:
    real, ids = seeded_node(tmp_path_factory.mktemp("pilot") / "data", extra_projects=22)
    real.start()
    yield real, ids
    real.stop()


def text_of(widget: Any) -> str:
    return str(widget.render())


async def open_lab(pilot: Any, app: PercolabApp, name: str) -> ProjectsScreen:
    await wait_for(pilot, lambda: isinstance(app.screen, LabsScreen)
                   and app.screen.table.row_count >= 2, "labs listed")
    labs = app.screen
    assert isinstance(labs, LabsScreen)
    lab_id = next(lid for lid, lab in labs.labs.items() if lab["name"] == name)
    labs.table.move_cursor(row=labs.table.get_row_index(lab_id))
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, ProjectsScreen)
                   and app.screen.table.row_count > 0, f"projects of {name}")
    assert isinstance(app.screen, ProjectsScreen)
    return app.screen


async def open_project(pilot: Any, app: PercolabApp, screen: ProjectsScreen,
                       project_id: str) -> ProjectScreen:
    await wait_for(pilot, lambda: project_id in screen.table.projects, "project row")
    screen.table.move_cursor(row=screen.table.get_row_index(project_id))
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen)
                   and app.screen.loaded, "project loaded")
    assert isinstance(app.screen, ProjectScreen)
    return app.screen


async def test_real_labs_paging_and_order(node: tuple[RealNode, dict[str, str]]) -> None:
    real, _ = node
    app = PercolabApp(real.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LabsScreen)
                       and app.screen.table.row_count == 2, "two labs")
        labs = app.screen
        assert isinstance(labs, LabsScreen)
        names = [labs.labs[str(labs.table.coordinate_to_cell_key((r, 0)).row_key.value)]["name"]
                 for r in range(2)]
        assert names == ["fablab", "velo-club"]  # followed first
        screen = await open_lab(pilot, app, "fablab")
        await wait_for(pilot, lambda: screen.table.row_count == 20, "a page of 20")
        assert screen.total is not None and screen.total >= FABLAB_PROJECTS
        first_page = list(screen.table.projects)
        await pilot.press("n")
        await wait_for(pilot, lambda: screen.page == 1 and screen.table.row_count > 0
                       and not set(screen.table.projects) & set(first_page), "second page")
        assert "page 2" in text_of(screen.query_one("#projects-info"))
        await pilot.press("p")
        await wait_for(pilot, lambda: list(screen.table.projects) == first_page, "first page")
        await pilot.press("o")
        await wait_for(pilot, lambda: "active first" in text_of(
            screen.query_one("#projects-info")), "order toggled")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, LabsScreen), "back to labs")


async def test_real_project_comment_and_reply(node: tuple[RealNode, dict[str, str]]) -> None:
    real, ids = node
    app = PercolabApp(real.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        lab = await open_lab(pilot, app, "fablab")
        await pilot.press("o")  # most active first: the discussed dryer is on the first page
        screen = await open_project(pilot, app, lab, ids["dryer"])
        assert "Solar fruit dryer" in text_of(screen.query_one("#project-title"))
        assert "plywood" in text_of(screen.query_one("#project-facts"))
        thread = screen.thread
        before = len(thread.comments)
        assert before >= 2
        depths = {c["body"]: d for d, c in flatten(
            (await app.client.call("project", id=ids["dryer"]))["comments"])}
        assert depths["Marine plywood, it survives the rain."] == 1

        await pilot.press("c")
        await wait_for(pilot, lambda: app.screen.query("#body"), "comment form")
        await pilot.press(*"Count me in for the welding")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen)
                       and any(c["body"] == "Count me in for the welding"
                               for c in thread.comments.values()), "new comment in thread")
        assert len(thread.comments) == before + 1

        # Reply to the first comment: it lands nested under it.
        thread.highlighted = thread.get_option_index(ids["comment"])
        await pilot.press("r")
        await wait_for(pilot, lambda: app.screen.query("#body"), "reply form")
        await pilot.press(*"Thanks")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any(c["body"] == "Thanks" and c.get("parent") == ids[
            "comment"] for c in thread.comments.values()), "reply in thread")

        await pilot.press("t")
        await wait_for(pilot, lambda: app.screen.query("#labels"), "tag form")
        await pilot.press(*"drying, low-tech", "enter")
        await wait_for(pilot, lambda: "#low-tech" in text_of(
            screen.query_one("#project-facts")), "tag shown")


async def test_real_tags_to_projects(node: tuple[RealNode, dict[str, str]]) -> None:
    real, ids = node
    app = PercolabApp(real.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.connected, "connected")
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, TagsScreen)
                       and "solar" in app.screen.counts, "tags listed")
        tags = app.screen
        assert isinstance(tags, TagsScreen)
        assert tags.counts["solar"] == 2
        tags.table.move_cursor(row=tags.table.get_row_index("solar"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectsScreen)
                       and app.screen.table.row_count == 2, "solar projects across labs")
        projects = app.screen
        assert isinstance(projects, ProjectsScreen)
        assert set(projects.table.projects) == {ids["dryer"], ids["cargo"]}
        labs = {p["lab_name"] for p in projects.table.projects.values()}
        assert labs == {"fablab", "velo-club"}


async def test_real_search_as_you_type(node: tuple[RealNode, dict[str, str]]) -> None:
    real, ids = node
    app = PercolabApp(real.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.connected, "connected")
        await pilot.press("3")
        await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen), "search screen")
        await pilot.press(*"loom")
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        table = screen.query_one("#search-results")
        await wait_for(pilot, lambda: ids["loom"] in table.projects,  # type: ignore[attr-defined]
                       "loom found")
        await pilot.press("enter")  # from the query box to the results
        await wait_for(pilot, lambda: table.has_focus, "results focused")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen)
                       and app.screen.loaded, "project opened from results")


async def test_real_network_and_profile(node: tuple[RealNode, dict[str, str]]) -> None:
    real, _ = node
    app = PercolabApp(real.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.connected, "connected")
        status = await app.client.call("status")
        await pilot.press("4")
        await wait_for(pilot, lambda: isinstance(app.screen, NetworkScreen) and status[
            "peer_id"] in text_of(app.screen.query_one("#network-status")), "own peer id")
        assert "/ip4/127.0.0.1/tcp/" in text_of(app.screen.query_one("#network-status"))
        await pilot.press("5")
        await wait_for(pilot, lambda: isinstance(app.screen, ProfileScreen)
                       and "Alice" in text_of(app.screen.query_one("#profile-info")), "profile")
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query("#name"), "profile form")
        name = app.screen.query_one("#name")
        name.value = ""  # type: ignore[attr-defined]
        name.focus()
        await pilot.press(*"Alice L.", "ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ProfileScreen)
                       and "Alice L." in text_of(app.screen.query_one("#profile-info")),
                       "renamed")
        assert (await app.client.call("whoami"))["name"] == "Alice L."


async def test_real_follow_create_lab_and_post(node: tuple[RealNode, dict[str, str]]) -> None:
    real, _ = node
    app = PercolabApp(real.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LabsScreen)
                       and app.screen.table.row_count >= 2, "labs")
        labs = app.screen
        assert isinstance(labs, LabsScreen)
        velo = next(lid for lid, lab in labs.labs.items() if lab["name"] == "velo-club")
        was = bool(labs.labs[velo]["followed"])
        labs.table.move_cursor(row=labs.table.get_row_index(velo))
        await pilot.press("f")
        await wait_for(pilot, lambda: bool(labs.labs[velo]["followed"]) is not was, "toggled")

        await pilot.press("c")
        await wait_for(pilot, lambda: app.screen.query("#place"), "lab form")
        await pilot.press(*"repair-cafe")
        await pilot.press("tab", *"Fix things together", "tab", *"Berlin", "ctrl+s")
        await wait_for(pilot, lambda: any(lab["name"] == "repair-cafe"
                                          for lab in labs.labs.values()), "new lab listed")
        lab_id = next(lid for lid, lab in labs.labs.items() if lab["name"] == "repair-cafe")
        labs.table.move_cursor(row=labs.table.get_row_index(lab_id))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectsScreen), "empty lab")
        screen = app.screen
        assert isinstance(screen, ProjectsScreen)
        await pilot.press("c")
        await wait_for(pilot, lambda: app.screen.query("#title"), "project form")
        await pilot.press(*"Toaster clinic", "tab", *"Bring your toaster", "tab", *"running")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectsScreen) and any(
            p["title"] == "Toaster clinic" for p in screen.table.projects.values()), "posted")


async def test_real_live_push_highlights_new_rows(node: tuple[RealNode, dict[str, str]]) -> None:
    real, ids = node
    app = PercolabApp(real.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_lab(pilot, app, "fablab")
        other = NodeClient(real.socket_path, subscribe=False)
        await other.connect()
        try:
            new_id = await other.call("post", lab="fablab", title="Pushed live")
            await wait_for(pilot, lambda: new_id in screen.table.projects, "pushed row shown")
            assert screen.table.get_row_index(new_id) == 0
            assert new_id in screen.new_ids
            assert "1 new" in text_of(screen.query_one("#projects-info"))
            await pilot.press("o")  # most active first: the discussed dryer is on page 1
            project = await open_project(pilot, app, screen, ids["dryer"])
            comment_id = await other.call("comment", target=ids["dryer"], body="Live comment")
            await wait_for(pilot, lambda: comment_id in project.thread.comments, "live comment")
            assert comment_id in project.new_ids
            assert "1 new" in text_of(project.query_one("#comments-heading"))
        finally:
            await other.close()


async def test_real_node_restart_banner(tmp_path: Path) -> None:
    real = RealNode(tmp_path / "data")
    real.cli("init", "--unencrypted-key", "--name", "Bob")
    real.cli("lab", "create", "hackerspace")
    real.start()
    try:
        app = PercolabApp(real.socket_path)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, LabsScreen)
                           and app.screen.table.row_count == 1, "lab listed")
            banner = app.screen.query_one(".banner")
            real.stop()
            await wait_for(pilot, lambda: banner.has_class("-down"), "banner shown", 15)
            assert "unavailable" in text_of(banner)
            real.start()
            await wait_for(pilot, lambda: not banner.has_class("-down") and app.connected,
                           "reconnected", 20)
            assert app.screen.table.row_count == 1  # type: ignore[attr-defined]
    finally:
        real.stop()


async def test_real_onboarding(tmp_path: Path) -> None:
    real = RealNode(tmp_path / "data")
    real.data_dir.mkdir()
    # The form sends no passphrase: this node keeps new keys unencrypted (docs/keys.md).
    (real.data_dir / "config.toml").write_text("[identity]\nunencrypted = true\n")
    real.start()
    try:
        app = PercolabApp(real.socket_path)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app._onboarding and app.screen.query("#name"),
                           "onboarding form")
            await pilot.press(*"Zoé", "enter")
            await wait_for(pilot, lambda: app.me is not None, "identity created")
            assert app.me is not None and app.me["name"] == "Zoé"
            assert (await app.client.call("whoami"))["name"] == "Zoé"
    finally:
        real.stop()
