"""Clients that go away at the wrong moment end their own connection, never the node (issue 21).

A real node process; each client is a raw socket that leaves with data still unread:
- a control-socket subscriber closing while a push sits unread in its buffer (what the TUI
  does when it quits): the node's next read gets ECONNRESET;
- a control-socket client closing while the node is blocked writing responses to it (EPIPE);
- an HTTP client resetting (SO_LINGER 0: RST) before reading a large response;
- a libp2p peer resetting a fetch stream and a sync stream mid-answer, then dropping its
  whole connection while the node writes.
After each, the node must still run and answer on every service.
"""

from __future__ import annotations

import select
import socket
import struct
from pathlib import Path

import pytest
import trio
from libp2p.crypto.ed25519 import create_new_key_pair

from p2p.framing import read_frame, write_end, write_frame
from p2p.host import open_p2p_node
from protocols import kinds, rpc
from protocols.sync_messages import FETCH_PROTOCOL_ID, SYNC_PROTOCOL_ID, FetchRequest, SyncOpen
from tests.integration.nodes import NodeProc, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

# How long the node gets to notice a client's departure (it notices at once; this is slack).
NOTICE_TIMEOUT_S = 15.0
# Requests sent without reading answers: their responses overflow the socket buffers
# (~200 KiB on Linux for AF_UNIX) so the node is blocked writing when the client leaves.
UNREAD_REQUESTS = 2000
# Log line the node writes when a control client's socket breaks (node/rpc_server.py).
RPC_GONE = "control client went away"


def _rpc_client(node: NodeProc) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(str(node.data_dir / "node.sock"))
    return s


def _read_response(s: socket.socket, decoder: rpc.FrameDecoder, mid: int) -> rpc.Response:
    while True:
        data = s.recv(1 << 16)
        assert data, "node closed the control connection"
        for msg in decoder.feed(data):
            if isinstance(msg, rpc.Response) and msg.id == mid:
                return msg


def _log(node: NodeProc) -> str:
    return (node.data_dir / "node.log").read_text(errors="replace")


def _gone_or_noticed(node: NodeProc, before: int) -> bool:
    """True once the node either exited (the bug) or logged that the client went away."""
    assert node.proc is not None
    return node.proc.poll() is not None or _log(node).count(RPC_GONE) > before


def _assert_alive(node: NodeProc) -> None:
    assert node.proc is not None
    code = node.proc.poll()
    assert code is None, f"the node exited with status {code}"
    assert node.call("status")["running"]


def test_control_subscriber_leaving_with_unread_push_does_not_kill_the_node(
    tmp_path: Path,
) -> None:
    node = NodeProc(tmp_path / "n", "n")
    node.init()
    node.start()
    try:
        lab = node.call("lab_create", name="Reset Lab")
        # 1. Subscribe, a push arrives, the client closes without reading it.
        before = _log(node).count(RPC_GONE)
        sub = _rpc_client(node)
        decoder = rpc.FrameDecoder()
        sub.sendall(rpc.encode(rpc.Request(1, "subscribe", {})))
        assert _read_response(sub, decoder, 1).result is True
        node.call("post", lab=lab, title="pushed while nobody reads")
        readable, _, _ = select.select([sub], [], [], NOTICE_TIMEOUT_S)
        assert readable, "no push reached the subscriber"
        sub.close()  # unread data in an AF_UNIX socket: the node's next read is ECONNRESET
        wait_until(lambda: _gone_or_noticed(node, before), NOTICE_TIMEOUT_S, "the reset")
        _assert_alive(node)

        # 2. A client that stops reading while the node writes to it, then leaves.
        before = _log(node).count(RPC_GONE)
        greedy = _rpc_client(node)
        greedy.sendall(rpc.encode(rpc.Request(1, "subscribe", {})))
        frames = b"".join(
            rpc.encode(rpc.Request(i, "status", {})) for i in range(2, UNREAD_REQUESTS + 2)
        )
        greedy.sendall(frames)
        node.call("post", lab=lab, title="pushed to a full buffer")
        select.select([greedy], [], [], NOTICE_TIMEOUT_S)
        greedy.close()
        wait_until(lambda: _gone_or_noticed(node, before), NOTICE_TIMEOUT_S, "the reset")
        _assert_alive(node)
        # The node still pushes to a new subscriber.
        sub = _rpc_client(node)
        decoder = rpc.FrameDecoder()
        sub.sendall(rpc.encode(rpc.Request(1, "subscribe", {})))
        assert _read_response(sub, decoder, 1).result is True
        node.call("post", lab=lab, title="after the resets")

        def pushed() -> bool:
            data = sub.recv(1 << 16)
            return any(isinstance(m, rpc.Push) for m in decoder.feed(data))

        wait_until(pushed, NOTICE_TIMEOUT_S, "a push after the resets")
        sub.close()
    finally:
        node.stop()


def _peak_rss_mb(node: NodeProc) -> float:
    """The node process's peak resident memory so far (VmHWM), in MB."""
    assert node.proc is not None
    for line in Path(f"/proc/{node.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


# Peak memory a single control frame may add to the node (issue 21: it was ~1.2 GB).
MAX_FRAME_RSS_GROWTH_MB = 100


def test_control_frame_of_empty_arrays_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    node = NodeProc(tmp_path / "n", "n")
    node.init()
    node.start()
    try:
        node.call("status")
        before = _peak_rss_mb(node)
        n = rpc.MAX_RPC_FRAME - 5  # one frame at the size limit: an array of empty arrays
        payload = b"\xdd" + n.to_bytes(4, "big") + b"\x90" * n
        c = _rpc_client(node)
        c.sendall(len(payload).to_bytes(4, "big") + payload)
        try:
            refused = c.recv(1 << 16) == b""  # the node closes the connection
        except ConnectionResetError:
            refused = True
        c.close()
        assert refused
        growth = _peak_rss_mb(node) - before
        assert growth < MAX_FRAME_RSS_GROWTH_MB, f"peak RSS grew by {growth:.0f} MB"
        assert "RPC frame holds more than" in _log(node)  # refused, with the reason logged
        _assert_alive(node)
    finally:
        node.stop()


def _rst_close(s: socket.socket) -> None:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def test_http_client_resetting_mid_response_does_not_kill_the_node(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a free loopback port for the HTTP API
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    node = NodeProc(tmp_path / "n", "n", ["--http", f"127.0.0.1:{port}"])
    node.init()
    node.start()
    try:
        # The control socket opens before the HTTP server (node/runtime.py start-up order).
        wait_until(lambda: node.call("status").get("http"), 30, "the HTTP server")
        request = b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"
        for _ in range(20):  # RST before reading, many times over
            c = socket.create_connection(("127.0.0.1", port), timeout=10)
            c.sendall(request * 50)  # pipelined: the node writes while we leave
            select.select([c], [], [], NOTICE_TIMEOUT_S)
            _rst_close(c)
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        c.sendall(b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := c.recv(1 << 16):
            reply += chunk
        c.close()
        assert reply.startswith(b"HTTP/1.1 200")
        _assert_alive(node)
    finally:
        node.stop()


async def _accept_all(topic: str, data: bytes, peer: str) -> bool:
    return True


def test_libp2p_peer_resetting_sync_and_fetch_streams_does_not_kill_the_node(
    tmp_path: Path,
) -> None:
    node = NodeProc(tmp_path / "n", "n")
    node.init()
    node.start()
    try:
        lab = node.call("lab_create", name="Stream Lab")
        ids = [node.call("post", lab=lab, title=f"p{i}", body="x" * 2000) for i in range(40)]
        addr = node.addr()

        async def main() -> None:
            async with open_p2p_node(
                create_new_key_pair(), ["/ip4/127.0.0.1/tcp/0"], validator=_accept_all
            ) as p2p:
                peer = await p2p.connect(addr)
                want = [bytes.fromhex(i) for i in ids]
                for _ in range(5):
                    # A fetch asked for, then reset before reading the answer.
                    s = await p2p.new_stream(peer, [FETCH_PROTOCOL_ID])
                    await write_frame(s, FetchRequest(tuple(want)).encode())
                    await write_end(s)
                    await s.reset()
                    # A sync session opened, then reset mid-way.
                    s = await p2p.new_stream(peer, [SYNC_PROTOCOL_ID])
                    await write_frame(s, SyncOpen(kinds.PUBLIC_SCOPE).encode())
                    await read_frame(s, timeout=10)
                    await s.reset()
                # A fetch asked for, then the whole connection dropped while it is served.
                s = await p2p.new_stream(peer, [FETCH_PROTOCOL_ID])
                await write_frame(s, FetchRequest(tuple(want)).encode())
                await write_end(s)
                await p2p.disconnect(peer)

        trio.run(main)
        _assert_alive(node)
    finally:
        node.stop()
