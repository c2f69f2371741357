"""A REAL Percolab node for TUI tests: `percolab` CLI to seed, `percolab node` as a subprocess.

The node listens on loopback with mDNS off; its control socket is ``DIR/node.sock``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PERCOLAB = Path(sys.executable).with_name("percolab")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def node_env() -> dict[str, str]:
    """The environment without a passphrase source (the tests give one explicitly)."""
    return {k: v for k, v in os.environ.items()
            if k not in ("PERCOLAB_PASSPHRASE", "PERCOLAB_PASSPHRASE_FD")}


class RealNode:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-node.log"

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "node.sock"

    def cli(self, *args: str, env: dict[str, str] | None = None) -> Any:
        """Run one CLI command with --json; return its parsed output (or raw text)."""
        cmd = [str(PERCOLAB), "--data-dir", str(self.data_dir), "--json", *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False,
                              env={**node_env(), **(env or {})}, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr}")
        out = done.stdout.strip()
        try:
            return json.loads(out) if out else None
        except json.JSONDecodeError:
            return out

    def start(self, *extra: str) -> None:
        """`percolab node` with `extra` options (no terminal, no passphrase source)."""
        cmd = [str(PERCOLAB), "--data-dir", str(self.data_dir), "node",
               "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--no-http", *extra]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     env={**node_env(), "PYTHONUNBUFFERED": "1"})
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.socket_path.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited early: {self.log_path.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"node.sock did not appear within {START_TIMEOUT}s")
            time.sleep(0.05)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)


def seeded_node(data_dir: Path, *, extra_projects: int = 0) -> tuple[RealNode, dict[str, str]]:
    """An identity, two labs (one followed), projects with tags, a threaded discussion.

    Returns the node (not started) and the ids of what was created.
    """
    node = RealNode(data_dir)
    ids: dict[str, str] = {}
    node.cli("init", "--unencrypted-key", "--name", "Alice")
    node.cli("lab", "create", "fablab", "--description", "Fab lab of the Croix-Rousse",
             "--place", "Lyon")
    node.cli("lab", "create", "velo-club", "--description", "Bike repair co-op",
             "--place", "Grenoble")
    ids["dryer"] = _post(node, "fablab", "Solar fruit dryer", "Dry fruit with the sun",
                         "# Plan\n\n- build a box\n- paint it **black**\n", "prototype",
                         ["plywood", "a welder"], ["solar", "food"])
    ids["loom"] = _post(node, "fablab", "Open-source loom", "A loom anyone can build", "",
                        "idea", [], ["textile"])
    ids["cargo"] = _post(node, "velo-club", "Cargo bike from scrap", "Two old frames, one cargo",
                         "Welding plan to come.", "idea", ["frames"], ["bikes", "solar"])
    for i in range(extra_projects):
        _post(node, "fablab", f"Workshop {i:02d}", "", "", "", [], [])
    first = node.cli("comment", ids["dryer"], "--body", "What wood do you use?")
    ids["comment"] = str(first["id"] if isinstance(first, dict) else first)
    node.cli("comment", ids["dryer"], "--body", "Marine plywood, it survives the rain.",
             "--parent", ids["comment"])
    node.cli("lab", "unfollow", "velo-club")  # after posting in it (posting follows a lab)
    return node, ids


def _post(node: RealNode, lab: str, title: str, summary: str, body: str, stage: str,
          needs: list[str], tags: list[str]) -> str:
    args = ["post", "--lab", lab, "--title", title]
    if summary:
        args += ["--summary", summary]
    if body:
        args += ["--body", body]
    if stage:
        args += ["--stage", stage]
    for need in needs:
        args += ["--need", need]
    for tag in tags:
        args += ["--tag", tag]
    out = node.cli(*args)
    return str(out["id"] if isinstance(out, dict) else out)
