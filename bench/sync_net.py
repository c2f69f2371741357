"""The two nodes of bench/sync.py and what connects them.

By default the serving node A runs in its own process (`python bench/sync_net.py serve ...`,
started by `PeerProcess`), as a real peer does: its event loop, its store reads and its
encoding use its own interpreter, not the catching-up node B's. Streams are Unix-socket
connections, one per stream (a short header names the peer and offers protocols, the server
picks the first it serves, as multistream-select does); no Noise/Yamux, so their CPU cost is
not in the figures. Both processes share this machine's cores.

`--in-process` (bench/sync.py) keeps the older set-up for comparison: both nodes in one
interpreter over in-memory streams (`MemStream`, `FakeP2P`), where A's serving work takes
B's GIL.

Bytes are counted at the frame level on B's side (both directions), headers included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trio
import trio.testing

from node.ingest.pipeline import Ingest
from node.store.store import Store
from node.sync.service import SyncService
from p2p.framing import read_frame, write_end, write_frame
from protocols.reconcile_limits import SYNC_PROTOCOL_IDS
from protocols.sync_messages import FETCH_PROTOCOL_ID

NAIVE_PROTOCOL_ID = "naive"  # bench/sync.py's comparison: B sends its full id list
NAIVE_FRAME_IDS = 100_000
PEER_EXIT_TIMEOUT_S = 60.0
_HEAD = struct.Struct(">H")  # stream header: length of the text that follows
_REPO = Path(__file__).resolve().parents[1]


def open_side(path: Path, labs: list[bytes]) -> Any:
    store = Store(path)
    ingest = Ingest(store)
    return SimpleNamespace(
        store=store, ingest=ingest, service=SimpleNamespace(follows=lambda: set(labs)),
        p2p=None, extra_status=[],
    )  # fmt: skip


def close_side(side: Any) -> None:
    side.ingest.close()
    side.store.close()


def serve_sync(svc: SyncService, p2p: Any) -> None:
    """Register what a node serves: both sync versions (as the node does) and fetch."""
    for proto in SYNC_PROTOCOL_IDS:
        p2p.set_stream_handler(proto, svc._sync_handler(proto))
    p2p.set_stream_handler(FETCH_PROTOCOL_ID, svc._handle_fetch)


def naive_handler(store: Store) -> Any:
    """The naive comparison's server: reads B's ids of a scope, answers the ids B lacks."""
    from node.store.sync_index import LmdbItems
    from protocols.reconcile_store import INFINITY, MIN_BOUND

    async def handle(stream: Any) -> None:
        scope = await read_frame(stream)
        assert scope is not None
        theirs: set[bytes] = set()
        while (frame := await read_frame(stream)) is not None:
            theirs.update(frame[i : i + 32] for i in range(0, len(frame), 32))
        items = LmdbItems(store, scope)
        mine = [k[1] for k in items.iter_keys(MIN_BOUND, INFINITY, 1 << 30)]
        lack = b"".join(oid for oid in mine if oid not in theirs)
        for i in range(0, len(lack), 32 * NAIVE_FRAME_IDS):
            await write_frame(stream, lack[i : i + 32 * NAIVE_FRAME_IDS])
        await write_end(stream)

    return handle


# ---- in one process, in-memory streams ------------------------------------------------


# MemStream and FakeP2P: tests/mem_p2p.py (the tests' catch-ups use them too).


# ---- two processes, Unix sockets --------------------------------------------------------


class SockStream:
    """One stream over one Unix-socket connection; counts what this side reads and writes."""

    def __init__(self, sock: trio.SocketStream, peer_id: str, protocol: str, net: Any) -> None:
        self._s = sock
        self._net = net
        self.muxed_conn = SimpleNamespace(peer_id=peer_id)
        self._protocol = protocol

    def get_protocol(self) -> str:
        return self._protocol

    async def read(self, n: int | None = None) -> bytes:
        data = bytes(await self._s.receive_some(n))
        self._net.received[0] += len(data)
        return data

    async def write(self, data: bytes) -> None:
        self._net.sent[0] += len(data)
        await self._s.send_all(data)

    async def close(self) -> None:  # libp2p's close: this side writes no more
        with contextlib.suppress(trio.ClosedResourceError):
            await self._s.send_eof()

    async def reset(self) -> None:
        await self._s.aclose()


async def _read_exactly(sock: trio.SocketStream, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = await sock.receive_some(n - len(buf))
        if not chunk:
            raise EOFError("stream header cut short")
        buf += chunk
    return bytes(buf)


async def _send_text(sock: trio.SocketStream, text: str) -> None:
    data = text.encode()
    await sock.send_all(_HEAD.pack(len(data)) + data)


async def _read_text(sock: trio.SocketStream) -> str:
    (n,) = _HEAD.unpack(await _read_exactly(sock, _HEAD.size))
    return (await _read_exactly(sock, n)).decode()


class SockP2P:
    """Just enough of P2PNode over Unix sockets: `listen` serves this node's handlers,
    `new_stream` connects to a peer's socket (`paths`: peer id -> socket path)."""

    def __init__(self, peer_id: str, paths: dict[str, str], nursery: trio.Nursery) -> None:
        self.peer_id = peer_id
        self.paths = paths
        self.nursery = nursery
        self.handlers: dict[str, Any] = {}
        self.sent = [0]
        self.received = [0]
        self.streams = 0
        self.violations: list[str] = []
        self._opened: list[trio.SocketStream] = []

    def set_stream_handler(self, proto: str, handler: Any) -> None:
        self.handlers[proto] = handler

    async def listen(self, path: str) -> None:
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        await sock.bind(path)
        sock.listen(128)
        await self.nursery.start(trio.serve_listeners, self._serve, [trio.SocketListener(sock)])

    async def _serve(self, sock: trio.SocketStream) -> None:
        async with sock:
            peer, *offered = (await _read_text(sock)).split("\n")
            proto = next((p for p in offered if p in self.handlers), "")
            await _send_text(sock, proto)
            if proto:
                await self.handlers[proto](SockStream(sock, peer, proto, self))

    async def new_stream(self, peer: str, protos: list[str]) -> SockStream:
        sock = await trio.open_unix_socket(self.paths[peer])
        self._opened.append(sock)
        await _send_text(sock, "\n".join([self.peer_id, *protos]))
        proto = await _read_text(sock)
        if not proto:
            await sock.aclose()
            raise OSError(f"{peer} serves none of {protos}")
        self.streams += 1
        return SockStream(sock, peer, proto, self)

    async def aclose(self) -> None:
        for sock in self._opened:
            await sock.aclose()

    def connected_peers(self) -> list[dict[str, Any]]:
        return [{"peer_id": p, "addrs": []} for p in self.paths]

    def report_invalid(self, peer: str, reason: str) -> None:
        self.violations.append(reason)


def _cpu_s() -> float:
    """This process's CPU time, its check workers included once they have exited."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


def proc_cpu_s(pid: int) -> float:
    """CPU seconds used so far by another process (Linux /proc; 0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PeerProcess:
    """Node A in its own process, serving `data_dir` on a Unix socket until `finish`."""

    def __init__(self, data_dir: Path, labs: list[bytes], sock_dir: Path) -> None:
        self.path = str(sock_dir / "a.sock")
        self.b_path = str(sock_dir / "b.sock")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO), env.get("PYTHONPATH")) if p)
        labs_hex = ",".join(x.hex() for x in labs)
        argv = [sys.executable, str(Path(__file__).resolve()), "serve", "--data", str(data_dir),
                "--socket", self.path, "--peer", self.b_path, "--labs", labs_hex]  # fmt: skip
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # "ready", or "" if it died while starting
        if line.strip() != "ready":
            self.proc.kill()
            raise RuntimeError(f"node A did not start (said {line!r})")

    def finish(self) -> dict[str, Any]:
        """Stop A; its report: violations it saw and the CPU it used while serving."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        out = self.proc.stdout.read()
        self.proc.wait(timeout=PEER_EXIT_TIMEOUT_S)
        report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return report


async def _serve_main(side: Any, path: str, b_path: str) -> dict[str, Any]:
    async with trio.open_nursery() as nursery:
        p2p = SockP2P("A", {"B": b_path}, nursery)
        side.p2p = p2p
        svc = SyncService(cast(Any, side))
        serve_sync(svc, p2p)
        p2p.set_stream_handler(NAIVE_PROTOCOL_ID, naive_handler(side.store))
        await p2p.listen(path)
        cpu0 = _cpu_s()
        print("ready", flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)  # B closes our stdin when done
        report = {"violations": p2p.violations, "cpu_s": round(_cpu_s() - cpu0, 3),
                  "served": svc.stats.served,
                  # time B's fetches waited for A's serving budget (node/sync/serve.py)
                  "budget_wait_s": round(svc._budgets.of("B").waited_s, 3)}  # fmt: skip
        nursery.cancel_scope.cancel()
    return report


def serve_main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description="node A of bench/sync.py (started by it)")
    ap.add_argument("--data", required=True)
    ap.add_argument("--socket", required=True)
    ap.add_argument("--peer", required=True, help="node B's socket")
    ap.add_argument("--labs", default="")
    args = ap.parse_args(argv)
    labs = [bytes.fromhex(x) for x in args.labs.split(",") if x]
    side = open_side(Path(args.data), labs)
    try:
        report = trio.run(_serve_main, side, args.socket, args.peer)
    finally:
        close_side(side)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] != ["serve"]:
        sys.exit("usage: sync_net.py serve --data DIR --socket PATH --peer PATH [--labs HEX,...]")
    serve_main(sys.argv[2:])
