"""Pilot tests of a lab's shared machine against a REAL `percolab node` (issue 22 part 6):
a member added with `percolab members add` signs in, reads, switches, and a restart forgets the
seat; a member in a seat adds a device. The fake-node tests are tests/tui/test_members_pilot.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Digits, Input

from tests.integration.nodes import NodeProc, cli, wait_until
from tests.tui.helpers import wait_for
from tests.tui.real_node import RealNode
from tests.tui.test_members_pilot import (
    BOB_PASS,
    KDF_TIMEOUT_S,
    SIZE,
    START_TIMEOUT_S,
    choose,
    labs_row,
    picker,
)
from tui.app import PercolabApp
from tui.screens.devices import DevicesScreen, PairingScreen
from tui.screens.labs import LabsScreen
from tui.screens.project import ProjectScreen
from tui.screens.projects import ProjectsScreen
from tui.screens.unlock import WRONG_PASSPHRASE, UnlockScreen

pytestmark = pytest.mark.anyio


async def test_real_shared_machine(tmp_path: Path) -> None:
    """The same against a REAL node (`percolab members add`): Bob signs in, follows a lab
    Alice posts in, reads it; switches to Alice; a node restart forgets the seat."""
    real = RealNode(tmp_path / "data")
    real.cli("init", "--unencrypted-key", "--name", "Alice")
    real.cli("lab", "create", "fablab")
    real.cli("members", "add", "bob", "--name", "Bob", env={"PERCOLAB_PASSPHRASE": BOB_PASS})
    real.start()
    try:
        app = PercolabApp(real.socket_path)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: picker(app) is not None, "member picker")
            assert [s["label"] for s in app.seats] == ["main", "bob"]
            await choose(pilot, app, "bob")
            await wait_for(pilot, lambda: isinstance(app.screen, UnlockScreen), "passphrase")
            unlock = app.screen
            await pilot.press(*"not it", "enter")
            await wait_for(pilot, lambda: WRONG_PASSPHRASE in str(
                unlock.query_one("#unlock-error").render()), "wrong passphrase", KDF_TIMEOUT_S)
            await pilot.press(*BOB_PASS, "enter")
            await wait_for(pilot, lambda: app.me is not None and app.me["name"] == "Bob",
                           "Bob in", KDF_TIMEOUT_S)  # fmt: skip
            assert app.sub_title == "Bob"
            await wait_for(pilot, lambda: isinstance(app.screen, LabsScreen)
                           and labs_row(app, "fablab")[0] == "", "labs as Bob")  # not followed
            await pilot.press("f")
            await wait_for(pilot, lambda: labs_row(app, "fablab")[0] == "★", "Bob follows")

            real.cli("post", "--lab", "fablab", "--title", "Alice's dryer")  # as main
            await wait_for(pilot, lambda: "1 unread" in labs_row(app, "fablab")[4],
                           "unread for Bob")  # fmt: skip
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ProjectsScreen)
                           and app.screen.table.row_count == 1, "fablab's projects")
            projects = app.screen
            assert isinstance(projects, ProjectsScreen)
            assert str(projects.table.get_row_at(0)[0]) == "●"
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen)
                           and app.screen.loaded, "project open")
            pid = app.screen.project_id
            await wait_for(pilot, lambda: real.cli("--as", "bob", "show", pid, env={
                "PERCOLAB_PASSPHRASE": BOB_PASS})["project"]["unread"] is False,
                "read by Bob", KDF_TIMEOUT_S)  # fmt: skip
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is projects
                           and str(projects.table.get_row_at(0)[0]) == "", "no mark")

            await pilot.press("m")
            await choose(pilot, app, "main")
            await wait_for(pilot, lambda: app.me is not None and app.me["name"] == "Alice",
                           "Alice in")  # fmt: skip
            assert app.sub_title == "Alice" and app.client.seat is not None

            real.stop()
            await wait_for(pilot, lambda: not app.connected, "node gone")
            real.start()
            await wait_for(pilot, lambda: picker(app) is not None, "picker after restart",
                           START_TIMEOUT_S)  # fmt: skip
            assert app.client.seat is None and app.me is None
    finally:
        real.stop()


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_member_in_a_seat_adds_a_device(tmp_path: Path) -> None:
    """REAL nodes: Bob, signed in on a shared machine, adds a device from Profile → Devices;
    his root certifies it (the app's pairing calls carry his seat), not the main member's."""
    shared, new = NodeProc(tmp_path / "s", "Sam"), NodeProc(tmp_path / "n", "n")
    shared.init()
    cli(shared.data_dir, "members", "add", "bob", "--name", "Bob", "--unencrypted-key")
    (tmp_path / "n").mkdir()
    (tmp_path / "n" / "config.toml").write_text("[identity]\nunencrypted = true\n")
    try:
        shared.start()
        new.start()
        shared.call("connect", addr=new.addr())
        shown = new.call("device_join", name="bob's phone")
        app = PercolabApp(shared.data_dir / "node.sock", redact_volatile=True)
        async with app.run_test(size=SIZE) as pilot:
            await choose(pilot, app, "bob")  # unencrypted: signed in at once
            await wait_for(pilot, lambda: app.me is not None and app.me["name"] == "Bob",
                           "Bob in", START_TIMEOUT_S)  # fmt: skip
            await pilot.press("5")
            await pilot.press("v")
            await wait_for(pilot, lambda: isinstance(app.screen, DevicesScreen)
                           and app.screen.query_one(DataTable).row_count == 1, "Bob's device")
            await pilot.press("a")
            await wait_for(pilot, lambda: isinstance(app.screen, PairingScreen), "the form")
            app.screen.query_one("#pair-input", Input).value = shown["code"]
            await pilot.press("enter")
            await wait_for(pilot, lambda: str(app.screen.query_one("#pair-sas", Digits).value)
                           == new.call("pairing_status").get("sas"), "the numbers", 20)
            new.call("pairing_confirm", accept=True)
            await pilot.click("#sas-yes")
            await wait_for(pilot, lambda: "is now certified" in str(
                app.screen.query_one("#pair-state").render()), "the outcome", 20)
        bob = shared.call("seats")[1]["member"]
        wait_until(lambda: new.call("pairing_status")["state"] == "done", 20, "n paired")
        assert new.call("whoami")["member"] == bob != shared.call("whoami")["member"]
    finally:
        shared.stop()
        new.stop()
