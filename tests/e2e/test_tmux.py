"""End to end in a real terminal: two `percolab tui` programs in tmux on two loopback nodes.

A project composed purely by keystrokes in A's TUI appears, by push, in B's TUI.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from protocols.topics import lab_topic
from tests.e2e.tmux import Tmux
from tests.integration.nodes import PERCOLAB, NodeProc, wait_until

pytestmark = pytest.mark.slow

MESH_TIMEOUT_S = 30.0
UI_TIMEOUT_S = 20.0
PUSH_TIMEOUT_S = 20.0


def _meshed(node: NodeProc, topic: str) -> bool:
    st = node.call("status")
    return topic in st["topics"] and st.get("mesh", {}).get(topic, 0) >= 1


def test_project_typed_in_tui_a_appears_in_tui_b(tmp_path: Path) -> None:
    a = NodeProc(tmp_path / "a", "Ada")
    b = NodeProc(tmp_path / "b", "Bob")
    term = Tmux()
    try:
        for n in (a, b):
            n.init()
            n.start()
        b.call("connect", addr=a.addr())
        # Two labs on A so that reaching the shared one takes navigation (followed, by name).
        a.call("lab_create", name="atelier-a", description="only on A")
        lab = a.call("lab_create", name="shared-lab", description="both nodes follow it")
        b.call("import_objects", objects=a.call("export", lab=lab)["objects"][:1])
        b.call("lab_follow", lab=lab)
        assert any(x["name"] == "shared-lab" for x in b.call("lab_list")), "lab not on B"
        topic = lab_topic(bytes.fromhex(lab))
        wait_until(lambda: _meshed(a, topic) and _meshed(b, topic), MESH_TIMEOUT_S,
                   "A and B to share the lab's gossip mesh")  # fmt: skip

        for name, node in (("tui-a", a), ("tui-b", b)):
            term.start(name, [PERCOLAB, "--data-dir", str(node.data_dir), "tui"])
        term.wait_text("tui-a", "atelier-a", UI_TIMEOUT_S)
        term.wait_text("tui-b", "shared-lab", UI_TIMEOUT_S)
        for name in ("tui-a", "tui-b"):  # the app fills the real terminal (footer at the bottom)
            lines = term.capture(name).splitlines()
            assert len(lines) == term.height and "f5 Refresh" in lines[-1], term.capture(name)

        # B: open the lab's project list (its only lab) and wait for the empty page.
        term.keys("tui-b", "Enter")
        term.wait_text("tui-b", "No projects yet", UI_TIMEOUT_S)

        # A: labs are atelier-a then shared-lab; move down, open, compose, type, submit.
        term.keys("tui-a", "Down")
        term.keys("tui-a", "Enter")
        term.wait_text("tui-a", "shared-lab — newest first", UI_TIMEOUT_S)
        term.keys("tui-a", "c")
        term.wait_text("tui-a", "Post a project", UI_TIMEOUT_S)
        title = f"Pedal-powered grain mill {int(time.time()) % 10_000}"
        term.type("tui-a", title)
        term.wait_text("tui-a", title, UI_TIMEOUT_S)  # echoed in the title field
        term.keys("tui-a", "Enter")
        term.wait_for("tui-a", lambda p: "Project posted" in p and "Post a project" not in p,
                      "the form to close after posting", UI_TIMEOUT_S)  # fmt: skip
        assert title in term.capture("tui-a")

        pane_b = term.wait_text("tui-b", title, PUSH_TIMEOUT_S)
        assert "1 new" in pane_b, pane_b  # pushed rows are badged on B
        assert "1-1 of 1" in pane_b, pane_b
    except BaseException:
        print(term.panes())
        raise
    finally:
        term.close()
        for n in (a, b):
            n.stop()
