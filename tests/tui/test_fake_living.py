"""FAKE-node tests of the living-project screens (tests/tui/fake_node.py; fast, a development
aid: tests/tui/test_living_pilot.py runs them against a real node), and their pure parts:
the diff rendering and the branch marks."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.tui.fake_node import FakeNode
from tests.tui.helpers import wait_for
from tests.tui.living_helpers import open_project, palette, text_of
from tui.app import PercolabApp
from tui.format import Formatter
from tui.screens.history import HISTORY_PAGE, HistoryScreen, branch_marks
from tui.widgets.diff import DiffView, render_changes

pytestmark = pytest.mark.anyio

SIZE = (110, 40)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeNode, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        node = FakeNode(Path(tmp) / "node.sock")
        lab = node.add_lab("fablab", "A fab lab", "Lyon")
        node.names["a" * 64] = "Alice"
        project = node.add_project(lab, "Solar fruit dryer", body="# Plan\n\n- a box\n",
                                   stage="prototype", needs=["plywood", "a welder"],
                                   author=("a" * 64, "Alice"))  # fmt: skip
        await node.start()
        yield node, str(project["id"])
        await node.stop()


async def test_fake_live_revision_and_pledge_reload(fake: tuple[FakeNode, str]) -> None:
    node, pid = fake
    app = PercolabApp(node.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app, pid)
        node._edit(pid, "a" * 64, {"stage": "running"}, "from another device")
        await wait_for(pilot, lambda: screen.project.get("stage") == "running", "pushed edit")
        node.add_pledge(pid, "teach", "plywood", "I teach joinery")
        await wait_for(pilot, lambda: any(screen.needs_list.need_of.get(k) == "plywood"
                                          for k in screen.needs_list.pledges), "pushed pledge")
        await palette(pilot, "history")  # the new keys are in the command palette too
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen)
                       and app.screen.loaded, "history")
        assert "prototype → running" in text_of(app.screen.query_one(DiffView))


async def test_fake_history_pages_and_branches(fake: tuple[FakeNode, str]) -> None:
    node, pid = fake
    for i in range(HISTORY_PAGE + 5):
        node._edit(pid, "a" * 64, {"summary": f"take {i}"})
    entries = node.revisions[pid]
    # Two concurrent revisions (same parent), then one joining them.
    entries[-2]["supersedes"] = entries[-3]["supersedes"]
    entries[-1]["supersedes"] = [entries[-3]["id"], entries[-2]["id"]]
    entries[-1]["effect"] = "not_author"
    app = PercolabApp(node.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_project(pilot, app, pid)
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen)
                       and app.screen.loaded, "history")
        history = app.screen
        assert isinstance(history, HistoryScreen)
        assert history.table.row_count == HISTORY_PAGE
        assert history.before == 5
        assert "the newest 100 of 105" in text_of(history.query_one("#history-info"))
        marks = [str(history.table.get_row_at(r)[0]) for r in range(3)]
        assert marks == ["⑃", "⑂", "⑂"], marks
        assert "not an author" in text_of(history.query_one(DiffView))
        await pilot.press("o")
        await wait_for(pilot, lambda: history.table.row_count == HISTORY_PAGE + 5, "older")
        assert history.before is None
        assert history.table.get_row_at(0)[0] is not None  # newest still on top
        assert history.selected is not None and history.selected["id"] == entries[-1]["id"]


def test_render_changes_diffs_each_kind_of_field() -> None:
    entry = {
        "author_name": "Ada", "attribution": "member", "ts": 0, "effect": "applied",
        "note": "welded", "supersedes": ["a", "b"],
        "changes": {
            "body": {"old": "one\ntwo\nthree\n", "new": "one\n2\nthree\n"},
            "needs": {"old": ["wood", "glue"], "new": ["wood", "a welder"]},
            "coauthors": {"old": [], "new": ["c" * 64]},
            "stage": {"old": "idea", "new": "prototype"},
            "licence": {"old": "", "new": "CC-BY-4.0"},
            "colour": {"old": None, "new": "red"},  # a field a later release made revisable
        },
    }
    text = render_changes(entry, Formatter(), {"c" * 64: "Carol"}).plain
    assert "Ada" in text and "applied" in text and "“welded”" in text
    assert "joins 2 branches" in text
    assert "-two" in text and "+2" in text and "@@" in text
    assert "- glue" in text and "+ a welder" in text and "  wood" in text
    assert "+ Carol" in text
    assert "idea → prototype" in text and "(none) → CC-BY-4.0" in text
    assert "colour" in text and "red" in text
    long = {"changes": {"body": {"old": "", "new": "\n".join(map(str, range(1000)))}}}
    assert "more diff lines not shown" in render_changes(long, Formatter()).plain


def test_branch_marks() -> None:
    entries = [{"id": "r1", "supersedes": ["p"]}, {"id": "r2", "supersedes": ["r1"]},
               {"id": "r3", "supersedes": ["r1"]}, {"id": "r4", "supersedes": ["r2", "r3"]}]
    assert branch_marks(entries) == {"r1": "", "r2": "⑂", "r3": "⑂", "r4": "⑃"}
