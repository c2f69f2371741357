"""Node processes for the commands: spawning `percolab node` as a child (tied to its parent),
waiting for its control socket, stopping it. Used by launch.py (the app's embedded node) and
demo.py (three nodes)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from node.config import ConfigError

PR_SET_PDEATHSIG = 1  # linux/prctl.h
# How long `percolab` waits for its embedded node's control socket.
NODE_START_TIMEOUT_S = 30.0


def socket_answers(path: Path) -> bool:
    import socket

    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def wait_for_socket(path: Path, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ConfigError(f"the node exited at start (code {proc.returncode}); see its log")
        if socket_answers(path):
            return
        time.sleep(0.05)
    raise ConfigError(f"the node did not open {path} within {timeout:.0f} s")


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the parent dies (Linux prctl), so an
    embedded node never outlives its app, even when a closed terminal kills the app with
    SIGHUP before its `finally` runs."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: run_app's finally still stops it
        pass


def spawn_node(
    data_dir: Path, extra: list[str], *, tied: bool = True
) -> subprocess.Popen[bytes]:
    """Start `percolab node` for `data_dir` as a child process (its output to its log).
    `tied`: the node stops when this process dies."""
    cmd = [sys.executable, "-m", "node", "--data-dir", str(data_dir), "node", *extra]
    return subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, preexec_fn=_die_with_parent if tied else None,
    )  # fmt: skip


def stop_node(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
