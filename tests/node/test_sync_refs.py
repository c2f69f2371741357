"""Missing references of fetched objects (node/sync/refs.py): asked of the peer the objects
were fetched from first (the ingesting thread knows it: `Fetching._ingesting_from`)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import trio

from node.ingest.pipeline import Ingest
from node.store.store import Store, Stored
from node.sync.service import SyncService
from protocols.objects import decode
from protocols.reconcile_limits import SYNC_PROTOCOL_IDS
from protocols.sync_messages import FETCH_PROTOCOL_ID
from tests.mem_p2p import FakeP2P

from .helpers import NOW, member

WAIT_S = 30.0


def _side(path: Path, lab: bytes, raws: list[bytes]) -> Any:
    store = Store(path, map_size=1 << 30)
    side = SimpleNamespace(
        store=store, ingest=Ingest(store), p2p=None, extra_status=[],
        service=SimpleNamespace(follows=lambda: {lab}), publish_object=lambda obj: None,
    )  # fmt: skip
    if raws:
        assert not side.ingest.ingest(raws, now=NOW).rejected
    return side


def test_a_missing_reference_is_asked_of_the_peer_that_sent_the_object(tmp_path: Path) -> None:
    """B catches up the lab's scope from A: its projects, not the (public) lab they point
    at. The lab is then fetched from A, though C, which lacks it, comes first among B's
    peers."""
    ada = member("ada")
    lab = ada.lab()
    raws = [lab.raw] + [ada.project(lab, f"Project {i}").raw for i in range(30)]
    lab_id = decode(lab.raw).id
    a = _side(tmp_path / "a", lab_id, raws)
    c = _side(tmp_path / "c", lab_id, [])
    b = _side(tmp_path / "b", lab_id, [])
    asked_c: list[str] = []

    async def main() -> None:
        got_lab = trio.Event()
        token = trio.lowlevel.current_trio_token()

        def on_stored(stored: list[Stored]) -> None:  # on B's ingest thread
            if any(s.obj.id == lab_id for s in stored):
                token.run_sync_soon(got_lab.set)

        b.ingest.listeners.append(on_stored)
        async with trio.open_nursery() as nursery:
            net: dict[str, FakeP2P] = {}
            c.p2p = FakeP2P("C", net, nursery)  # first in B's list of connected peers
            a.p2p, b.p2p = FakeP2P("A", net, nursery), FakeP2P("B", net, nursery)
            sa, sc, sb = SyncService(a), SyncService(c), SyncService(b)
            a.p2p.set_stream_handler(FETCH_PROTOCOL_ID, sa._handle_fetch)

            async def c_fetch(stream: Any) -> None:
                asked_c.append(stream.muxed_conn.peer_id)
                await sc._handle_fetch(stream)

            c.p2p.set_stream_handler(FETCH_PROTOCOL_ID, c_fetch)
            for proto in SYNC_PROTOCOL_IDS:
                a.p2p.set_stream_handler(proto, sa._sync_handler(proto))
            assert sb.peers()[0] == "C"
            sb._token = token  # what SyncService.run sets, with the resolver running
            nursery.start_soon(sb.refs.run)
            with trio.fail_after(WAIT_S):
                summary = await sb.reconcile_scope("A", lab_id)
                assert summary["fetched"] == len(raws) - 1, summary
                await got_lab.wait()
            nursery.cancel_scope.cancel()

    try:
        trio.run(main)
        assert asked_c == []
        assert a.p2p.violations == b.p2p.violations == c.p2p.violations == []
        with b.store.read() as txn:
            assert b.store.count(txn) == len(raws)
    finally:
        for side in (a, b, c):
            side.ingest.close()
            side.store.close()

