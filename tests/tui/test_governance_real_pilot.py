"""The newcomer's path end to end in the TUI across REAL nodes (issue 24 part 2): three
`percolab node` processes on loopback. Alice (node A) creates a members-only lab and admits
Carol (node C); Bob (node B), a newcomer, posts in it. His post reaches A and C but waits in
the queue there (not listed), and B lists it marked queued. Alice's app opens the lab, presses
`Q`, sees Bob's post and vouches for him (a steward's vouch admits at once): the post shows
on her projects page, and `projects` on B and C lists it as shown.

The same path over RPC only is tests/integration/test_governance_nodes.py; against a fake
node and a single real node, tests/tui/test_governance_pilot.py."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, cast

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from tests.integration.nodes import NodeProc, wait_until
from tests.integration.test_governance_nodes import listed, role
from tests.tui.helpers import wait_for
from tests.tui.test_governance_pilot import SIZE, highlight, options
from tui.app import PercolabApp
from tui.screens.lab_queue import LabQueueScreen
from tui.screens.labs import LabsScreen
from tui.screens.projects import ProjectsScreen

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

TIMEOUT_S = 90.0  # gossip between three nodes on a loaded machine


def moderation(node: NodeProc, lab: str, pid: str) -> str | None:
    """How `projects` on ``node`` lists ``pid`` (None: not listed)."""
    view: dict[str, Any] | None = listed(node, lab).get(pid)
    return None if view is None else str(view["moderation"])


def shown(node: NodeProc, lab: str, pid: str) -> bool:
    return moderation(node, lab, pid) == "shown"


@pytest.mark.timeout(300)
async def test_newcomer_post_queued_then_vouched_on_every_node(tmp_path: Path) -> None:
    a, b, c = (NodeProc(tmp_path / n, n) for n in ("Alice", "Bob", "Carol"))
    nodes = [a, b, c]
    try:
        for n in nodes:
            n.init()
        a.start()
        b.start(bootstrap=[a.addr()])
        c.start(bootstrap=[a.addr()])
        bob, carol = b.call("whoami")["member"], c.call("whoami")["member"]
        lab = a.call("lab_create", name="fablab")  # members-only: the default
        for n in (b, c):
            n.call("lab_follow", lab=lab)
        a.call("lab_admit", lab=lab, member=carol)
        wait_until(lambda: role(c, lab) == "member", TIMEOUT_S, "Carol a member on her node")
        wait_until(lambda: b.find(lab), TIMEOUT_S, "the lab on Bob's node")
        assert role(b, lab) is None

        # ---- Bob, a newcomer, posts: queued on A and C, his own marked queued on B --------
        pid = b.call("post", lab=lab, title="Bob's bench", summary="oak")
        assert moderation(b, lab, pid) == "queued"
        for n in (a, c):
            wait_until(partial(n.find, pid), TIMEOUT_S, f"Bob's post on {n.name}'s node")
            assert pid not in listed(n, lab)
        wait_until(lambda: [o["id"] for o in a.call("queue", lab=lab)["objects"]] == [pid],
                   TIMEOUT_S, "Bob's post in the lab's queue on A")  # fmt: skip

        # ---- Alice's app: the queue, a vouch, the post listed -----------------------------
        app = PercolabApp(a.data_dir / "node.sock")
        async with app.run_test(size=SIZE) as running:
            pilot = cast(Pilot[object], running)
            await wait_for(pilot, lambda: isinstance(app.screen, LabsScreen)
                           and app.screen.table.row_count == 1
                           and "waiting" in str(app.screen.table.get_row_at(0)[4]),
                           "the lab says something waits", TIMEOUT_S)  # fmt: skip
            labs = app.screen
            assert isinstance(labs, LabsScreen)
            assert str(labs.table.get_row_at(0)[5]) == "steward"
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ProjectsScreen)
                           and "waiting" in str(app.screen.query_one(
                               "#projects-info", Static).render()), "the lab's page")
            projects = app.screen
            assert isinstance(projects, ProjectsScreen)
            table = projects.table
            assert pid not in table.projects  # queued: not listed for Alice
            await pilot.press("Q")
            await wait_for(pilot, lambda: isinstance(app.screen, LabQueueScreen)
                           and pid in app.screen.objects, "Bob's post in the queue")
            queue = app.screen
            assert isinstance(queue, LabQueueScreen)
            assert "Bob's bench" in options(queue, "#queue-list")[pid]
            await highlight(pilot, queue, "#queue-list", pid)
            await pilot.press("v")  # a steward's vouch admits Bob at once
            await wait_for(pilot, lambda: not queue.objects, "the queue empty", TIMEOUT_S)
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is projects
                           and pid in table.projects, "Bob's post on Alice's page")
            row = str(table.get_row(pid)[1])
            assert "Bob's bench" in row and not row.startswith("⏳")
        assert moderation(a, lab, pid) == "shown"

        # ---- the vouch reaches the other nodes: shown there too ---------------------------
        for n in (b, c):
            wait_until(partial(shown, n, lab, pid), TIMEOUT_S,
                       f"Bob's post shown on {n.name}'s node")  # fmt: skip
        assert role(b, lab) == "member"
        vouchers = [e for e in a.call("lab_log", lab=lab, limit=50)["entries"]
                    if e["act"] == "vouch"]  # fmt: skip
        assert [(e["subject"]["member"], e["effect"]) for e in vouchers] == [(bob, "applied")]
    finally:
        for n in nodes:
            n.stop()
