"""A lying sync peer cannot make a node remember without bound (issue 21): it names ~500k
made-up ids, as initiator and as responder, and serves none of them slowly; the node's RSS
grows by at most MAX_RSS_GROWTH_MB, the peer is reported, and honest sync still works."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from node.sync.fetch import MAX_FETCH_BACKLOG
from p2p.framing import read_frame, write_end, write_frame
from p2p.host import P2PNode
from protocols import kinds
from protocols.reconcile import Initiator, Responder, SortedItems
from protocols.sync_messages import (
    FETCH_PROTOCOL_ID,
    SYNC_PROTOCOL_ID,
    Accept,
    SyncOpen,
    decode_accept,
    decode_request,
)
from tests.integration.nodes import NodeProc, cli, wait_until
from tests.integration.test_sync_hostile import call, fake_peer, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

PHANTOM_IDS = 500_000  # about what the attack reached per session (~508k)
MAX_RSS_GROWTH_MB = 100  # the bound
# The liar answers each fetch after this long, with nothing: time for reconciliation to run
# ahead of the fetch, which is where an unbounded node kept every id it was told about.
STALL_S = 10.0


def _phantoms() -> list[tuple[int, bytes]]:
    base = int(time.time() * 1000) - 86_400_000
    return [
        (base + i * 7, hashlib.sha256(b"phantom %d" % i).digest()) for i in range(PHANTOM_IDS)
    ]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class PeakRss:
    """Samples a process's RSS in a thread until stopped; keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, _rss_mb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, _rss_mb(self.pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def test_a_peer_naming_made_up_ids_costs_bounded_memory(tmp_path: Path) -> None:
    keys = _phantoms()
    items = SortedItems(keys)
    node = NodeProc(tmp_path / "n", "n")
    node.init()
    node.start()
    honest = NodeProc(tmp_path / "h", "h")
    honest.init()
    try:
        assert node.proc is not None
        pid = node.proc.pid
        fetches: dict[str, int] = {"asked": 0, "ids": 0}

        async def case(n: NodeProc, p2p: P2PNode) -> None:
            async def sync_handler(stream: Any) -> None:  # the node initiates: we lie back
                opening = await read_frame(stream)
                assert opening is not None
                await write_frame(stream, bytes([0x92, 1, int(Accept.OK)]))
                resp = Responder(items)
                with trio.move_on_after(120):
                    while not resp.done:
                        data = await read_frame(stream, timeout=60)
                        if data is None:
                            break
                        reply = await trio.to_thread.run_sync(resp.receive, data)
                        if reply is not None:
                            await write_frame(stream, reply)
                    await write_end(stream)

            async def fetch_handler(stream: Any) -> None:  # ... and serve none, slowly
                request = decode_request(await read_frame(stream) or b"")
                fetches["asked"] += 1
                fetches["ids"] += len(request.ids)
                await read_frame(stream)
                await trio.sleep(STALL_S)
                await write_end(stream)

            p2p.set_stream_handler(SYNC_PROTOCOL_ID, sync_handler)
            p2p.set_stream_handler(FETCH_PROTOCOL_ID, fetch_handler)
            await trio.sleep(1.0)  # let the node settle before the baseline
            before = await call(n, "status")
            rss = PeakRss(pid)
            base = rss.peak
            await p2p.connect(await trio.to_thread.run_sync(n.addr))

            # 1. The node initiates (on connect) and is told ~500k ids it lacks.
            async def reported(k: int) -> bool:
                st = await call(n, "status")
                return bool(st["sync"]["violations"] >= before["sync"]["violations"] + k)

            await wait_for(lambda: reported(1), 90, "the unserved fetch to be a violation")
            # 2. We initiate and claim ~500k ids the node lacks (it learns them as responder).
            stream = await p2p.new_stream(await trio.to_thread.run_sync(n.peer_id),
                                          [SYNC_PROTOCOL_ID])  # fmt: skip
            init = Initiator(items)
            await write_frame(stream, SyncOpen(kinds.PUBLIC_SCOPE).encode())
            await write_frame(stream, await trio.to_thread.run_sync(init.start))
            accept = await read_frame(stream, timeout=30)
            assert accept is not None and decode_accept(accept).status == Accept.OK
            while not init.done:
                data = await read_frame(stream, timeout=60)
                if data is None:
                    break
                reply = await trio.to_thread.run_sync(init.receive, data)
                if reply is not None:
                    await write_frame(stream, reply)
            await write_end(stream)
            await read_frame(stream, timeout=30)
            await wait_for(lambda: reported(2), 90, "the responder's unserved fetch too")
            peak = rss.stop()
            after = await call(n, "status")
            assert after["digest"] == before["digest"]  # nothing stored
            assert peak - base <= MAX_RSS_GROWTH_MB, f"RSS {base:.0f} -> {peak:.0f} MB"
            # The node asked for at most one backlog per session, not the 500k.
            assert fetches["ids"] <= 2 * MAX_FETCH_BACKLOG, fetches

        async def main() -> None:
            async with fake_peer(node) as p2p:
                await case(node, p2p)

        trio.run(main)
        # Honest sync is unaffected: a new node catches up with this one at once.
        node_addr = node.addr()
        lab = cli(node.data_dir, "lab", "create", "Still here")["id"]
        honest.start(bootstrap=[node_addr])
        wait_until(lambda: honest.find(lab) is not None, 60, "honest catch-up")
        assert node.call("status")["running"]
    finally:
        honest.stop()
        node.stop()
