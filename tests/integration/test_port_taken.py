"""A node refuses a listen port that is taken (issue 21).

py-libp2p 0.8.1 listens with SO_REUSEPORT, so a second node used to bind the port of a first
one (the kernel then split incoming connections between the two), and a port held by another
program left a node running with ``listening on []``. Now: a taken address given with
--listen is one line on stderr and a non-zero exit; the default address (not given) moves to
another port, and the node says so.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from libp2p.crypto.ed25519 import create_new_key_pair

import p2p.host
from node.cli.backend import RpcBackend
from tests.integration.nodes import PERCOLAB, START_TIMEOUT_S, NodeProc, wait_until
from tests.p2p.helpers import Recorder

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

EXIT_TIMEOUT_S = 60.0


def _run_node(data_dir: Path, listen: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PERCOLAB, "--data-dir", str(data_dir), "node", "--listen", listen, "--no-mdns",
         "--no-http"],
        capture_output=True, text=True, timeout=EXIT_TIMEOUT_S,
    )  # fmt: skip


def _assert_one_line_refusal(proc: subprocess.CompletedProcess[str], port: int) -> None:
    assert proc.returncode != 0, "the node started on a taken port"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(port) in lines[0] and "in use" in lines[0], lines[0]
    assert "--listen" in lines[0]  # the hint
    assert "Traceback" not in proc.stderr


def test_second_node_on_a_taken_port_exits_with_one_line(tmp_path: Path) -> None:
    first = NodeProc(tmp_path / "a", "a")
    first.init()
    first.start()
    try:
        port = int(first.addr().split("/tcp/")[1].split("/")[0])
        second = NodeProc(tmp_path / "b", "b")
        second.init()
        proc = _run_node(second.data_dir, f"/ip4/127.0.0.1/tcp/{port}")
        _assert_one_line_refusal(proc, port)
        # The wildcard address overlaps the first node's too.
        _assert_one_line_refusal(_run_node(second.data_dir, f"/ip4/0.0.0.0/tcp/{port}"), port)
        assert first.call("status")["running"]
    finally:
        first.stop()


def test_port_held_by_another_program_exits_with_one_line(tmp_path: Path) -> None:
    node = NodeProc(tmp_path / "a", "a")
    node.init()
    with socket.socket() as squatter:  # a plain listener, no SO_REUSEPORT
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        _assert_one_line_refusal(_run_node(node.data_dir, f"/ip4/127.0.0.1/tcp/{port}"), port)


def _time_wait_on(port: int) -> bool:
    """Some TCP socket with local port ``port`` is in TIME_WAIT (state 06)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "06":
            return True
    return False


def test_node_restarts_on_its_own_port(tmp_path: Path) -> None:
    """The check must not refuse a port for the TIME_WAIT connections of a previous run.
    The previous run is made with plain sockets, so that the side holding the port closes
    first, for sure (two nodes race over who closes a connection first)."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        accepted, _ = listener.accept()
        accepted.close()  # the port's side closes first: its connection goes to TIME_WAIT
        wait_until(lambda: client.recv(1) == b"", 10, "the client to see the close")
        client.close()
    wait_until(lambda: _time_wait_on(port), 30, f"a TIME_WAIT connection on port {port}")
    a = NodeProc(tmp_path / "a", "a", listen=f"/ip4/127.0.0.1/tcp/{port}")
    a.init()
    a.start()
    try:
        assert f"/tcp/{port}/" in a.addr()
    finally:
        a.stop()


def test_port_shared_with_reuseport_is_refused_after_listening(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Behaviour 14 (p2p/hardening.py) alone: a socket with SO_REUSEPORT, as upstream's own
    listener has, holds the port, and the check before listening is skipped (as if the port
    was taken in between): the node's listener must not share the port, and
    ``open_p2p_node`` must say so rather than run with fewer listeners."""
    monkeypatch.setattr(p2p.host, "check_listen_addr", lambda addr: None)
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        port = other.getsockname()[1]

        async def main() -> None:
            taken = pytest.raises(p2p.host.ListenError, match="taken")
            with trio.fail_after(EXIT_TIMEOUT_S), taken:
                async with p2p.host.open_p2p_node(
                    create_new_key_pair(), [f"/ip4/127.0.0.1/tcp/{port}"], validator=Recorder()
                ):
                    pass

        trio.run(main)


# `percolab node` with no --listen and no node.listen in config.toml, its default address
# pointed at loopback (the real default listens on every interface, which tests must not).
_WITH_DEFAULT = (
    "import sys, node.config as c; c.DEFAULT_LISTEN = sys.argv[1]; "
    "from node.cli import main; sys.exit(main(sys.argv[2:]))"
)


def test_default_listen_address_taken_moves_to_another_port(tmp_path: Path) -> None:
    node = NodeProc(tmp_path / "a", "a")
    node.init()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        default = f"/ip4/127.0.0.1/tcp/{port}"
        proc = subprocess.Popen(
            [sys.executable, "-c", _WITH_DEFAULT, default, "--data-dir", str(node.data_dir),
             "node", "--no-mdns", "--no-http"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            sock = node.data_dir / "node.sock"

            def status() -> dict[str, object] | None:
                if proc.poll() is not None:
                    err = proc.stderr.read() if proc.stderr else ""
                    raise AssertionError(f"node exited: {err}")
                if not sock.exists():
                    return None
                try:
                    rpc = RpcBackend(sock, timeout=30)
                except OSError:
                    return None
                try:
                    st: dict[str, object] = rpc.call("status")
                finally:
                    rpc.close()
                return st

            st = wait_until(status, START_TIMEOUT_S, "the node to start")
            addrs = st["addrs"]
            assert isinstance(addrs, list) and addrs
            assert all(f"/tcp/{port}/" not in a for a in addrs), addrs
            assert all(a.startswith("/ip4/127.0.0.1/tcp/") for a in addrs), addrs
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=EXIT_TIMEOUT_S)
        note = [line for line in err.splitlines() if "taken" in line]
        assert note and default in note[0] and "instead" in note[0], err  # it says so
        assert "listening on" in (node.data_dir / "node.log").read_text()
