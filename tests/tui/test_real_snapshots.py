"""Snapshot tests of the main screens against a REAL node with seeded data.

Deterministic: fixed terminal size, the app's ``redact_volatile`` mode (ids, times, peer ids
and addresses shown as placeholders), read-only data seeded once for the module, and each
snapshot taken only after the screen has finished loading (bounded waits, no sleeps).
Update with ``pytest tests/tui/test_real_snapshots.py --snapshot-update`` and review the SVGs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.tui.helpers import wait_for
from tests.tui.real_node import RealNode, seeded_node
from tui.app import PercolabApp
from tui.screens.labs import LabsScreen
from tui.screens.network import NetworkScreen
from tui.screens.profile import ProfileScreen
from tui.screens.project import ProjectScreen
from tui.screens.projects import ProjectsScreen
from tui.screens.search import SearchScreen
from tui.screens.tags import TagsScreen

pytestmark = pytest.mark.slow

SIZE = (100, 32)
Snap = Callable[..., bool]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RealNode, dict[str, str]]]:
    real, ids = seeded_node(tmp_path_factory.mktemp("snap") / "data")
    real.start()
    yield real, ids
    real.stop()


def make_app(real: RealNode) -> PercolabApp:
    return PercolabApp(real.socket_path, redact_volatile=True)


async def labs_loaded(pilot: Any) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, LabsScreen)
                   and app.screen.table.row_count == 2 and app.me is not None, "labs")


async def open_fablab(pilot: Any) -> None:
    await labs_loaded(pilot)
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ProjectsScreen)
                   and pilot.app.screen.table.row_count == 2, "fablab projects")


def test_real_snapshot_labs(node: tuple[RealNode, dict[str, str]], snap_compare: Snap) -> None:
    assert snap_compare(make_app(node[0]), terminal_size=SIZE, run_before=labs_loaded)


def test_real_snapshot_projects(node: tuple[RealNode, dict[str, str]], snap_compare: Snap) -> None:
    assert snap_compare(make_app(node[0]), terminal_size=SIZE, run_before=open_fablab)


def test_real_snapshot_project(node: tuple[RealNode, dict[str, str]], snap_compare: Snap) -> None:
    dryer = node[1]["dryer"]

    async def run_before(pilot: Any) -> None:
        await open_fablab(pilot)
        screen = pilot.app.screen
        screen.table.move_cursor(row=screen.table.get_row_index(dryer))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ProjectScreen)
                       and pilot.app.screen.loaded
                       and len(pilot.app.screen.thread.comments) == 2, "project")

    assert snap_compare(make_app(node[0]), terminal_size=SIZE, run_before=run_before)


def test_real_snapshot_tags(node: tuple[RealNode, dict[str, str]], snap_compare: Snap) -> None:
    async def run_before(pilot: Any) -> None:
        await labs_loaded(pilot)
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TagsScreen)
                       and pilot.app.screen.table.row_count == 4, "tags")

    assert snap_compare(make_app(node[0]), terminal_size=SIZE, run_before=run_before)


def test_real_snapshot_search(node: tuple[RealNode, dict[str, str]], snap_compare: Snap) -> None:
    async def run_before(pilot: Any) -> None:
        await labs_loaded(pilot)
        await pilot.press("3")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, SearchScreen), "search")
        await pilot.press(*"solar", "enter")  # enter: results get the focus (no blinking)
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#search-results").row_count
                       == 2 and pilot.app.screen.query_one("#search-results").has_focus,
                       "results")

    assert snap_compare(make_app(node[0]), terminal_size=SIZE, run_before=run_before)


def test_real_snapshot_network(node: tuple[RealNode, dict[str, str]], snap_compare: Snap) -> None:
    async def run_before(pilot: Any) -> None:
        await labs_loaded(pilot)
        await pilot.press("4")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, NetworkScreen)
                       and "Peer id" in str(pilot.app.screen.query_one("#network-status")
                                            .render()), "network")

    assert snap_compare(make_app(node[0]), terminal_size=SIZE, run_before=run_before)


def test_real_snapshot_profile(node: tuple[RealNode, dict[str, str]], snap_compare: Snap) -> None:
    async def run_before(pilot: Any) -> None:
        await labs_loaded(pilot)
        await pilot.press("5")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ProfileScreen)
                       and "Alice" in str(pilot.app.screen.query_one("#profile-info")
                                          .render()), "profile")

    assert snap_compare(make_app(node[0]), terminal_size=SIZE, run_before=run_before)
