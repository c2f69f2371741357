"""The Queue screen in pages (issue 24, docs/rpc.md `queue`): the first page of waiting posts,
"N of TOTAL waiting", and `m` for the next page (against tests/tui/governance_fake.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tui.governance_fake import ERIN, GovNode
from tests.tui.helpers import wait_for
from tests.tui.test_governance_pilot import SIZE, info, lab_id, node, open_lab
from tui.app import PercolabApp
from tui.screens import lab_queue
from tui.screens.lab_queue import LabQueueScreen

pytestmark = pytest.mark.anyio
__all__ = ["node"]  # the fixture


async def test_queue_first_page_then_more(node: GovNode, monkeypatch: Any) -> None:
    monkeypatch.setattr(lab_queue, "PAGE", 2)
    lab = lab_id(node, "fablab")
    for title in ("Cheap clocks", "Cheap radios"):  # with "Cheap watches": three waiting
        node.add_project(lab, title, author=(ERIN, "Erin"))
    app = PercolabApp(node.socket_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_lab(pilot, app, node, "fablab")
        await pilot.press("Q")
        await wait_for(pilot, lambda: isinstance(app.screen, LabQueueScreen)
                       and app.screen.objects, "queue listed")  # fmt: skip
        screen = app.screen
        assert isinstance(screen, LabQueueScreen)
        assert len(screen.objects) == 2 and screen.next is not None
        assert "3 of 4 waiting" in info(screen, "#queue-info")  # 2 posts of 3, 1 newcomer
        assert "m: more" in info(screen, "#queue-info")
        await pilot.press("m")
        await wait_for(pilot, lambda: len(screen.objects) == 3, "next page")
        assert "4 of 4 waiting" in info(screen, "#queue-info") and screen.next is None
        assert node.sent("queue")[-1]["cursor"] == "2"
