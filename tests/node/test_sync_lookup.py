"""Serving a fetch reads at most LOOKUP_BYTES at a time (node/sync/fetching.py): the answer
is whole and in order, and ids taken in a later read are not counted as asked twice."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from node.ingest.pipeline import Ingest
from node.store.store import Store
from node.sync import fetching as fetching_mod
from node.sync.serve import PeerServeBudget
from node.sync.service import SyncService
from p2p.sync_transport import SessionIO
from protocols.objects import object_id
from protocols.sync_messages import FETCH_PROTOCOL_ID
from tests.mem_p2p import FakeP2P

from .helpers import NOW, member

WAIT_S = 30.0


def _side(path: Path, raws: list[bytes]) -> Any:
    store = Store(path, map_size=1 << 30)
    side = SimpleNamespace(
        store=store, ingest=Ingest(store), p2p=None, extra_status=[],
        service=SimpleNamespace(follows=lambda: set()), publish_object=lambda obj: None,
    )  # fmt: skip
    if raws:
        assert not side.ingest.ingest(raws, now=NOW).rejected
    return side


def test_a_fetch_is_served_whole_in_reads_of_at_most_lookup_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = member("ada")
    lab = ada.lab()
    raws = [lab.raw] + [ada.project(lab, f"Project {i}").raw for i in range(99)]
    ids = [object_id(r) for r in raws]
    unknown = bytes(32)  # not held: skipped, and still counted as read through
    asked = [*ids[:50], unknown, *ids[50:]]
    monkeypatch.setattr(fetching_mod, "LOOKUP_BYTES", sum(map(len, raws[:3])))
    a, b = _side(tmp_path / "a", raws), _side(tmp_path / "b", [])
    stored: list[int] = []

    async def main() -> None:
        sa = SyncService(a)
        budget = PeerServeBudget()
        found, through = await sa._lookup(budget, asked)
        assert (found, through) == (raws[:3], 3)  # stopped at LOOKUP_BYTES
        assert budget.repeats == 0
        async with trio.open_nursery() as nursery:
            net: dict[str, FakeP2P] = {}
            a.p2p, b.p2p = FakeP2P("A", net, nursery), FakeP2P("B", net, nursery)
            a.p2p.set_stream_handler(FETCH_PROTOCOL_ID, sa._handle_fetch)
            sb = SyncService(b)
            with trio.fail_after(WAIT_S):
                received, new = await sb.fetch_from("A", asked, SessionIO())
            stored.append(new)
            assert received == len(raws)
            nursery.cancel_scope.cancel()
        assert sa._budgets.of("B").repeats == 0  # every id noted once, read after read

    try:
        trio.run(main)
        assert stored == [len(raws)]
        assert a.p2p.violations == b.p2p.violations == []
        with b.store.read() as txn:
            assert b.store.count(txn) == len(raws)
    finally:
        for side in (a, b):
            side.ingest.close()
            side.store.close()
