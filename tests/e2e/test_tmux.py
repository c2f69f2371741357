"""End to end in a real terminal: two `percolab tui` programs in tmux on two loopback nodes.

A project composed purely by keystrokes in A's TUI appears, by push, in B's TUI. Then, still by
keystrokes in A: edit it (title, stage and a need: a revision), read the history's diff, pledge
"I can build it" on the new need; B opens the project and shows the same revised project with
the pledge under its need, and forks it into B's own lab (the fork names its origin).
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
        b.call("lab_create", name="atelier-b", description="B's own lab, to fork into")
        assert any(x["name"] == "shared-lab" for x in b.call("lab_list")), "lab not on B"
        topic = lab_topic(bytes.fromhex(lab))
        wait_until(lambda: _meshed(a, topic) and _meshed(b, topic), MESH_TIMEOUT_S,
                   "A and B to share the lab's gossip mesh")  # fmt: skip

        for name, node in (("tui-a", a), ("tui-b", b)):
            term.start(name, [PERCOLAB, "--data-dir", str(node.data_dir), "tui"])
        term.wait_text("tui-a", "atelier-a", UI_TIMEOUT_S)
        term.wait_text("tui-b", "atelier-b", UI_TIMEOUT_S)
        for name in ("tui-a", "tui-b"):  # the app fills the real terminal (footer at the bottom)
            lines = term.capture(name).splitlines()
            assert len(lines) == term.height and "f5 Refresh" in lines[-1], term.capture(name)

        # B: open the shared lab's project list (after atelier-b) and wait for the empty page.
        term.keys("tui-b", "Down")
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
        term.keys("tui-a", "C-s")
        term.wait_for("tui-a", lambda p: "Project posted" in p and "Post a project" not in p,
                      "the form to close after posting", UI_TIMEOUT_S)  # fmt: skip
        assert title in term.capture("tui-a")

        pane_b = term.wait_text("tui-b", title, PUSH_TIMEOUT_S)
        assert "1 new" in pane_b, pane_b  # pushed rows are badged on B
        assert "1-1 of 1" in pane_b, pane_b

        revise_history_and_pledge(term, title)
        # B: the same project, revised, with the pledge under its need (gossiped objects).
        term.keys("tui-b", "Enter")
        term.wait_for("tui-b", lambda p: f"{title} v2" in p and "Stage: prototype" in p
                      and "I can build it" in p, "the revision and the pledge on B",
                      PUSH_TIMEOUT_S)  # fmt: skip
        # B forks it into its own lab: the new project names its origin.
        term.keys("tui-b", "f")
        term.wait_for("tui-b", lambda p: "The lab: enter opens" in p and "atelier-b" in p,
                      "the fork form with B's labs", UI_TIMEOUT_S)  # fmt: skip
        term.keys("tui-b", "C-s")
        pane_b = term.wait_for("tui-b", lambda p: "Forked" in p and "in atelier-b" in p
                               and f"forked from {title} v2" in p, "the fork, with its origin",
                               UI_TIMEOUT_S)  # fmt: skip
    except BaseException:
        print(term.panes())
        raise
    finally:
        term.close()
        for n in (a, b):
            n.stop()


def revise_history_and_pledge(term: Tmux, title: str) -> None:
    """In A's TUI, on the projects page that lists ``title``: open it, edit it, read the
    history's diff, pledge on the need the edit added. Keys that move the focus are followed
    by a wait for the form's help line of the field they lead to: keys sent at once would
    all reach the field focused when they arrive."""
    term.keys("tui-a", "Enter")
    term.wait_text("tui-a", "Stage: idea", UI_TIMEOUT_S)
    term.keys("tui-a", "e")
    term.wait_text("tui-a", "Title: the project's name", UI_TIMEOUT_S)
    term.type("tui-a", " v2")  # the cursor is at the end of the title
    term.wait_text("tui-a", f"{title} v2", UI_TIMEOUT_S)
    term.keys("tui-a", "Enter")  # Enter moves to the next field (summary), it does not save
    term.wait_text("tui-a", "Summary: one line", UI_TIMEOUT_S)
    term.keys("tui-a", "Enter")
    term.wait_text("tui-a", "Stage: enter opens the list", UI_TIMEOUT_S)
    term.keys("tui-a", "Enter")  # opens the stage's list
    term.wait_text("tui-a", "then enter to choose", UI_TIMEOUT_S)
    term.type("tui-a", "proto")  # type to search in it
    term.keys("tui-a", "Enter")
    term.wait_for("tui-a", lambda p: "Stage: enter opens the list" in p and "prototype" in p,
                  "prototype chosen", UI_TIMEOUT_S)  # fmt: skip
    term.keys("tui-a", "Tab")  # the needs
    term.wait_text("tui-a", "Needs: what the project lacks", UI_TIMEOUT_S)
    term.type("tui-a", "a welder")
    pane = term.wait_text("tui-a", "a welder", UI_TIMEOUT_S)
    assert "Needs: what the project lacks" in pane, pane  # the form is open: Enter saved nothing
    term.keys("tui-a", "C-s")
    term.wait_for("tui-a", lambda p: "Revision sent" in p and "Needs: what the" not in p,
                  "the revision to be saved", UI_TIMEOUT_S)  # fmt: skip
    term.wait_for("tui-a", lambda p: f"{title} v2" in p and "Stage: prototype" in p,
                  "the revised project", UI_TIMEOUT_S)  # fmt: skip

    term.keys("tui-a", "h")
    pane = term.wait_for("tui-a", lambda p: "idea → prototype" in p, "the history's diff",
                         UI_TIMEOUT_S)  # fmt: skip
    assert "applied" in pane and f"{title} → {title} v2" in pane, pane
    assert "+ a welder" in pane, pane
    term.keys("tui-a", "Escape")
    term.wait_text("tui-a", "Needs (no pledge yet)", UI_TIMEOUT_S)

    term.keys("tui-a", "p")
    term.wait_text("tui-a", "What you offer: enter opens the list", UI_TIMEOUT_S)
    term.keys("tui-a", "Enter")  # the type's list: I'd use it, I can build it, …
    term.wait_text("tui-a", "then enter to choose", UI_TIMEOUT_S)
    term.keys("tui-a", "Down", "Enter")
    term.wait_for("tui-a", lambda p: "What you offer: enter" in p and "I can build it" in p,
                  "I can build it chosen", UI_TIMEOUT_S)  # fmt: skip
    term.keys("tui-a", "Tab")
    term.wait_text("tui-a", "The need it answers: enter", UI_TIMEOUT_S)
    term.keys("tui-a", "Enter")  # the need's list: (no particular need), a welder
    term.wait_text("tui-a", "then enter to choose", UI_TIMEOUT_S)
    term.keys("tui-a", "Down", "Enter")
    term.wait_text("tui-a", "The need it answers: enter", UI_TIMEOUT_S)
    term.keys("tui-a", "Tab")
    term.wait_text("tui-a", "Note: a few words", UI_TIMEOUT_S)
    term.type("tui-a", "TIG welder on Saturdays")
    term.wait_text("tui-a", "TIG welder on Saturdays", UI_TIMEOUT_S)
    term.keys("tui-a", "C-s")
    pane = term.wait_for("tui-a", lambda p: "Pledge sent" in p and "What you offer" not in p
                         and "▸ a welder  1 pledge" in p, "the pledge under its need",
                         UI_TIMEOUT_S)  # fmt: skip
    assert "I can build it" in pane and "TIG welder on Saturdays" in pane, pane
