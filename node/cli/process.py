"""Node processes for the commands: spawning `percolab node` as a child (tied to its parent),
waiting for its control socket, stopping it. Used by launch.py (the app's embedded node) and
demo.py (three nodes)."""

from __future__ import annotations

import os
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
            raise ConfigError(node_exit_message(path.parent, proc.returncode))
        if socket_answers(path):
            return
        time.sleep(0.05)
    raise ConfigError(f"the node did not open {path} within {timeout:.0f} s")


def node_exit_message(data_dir: Path, code: int) -> str:
    """Why a node exited at start, in one line. A node killed by a signal (SIGBUS, SIGSEGV:
    LMDB met a damaged page through its map; check_data_file catches only what can be seen
    before mapping) gets its data file verified page by page with plain reads, so the line
    names the damage and what to do instead of a bare signal number."""
    if code >= 0:
        return f"the node exited at start (code {code}); see its log"
    from node.store.datafile import verify_data_file
    from node.store.errors import DATA_FILE, RESTORE_ADVICE

    name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
    data = data_dir / DATA_FILE
    problems = verify_data_file(data) if data.is_file() else None
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return f"the node died of {name}: {data} is damaged ({problems[0]}{more}): {RESTORE_ADVICE}"
    return f"the node died of {name} at start; see its log"


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
    data_dir: Path, extra: list[str], *, tied: bool = True, passphrase: str | None = None
) -> subprocess.Popen[bytes]:
    """Start `percolab node` for `data_dir` as a child process (its output to its log).
    `tied`: the node stops when this process dies. `passphrase`: handed to the child through
    an inherited pipe (PERCOLAB_PASSPHRASE_FD), never on its command line."""
    from node.keys.passphrase import child_env_with_passphrase

    cmd = [sys.executable, "-m", "node", "--data-dir", str(data_dir), "node", *extra]
    env = dict(os.environ)
    fds: tuple[int, ...] = ()
    if passphrase is not None:
        env, read_fd = child_env_with_passphrase(passphrase, env)
        fds = (read_fd,)
    try:
        return subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_die_with_parent if tied else None, env=env,
            pass_fds=fds,
        )  # fmt: skip
    finally:
        for fd in fds:
            os.close(fd)


def stop_node(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
