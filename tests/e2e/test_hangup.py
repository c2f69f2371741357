"""Closing the terminal of `percolab` (SIGHUP) must stop the node it embedded.

`percolab` with no command starts its node in a child process in a new session
(`start_new_session=True`), so the hangup reaches only the TUI process, and Python's default
SIGHUP action ends it without running `run_app`'s `finally: stop_node(...)`. The child is
therefore tied to its parent (PR_SET_PDEATHSIG): it gets SIGTERM when the app dies.
"""

from __future__ import annotations

from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest

from tests.e2e.test_clean_screen import CONFIG, _alive
from tests.e2e.tmux import Tmux
from tests.integration.nodes import PERCOLAB, cli, wait_until

pytestmark = pytest.mark.slow

STOP_TIMEOUT_S = 15.0


def test_closing_the_terminal_stops_the_embedded_node(tmp_path: Path) -> None:
    data = tmp_path / "home"
    data.mkdir()
    (data / "config.toml").write_text(CONFIG)
    cli(data, "init", "--unencrypted-key", "--name", "Hugo")
    term = Tmux()
    node_pids: list[int] = []
    try:
        term.start("app", [PERCOLAB, "--data-dir", str(data)])
        term.wait_text("app", "Labs — Hugo", 30.0)
        app_pid = int(term.tmux("display-message", "-p", "-t", "app", "#{pane_pid}").strip())
        node_pids = [p.pid for p in psutil.Process(app_pid).children(recursive=True)]
        assert node_pids, "no embedded node child process"
        term.tmux("kill-session", "-t", "app")  # the terminal window closes: SIGHUP
        wait_until(lambda: not _alive(app_pid), STOP_TIMEOUT_S, "the TUI to exit on SIGHUP")
        wait_until(lambda: not any(_alive(p) for p in node_pids), STOP_TIMEOUT_S,
                   "the embedded node to stop with its terminal")  # fmt: skip
    finally:
        term.close()
        for pid in node_pids:  # only the processes this test started
            if _alive(pid):
                psutil.Process(pid).kill()
