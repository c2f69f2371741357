"""The SyncOpen window against a real node process: a session opened for [0, 1000) reconciles
only the objects with 0 <= ts < 1000, and a message 0 reaching outside the window it opened
is a violation (a strike, the stream reset, nothing answered)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from p2p.framing import FrameError, read_frame, write_frame
from p2p.host import P2PNode
from p2p.sync_transport import initiate_sync
from protocols import kinds
from protocols.objects import object_id
from protocols.reconcile import Initiator, SortedItems
from protocols.sync_messages import SYNC_PROTOCOL_ID, Accept, SyncOpen, decode_accept
from tests.integration.nodes import NodeProc
from tests.integration.test_sync_hostile import call, run_case, wait_for

pytestmark = pytest.mark.timeout(120)

FRAME_WAIT_S = 10.0


def profile(name: str, ts: int) -> bytes:
    key = Ed25519PrivateKey.generate()
    return kinds.create(key, "profile", {"name": name, "about": ""}, ts).raw


def test_session_reconciles_only_its_window(tmp_path: Path) -> None:
    early, late = profile("Early", 500), profile("Late", 5000)

    async def case(node: NodeProc, p2p: P2PNode) -> None:
        res = await call(node, "import_objects", objects=[early, late])
        assert not res["rejected"], res
        peer = await p2p.connect(await trio.to_thread.run_sync(node.addr))
        before = await call(node, "status")

        # An honest initiator with an empty store, opening [0, 1000).
        opening = SyncOpen(kinds.PUBLIC_SCOPE, 0, 1000)
        init = Initiator(SortedItems(), *opening.bounds)

        async def step(data: bytes) -> bytes | None:
            return init.receive(data)

        s = await p2p.new_stream(peer, [SYNC_PROTOCOL_ID])
        with trio.fail_after(FRAME_WAIT_S * 2):
            status = await initiate_sync(s, opening, init.start(), step, lambda: init.done)
        assert status == Accept.OK
        early_id = object_id(early)
        assert init.need == {early_id}  # not the object at 5000, nor the node's own profile
        assert not init.have

        # A hostile initiator opening [0, 1000) whose message 0 covers all of time.
        s = await p2p.new_stream(peer, [SYNC_PROTOCOL_ID])
        await write_frame(s, opening.encode())
        await write_frame(s, Initiator(SortedItems([(700, b"\x01" * 32)])).start())
        # The node may reset the stream before its Accept is even read (yamux drops what
        # is buffered on a reset), so a reset at either read is the expected ending.
        answer: Any = "nothing"
        with trio.fail_after(FRAME_WAIT_S * 2):
            try:
                raw = await read_frame(s, timeout=FRAME_WAIT_S)
                assert raw is not None and decode_accept(raw).status == Accept.OK
                answer = await read_frame(s)
            except FrameError:
                answer = "reset"
        assert answer == "reset", f"the node answered outside the window: {answer!r}"

        async def struck() -> bool:
            st = await call(node, "status")
            return bool(st["sync"]["violations"] > before["sync"]["violations"])

        await wait_for(struck, 30, "the violation to be reported")
        after = await call(node, "status")
        assert after["digest"] == before["digest"]
        # The node still answers honest sessions on the same connection.
        s = await p2p.new_stream(peer, [SYNC_PROTOCOL_ID])
        again = Initiator(SortedItems(), *opening.bounds)

        async def step2(data: bytes) -> bytes | None:
            return again.receive(data)

        with trio.fail_after(FRAME_WAIT_S * 2):
            status = await initiate_sync(s, opening, again.start(), step2, lambda: again.done)
        assert status == Accept.OK and again.need == {early_id}

    run_case(tmp_path, case)
