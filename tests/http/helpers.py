"""A real node in a subprocess with its HTTP API, for the HTTP tests and the benchmark."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

PERCOLAB = [sys.executable, "-m", "node"]
# How long a node may take to start (imports libp2p, binds sockets) and to stop.
NODE_START_TIMEOUT_S = 60.0
NODE_STOP_TIMEOUT_S = 15.0
POLL_S = 0.1
T = TypeVar("T")


def percolab(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("PERCOLAB_HOME", None)
    return subprocess.run(
        [*PERCOLAB, "--data-dir", str(data_dir), *args],
        capture_output=True, text=True, check=check, env=env, timeout=120,
    )  # fmt: skip


def wait_for(fn: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll `fn` until it returns something other than None/False, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(POLL_S)


@dataclass
class RunningNode:
    data_dir: Path
    proc: subprocess.Popen[bytes]
    base: str  # http://127.0.0.1:PORT
    token: str
    status: dict[str, Any]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30.0)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(NODE_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_node(data_dir: Path, *extra: str) -> RunningNode:
    """Start `percolab node` on loopback with HTTP on a free port; wait until it answers."""
    env = dict(os.environ)
    env.pop("PERCOLAB_HOME", None)
    cmd = [*PERCOLAB, "--data-dir", str(data_dir), "node", "--listen", "/ip4/127.0.0.1/tcp/0",
           "--no-mdns", "--http", "127.0.0.1:0", *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)  # fmt: skip

    def ready() -> dict[str, Any] | None:
        if proc.poll() is not None:
            log = (data_dir / "node.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"node exited with {proc.returncode}:\n{log}")
        result = percolab(data_dir, "status", "--json", check=False)
        if result.returncode != 0:
            return None
        status: dict[str, Any] = json.loads(result.stdout)
        return status if status.get("running") and status.get("http") else None

    try:
        status = wait_for(ready, NODE_START_TIMEOUT_S, "the node's HTTP address in status")
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    token = (data_dir / "http.token").read_text().strip()
    return RunningNode(data_dir, proc, f"http://{status['http']}", token, status)
