"""What serving fetches may cost (node/sync/serve.py), and what a node asks again: a peer
asking again and again for what it was just served is a violation; a node does not ask again
for an object it deferred (a timestamp ahead of its clock) before its time."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.sync.serve import MAX_REPEATS
from p2p.framing import read_frame, write_end, write_frame
from p2p.host import P2PNode
from p2p.sync_transport import fetch_objects
from protocols import kinds
from protocols.limits import MAX_FUTURE_SKEW_MS
from protocols.objects import SignedObject
from protocols.sync_messages import (
    FETCH_PROTOCOL_ID,
    MAX_FETCH_IDS,
    SYNC_PROTOCOL_ID,
    decode_request,
    encode_fetch_batches,
)
from tests.integration.nodes import NodeProc
from tests.integration.test_sync_hostile import answer_sync, call, run_case, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _profiles(n: int, ts: int | None = None) -> list[SignedObject]:
    key = Ed25519PrivateKey.generate()
    now = int(time.time() * 1000) - 60_000 if ts is None else ts
    return [kinds.create(key, "profile", {"name": f"P {i}", "about": ""}, now + i)
            for i in range(n)]  # fmt: skip


def test_asking_again_for_what_was_served_is_a_violation(tmp_path: Path) -> None:
    objs = _profiles(MAX_FETCH_IDS)
    ids = [o.id for o in objs]

    async def case(node: NodeProc, p2p: P2PNode) -> None:
        await call(node, "import_objects", objects=[o.raw for o in objs])
        await p2p.connect(await trio.to_thread.run_sync(node.addr))
        peer = await trio.to_thread.run_sync(node.peer_id)
        before = (await call(node, "status"))["sync"]["violations"]
        served: list[int] = []
        # Asked once: served. Asked again and again: past MAX_REPEATS, the node stops.
        for _ in range(MAX_REPEATS // MAX_FETCH_IDS + 3):
            stream = await p2p.new_stream(peer, [FETCH_PROTOCOL_ID])
            got = 0
            try:
                async for raws in fetch_objects(stream, ids):
                    got += len(raws)
            except Exception:  # the node resets the stream: the violation
                served.append(got)
                break
            served.append(got)

        async def reported() -> bool:
            st = await call(node, "status")
            return bool(st["sync"]["violations"] > before)

        await wait_for(reported, 30, "the repeats to be a violation")
        assert served[0] == len(ids)  # the first answer is whole
        assert sum(served) <= (MAX_REPEATS // MAX_FETCH_IDS + 1) * len(ids), served

    run_case(tmp_path, case)


def test_a_deferred_object_is_not_fetched_again_before_its_time(tmp_path: Path) -> None:
    early = _profiles(1, ts=int(time.time() * 1000) + MAX_FUTURE_SKEW_MS + 3_600_000)[0]
    asked: dict[str, int] = {"sessions": 0, "early": 0}

    async def case(node: NodeProc, p2p: P2PNode) -> None:
        async def sync_handler(stream: Any) -> None:
            asked["sessions"] += 1
            await answer_sync(stream, [(early.ts, early.id)])

        async def fetch_handler(stream: Any) -> None:
            request = decode_request(await read_frame(stream) or b"")
            await read_frame(stream)
            if early.id in request.ids:
                asked["early"] += 1
                for frame in encode_fetch_batches([early.raw]):
                    await write_frame(stream, frame)
            await write_end(stream)

        p2p.set_stream_handler(SYNC_PROTOCOL_ID, sync_handler)
        p2p.set_stream_handler(FETCH_PROTOCOL_ID, fetch_handler)
        await p2p.connect(await trio.to_thread.run_sync(node.addr))

        async def fetched_once() -> bool:
            return asked["early"] >= 1

        await wait_for(fetched_once, 30, "the early object to be fetched once")
        # News (an import) makes the node reconcile with every peer again.
        for i in range(3):
            sessions = asked["sessions"]
            await call(node, "import_objects", objects=[_profiles(1)[0].raw])

            async def again(n: int = sessions) -> bool:
                return asked["sessions"] > n

            await wait_for(again, 30, f"session {i + 2}")
        st = await call(node, "status")
        assert asked["early"] == 1, asked  # deferred: not asked again before its time
        assert st["sync"]["violations"] == 0  # and nobody blamed for it

    run_case(tmp_path, case)
