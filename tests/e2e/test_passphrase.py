"""The passphrase typed into the TUI, in a real terminal: `percolab` never prompts on the
terminal any more. On a new data directory its onboarding form chooses the passphrase (member
key encrypted); at the next start its node starts locked, the unlock screen refuses a wrong
passphrase and takes the right one, and posting works afterwards."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from node.keys import keyfile
from tests.e2e.test_clean_screen import CONFIG
from tests.e2e.tmux import Tmux
from tests.integration.nodes import PERCOLAB, wait_until

pytestmark = pytest.mark.slow

UI_TIMEOUT_S = 30.0
KDF_TIMEOUT_S = 30.0
PASS = "pedal power 42"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
NO_SOURCE = {"PERCOLAB_PASSPHRASE": ""}  # whatever the test's environment holds


def _focused_empty(term: Tmux, name: str, placeholder: str) -> bool:
    """The empty input showing `placeholder` has the focus: its cursor is drawn over the
    placeholder's first character, so with colours kept the placeholder is no longer one run
    of text (it is, unfocused)."""
    raw = term.tmux("capture-pane", "-p", "-e", "-t", name, check=False)
    for line in raw.splitlines():
        if placeholder in ANSI.sub("", line):
            return placeholder not in line
    return False


def test_passphrase_chosen_in_onboarding_then_typed_to_unlock(tmp_path: Path) -> None:
    data = tmp_path / "home"
    data.mkdir()
    (data / "config.toml").write_text(CONFIG)
    term = Tmux()
    try:
        term.start("first", [PERCOLAB, "--data-dir", str(data)], NO_SOURCE)
        term.wait_text("first", "Welcome to Percolab", UI_TIMEOUT_S)
        # Each step waits for what it shows: keys sent at once reach the app as one read,
        # which it takes for a paste, and keys typed ahead of a focus change land in the
        # field that had the focus.
        term.type("first", "Zoe")
        term.wait_text("first", "Zoe", UI_TIMEOUT_S)
        for field in ("About you (optional)", "Passphrase"):
            term.keys("first", "Tab")
            wait_until(lambda f=field: _focused_empty(term, "first", f), UI_TIMEOUT_S,
                       f"the focus on {field!r}")  # fmt: skip
        term.type("first", PASS)
        term.wait_text("first", "•" * len(PASS), UI_TIMEOUT_S)  # masked
        term.keys("first", "Tab")
        wait_until(lambda: _focused_empty(term, "first", "Repeat the passphrase"),
                   UI_TIMEOUT_S, "the focus on the repeated passphrase")  # fmt: skip
        term.type("first", PASS)
        term.wait_for("first", lambda p: p.count("•" * len(PASS)) == 2, "both typed",
                      UI_TIMEOUT_S)  # fmt: skip
        assert PASS not in term.capture("first")
        term.keys("first", "Enter")
        term.wait_for("first", lambda p: "Labs — Zoe" in p and "Welcome to" not in p,
                      "the identity to be created", KDF_TIMEOUT_S)  # fmt: skip
        term.keys("first", "c")
        term.wait_text("first", "Create a lab", UI_TIMEOUT_S)
        term.type("first", "atelier")
        term.wait_text("first", "atelier", UI_TIMEOUT_S)
        term.keys("first", "C-s")
        term.wait_text("first", "Lab created", UI_TIMEOUT_S)
        term.keys("first", "q")
        wait_until(lambda: term.pane_dead("first"), UI_TIMEOUT_S, "the first app to quit")
        assert keyfile.is_encrypted(data / "member.keys")

        term.start("second", [PERCOLAB, "--data-dir", str(data)], NO_SOURCE)
        pane = term.wait_text("second", "Unlock your member key", UI_TIMEOUT_S)
        assert "Passphrase for" not in pane  # nothing asked on the terminal
        term.wait_text("second", "atelier", UI_TIMEOUT_S)  # reading works behind it
        wrong = "not the passphrase"
        term.type("second", wrong)
        term.wait_text("second", "•" * len(wrong), UI_TIMEOUT_S)
        term.keys("second", "Enter")
        term.wait_text("second", "Wrong passphrase", KDF_TIMEOUT_S)
        term.type("second", PASS)
        term.wait_for("second", lambda p: "•" * len(PASS) in p and "•" * len(wrong) not in p,
                      "the passphrase typed again", UI_TIMEOUT_S)  # fmt: skip
        term.keys("second", "Enter")
        term.wait_for("second", lambda p: "Unlock your member key" not in p,
                      "the unlock screen to close", KDF_TIMEOUT_S)  # fmt: skip
        term.keys("second", "Enter")
        term.wait_text("second", "atelier — newest first", UI_TIMEOUT_S)
        term.keys("second", "c")
        term.wait_text("second", "Post a project", UI_TIMEOUT_S)
        title = f"Signed after unlock {int(time.time()) % 10_000}"
        term.type("second", title)
        term.wait_text("second", title, UI_TIMEOUT_S)
        term.keys("second", "C-s")
        term.wait_for("second", lambda p: "Project posted" in p and "Post a project" not in p,
                      "the project to be posted", UI_TIMEOUT_S)  # fmt: skip
        assert title in term.capture("second")
        term.keys("second", "q")
        wait_until(lambda: term.pane_dead("second"), UI_TIMEOUT_S, "the second app to quit")
    except BaseException:
        print(term.panes())
        raise
    finally:
        term.close()
