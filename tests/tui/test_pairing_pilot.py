"""The Devices screen against two REAL nodes: from the profile screen, add a device by typing
the code a new device shows (its node driven over RPC), answer the numbers with the Yes
button; the new device then appears in the table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Digits, Input

from tests.integration.nodes import NodeProc, wait_until
from tests.tui.helpers import wait_for
from tui.app import PercolabApp
from tui.screens.devices import DevicesScreen, PairingScreen
from tui.widgets.pairing import PairingView

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(120)]
SIZE = (110, 44)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[NodeProc, NodeProc]]:
    a, b = NodeProc(tmp_path / "a", "ada"), NodeProc(tmp_path / "b", "b")
    a.init()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.toml").write_text("[identity]\nunencrypted = true\n")
    try:
        a.start()
        b.start()
        a.call("connect", addr=b.addr())
        yield a, b
    finally:
        a.stop()
        b.stop()


def _status(node: NodeProc) -> dict[str, Any]:
    st: dict[str, Any] = node.call("pairing_status")
    return st


async def test_add_a_device_from_the_devices_screen(nodes: tuple[NodeProc, NodeProc]) -> None:
    a, b = nodes
    shown = b.call("device_join", name="lab laptop")
    app = PercolabApp(a.data_dir / "node.sock", redact_volatile=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.me is not None, "the identity")
        await pilot.press("5")
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, DevicesScreen)
                       and app.screen.query_one(DataTable).row_count == 1, "the device list")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, PairingScreen), "the pairing form")
        app.screen.query_one("#pair-input", Input).value = shown["code"]
        await pilot.press("enter")
        await wait_for(pilot, lambda: str(app.screen.query_one("#pair-sas", Digits).value)
                       == _status(b).get("sas"), "the numbers, as B shows them", 20)
        assert app.screen.query_one(PairingView).query_one("#pair-sas-row").display
        b.call("pairing_confirm", accept=True)
        await pilot.click("#sas-yes")
        await wait_for(pilot, lambda: "Paired: device 'lab laptop'" in str(
            app.screen.query_one("#pair-state").render()), "the outcome", 20)
        wait_until(lambda: _status(b)["state"] == "done", 10, "B paired")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DevicesScreen)
                       and app.screen.query_one(DataTable).row_count == 2, "two devices")
