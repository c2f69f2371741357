"""`percolab` (no command: embedded node in a child process + TUI) keeps the terminal clean
while its node logs warnings: log lines go to DIR/node.log, never onto the TUI's screen.

Warnings are provoked three ways while the TUI runs: garbage frames on the control socket, a
hostile raw libp2p peer (undecodable pubsub frame, garbage key, forged object), and a dial of a
dead peer from another shell (`percolab connect`).
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import multiaddr
import psutil  # type: ignore[import-untyped]
import pytest
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.pb import rpc_pb2
from libp2p.utils.varint import encode_varint_prefixed

from node.cli.backend import RpcBackend
from protocols.topics import PUBLIC_TOPIC
from tests.e2e.tmux import Tmux
from tests.integration.nodes import PERCOLAB, cli, wait_until
from tests.p2p.test_hardening import raw_peer, send_raw, signed_message

pytestmark = pytest.mark.slow

UI_TIMEOUT_S = 30.0
LOG_TIMEOUT_S = 20.0
# What log output looks like; none of it may reach the TUI's screen.
LOG_MARKERS = ("WARNING", "ERROR", "Traceback", "libp2p", "node.rpc_server", "p2p.",
               "closing control connection", "Exception", "INFO ")  # fmt: skip
CONFIG = """\
[node]
listen = ["/ip4/127.0.0.1/tcp/0"]
mdns = false
http = false
"""
DEAD_PEER = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"


def _garbage_on_control_socket(sock: Path) -> None:
    for blob in (b"\x00\x00\x00\x05hello", b"\xff\xff\xff\xff", b"\x00\x00\x00\x01\xc1"):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(sock))
            s.sendall(blob)
            s.settimeout(5)
            try:
                while s.recv(4096):  # the node closes the connection
                    pass
            except OSError:
                pass


def _hostile_peer(addr: str, peer_id: str) -> None:
    async def attack() -> None:
        kp = create_new_key_pair()
        async with raw_peer(key_pair=kp) as evil:
            await evil.connect(info_from_p2p_addr(multiaddr.Multiaddr(addr)))
            await send_raw(evil, peer_id, encode_varint_prefixed(b"\xff\xff\xff\xff\x0f"))
            garbage_key = rpc_pb2.Message(
                data=b"x", topicIDs=[PUBLIC_TOPIC], from_id=b"\x12\x20" + os.urandom(32),
                seqno=(1).to_bytes(8, "big"), key=b"\x08\x01\x12\x05junk!",
                signature=os.urandom(64),
            )  # fmt: skip
            rpc = rpc_pb2.RPC(publish=[garbage_key])
            rpc.subscriptions.extend([rpc_pb2.RPC.SubOpts(subscribe=True, topicid=PUBLIC_TOPIC)])
            await send_raw(evil, peer_id, encode_varint_prefixed(rpc.SerializeToString()))
            forged = signed_message(kp, b"\x93garbage", topic=PUBLIC_TOPIC, seqno=2)
            rpc = rpc_pb2.RPC(publish=[forged])
            await send_raw(evil, peer_id, encode_varint_prefixed(rpc.SerializeToString()))
            await trio.sleep(0.5)  # let the frames leave before the host closes

    trio.run(attack)


def _warnings(log: Path) -> list[str]:
    text = log.read_text(errors="replace") if log.exists() else ""
    return [line for line in text.splitlines() if " WARNING " in line or " ERROR " in line]


def test_node_warnings_never_reach_the_tui_screen(tmp_path: Path) -> None:
    data = tmp_path / "home"
    data.mkdir()
    (data / "config.toml").write_text(CONFIG)
    # No node yet: the CLI opens the store itself.
    cli(data, "init", "--unencrypted-key", "--name", "Clea")
    term = Tmux()
    node_pids: list[int] = []
    try:
        term.start("app", [PERCOLAB, "--data-dir", str(data)])  # no command: embedded node
        term.wait_text("app", "Labs — Clea", UI_TIMEOUT_S)
        app_pid = int(term.tmux("display-message", "-p", "-t", "app", "#{pane_pid}").strip())
        node_pids = [p.pid for p in psutil.Process(app_pid).children(recursive=True)]
        assert node_pids, "no embedded node child process"
        sock = data / "node.sock"
        rpc = RpcBackend(sock, timeout=30)
        try:
            status = rpc.call("status")
        finally:
            rpc.close()
        addr, peer_id = str(status["addrs"][0]), str(status["peer_id"])

        _garbage_on_control_socket(sock)
        _hostile_peer(addr, peer_id)
        dial = subprocess.run([PERCOLAB, "--data-dir", str(data), "connect", DEAD_PEER],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert dial.returncode != 0  # a dead peer: the command fails, in its own shell
        log = data / "node.log"

        def logged() -> bool:
            lines = _warnings(log)
            control = sum("closing control connection" in w for w in lines)
            p2p = sum(" WARNING p2p." in w or " WARNING libp2p" in w for w in lines)
            return control >= 3 and p2p >= 1

        wait_until(logged, LOG_TIMEOUT_S,
                   "warnings from the control socket and the raw peer in node.log")  # fmt: skip

        # Look at once (stray bytes on the tty stay until Textual repaints that region), then
        # again after a round-trip through the UI (repaints, fresh RPCs).
        _assert_clean(term.capture("app"))
        term.keys("app", "4")
        _assert_clean(term.wait_text("app", peer_id[:12], UI_TIMEOUT_S))
        term.keys("app", "1")
        pane = term.wait_text("app", "Labs — Clea", UI_TIMEOUT_S)
        _assert_clean(pane)
        lines = pane.splitlines()
        assert len(lines) == term.height and "f5 Refresh" in lines[-1], pane
        assert "No labs yet" in pane, pane

        # q quits the TUI, and `percolab` stops the node it started.
        term.keys("app", "q")
        term.wait_for("app", lambda _: term.pane_dead("app"), "the TUI to exit", UI_TIMEOUT_S)
        wait_until(lambda: not any(psutil.pid_exists(p) and _alive(p) for p in node_pids),
                   UI_TIMEOUT_S, "the embedded node to stop after q")  # fmt: skip
    except BaseException:
        print(term.panes())
        log = data / "node.log"
        print("----- node.log -----\n" + (log.read_text()[-4000:] if log.exists() else "(none)"))
        raise
    finally:
        term.close()
        for pid in node_pids:  # only the processes this test started
            if psutil.pid_exists(pid) and _alive(pid):
                psutil.Process(pid).kill()


def _assert_clean(pane: str) -> None:
    leaked = [m for m in LOG_MARKERS if m in pane]
    assert not leaked, f"log text {leaked} on the TUI's screen:\n{pane}"


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
