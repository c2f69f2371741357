"""Drive real programs in a real terminal: a private tmux server (``-L``), fixed-size panes.

Every wait polls ``capture-pane`` against a deadline; nothing sleeps and hopes. The server is
private to the test (its own socket name), so a user's tmux is never touched.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence

TMUX = shutil.which("tmux") or "/usr/bin/tmux"
WIDTH, HEIGHT = 120, 40


def clean_env() -> dict[str, str]:
    """The environment for the tmux server (which every pane inherits), without what would
    lie to programs about their terminal: pytest exports COLUMNS=80/LINES=24 (a Textual app
    then draws 80x24 in a 120x40 pane), and TMUX/TEXTUAL_*/PYTEST_* do not belong there."""
    drop = ("COLUMNS", "LINES", "TMUX", "TMUX_PANE")
    return {
        k: v for k, v in os.environ.items()
        if k not in drop and not k.startswith(("PYTEST_", "TEXTUAL_"))
    }  # fmt: skip


class Tmux:
    """A private tmux server; one session per program."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT) -> None:
        self.socket = f"percolab-e2e-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.width, self.height = width, height
        self.sessions: list[str] = []

    def tmux(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            [TMUX, "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True, text=True, timeout=10, check=False, env=clean_env(),
        )  # fmt: skip
        if check and done.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        """Run ``argv`` in a new detached session ``name`` with TERM=xterm-256color."""
        env = {"TERM": "xterm-256color", "COLORTERM": "truecolor", **(env or {})}
        assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        # `remain-on-exit` keeps the pane (and its last screen) if the program dies, so a
        # failure still shows what it printed.
        command = f"env {assigns} {shlex.join(argv)}"
        self.tmux("new-session", "-d", "-s", name, "-x", str(self.width),
                  "-y", str(self.height), command)  # fmt: skip
        self.tmux("set-option", "-t", name, "remain-on-exit", "on")
        self.sessions.append(name)

    def keys(self, name: str, *keys: str) -> None:
        """tmux key names (``Enter``, ``Escape``, ``C-s``…) or single characters."""
        self.tmux("send-keys", "-t", name, *keys)

    def type(self, name: str, text: str) -> None:
        """Literal text (no key-name lookup)."""
        self.tmux("send-keys", "-t", name, "-l", text)

    def capture(self, name: str) -> str:
        return self.tmux("capture-pane", "-p", "-t", name, check=False)

    def pane_dead(self, name: str) -> bool:
        out = self.tmux("display-message", "-p", "-t", name, "#{pane_dead}", check=False)
        return out.strip() == "1"

    def wait_for(
        self, name: str, predicate: Callable[[str], bool], what: str, timeout: float,
    ) -> str:  # fmt: skip
        """Poll the pane until ``predicate(text)``; raise with the pane on timeout/death."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.capture(name)
            if predicate(text):
                return text
            if self.pane_dead(name):
                text = self.capture(name)
                if predicate(text):  # it may have died right after the first look
                    return text
                raise AssertionError(f"{name}: program exited waiting for {what}:\n{text}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}: timed out after {timeout:.0f} s waiting for "
                                     f"{what}; pane:\n{text}")  # fmt: skip
            time.sleep(0.1)

    def wait_text(self, name: str, text: str, timeout: float = 20.0) -> str:
        return self.wait_for(name, lambda pane: text in pane, repr(text), timeout)

    def panes(self) -> str:
        """Every session's pane, for a failure report."""
        parts = []
        for name in self.sessions:
            size = self.tmux(
                "display-message", "-p", "-t", name, "#{pane_width}x#{pane_height}", check=False
            ).strip()
            parts.append(f"----- pane {name} ({size}) -----\n{self.capture(name)}")
        return "\n".join(parts)

    def close(self) -> None:
        self.tmux("kill-server", check=False)
        self.sessions.clear()
