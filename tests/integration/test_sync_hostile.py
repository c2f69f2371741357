"""A hostile sync peer (an in-process P2PNode speaking crafted frames) against a real node
process: every case costs bounded time, is reported as a violation, and never changes the
store; the node keeps running."""

from __future__ import annotations

import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from libp2p.crypto.ed25519 import create_new_key_pair

from p2p.framing import read_frame, write_end, write_frame
from p2p.host import P2PNode, open_p2p_node
from protocols import kinds, objects
from protocols.reconcile import Initiator, Responder, SortedItems
from protocols.sync_messages import (
    FETCH_PROTOCOL_ID,
    MAX_FETCH_IDS,
    SYNC_PROTOCOL_ID,
    Accept,
    SyncOpen,
    decode_accept,
    encode_fetch_batches,
)
from tests.integration.nodes import NodeProc

pytestmark = pytest.mark.timeout(120)


async def _accept_all(topic: str, data: bytes, peer: str) -> bool:
    return True


async def call(node: NodeProc, method: str, **params: Any) -> Any:
    return await trio.to_thread.run_sync(lambda: node.call(method, **params))


@asynccontextmanager
async def fake_peer(node: NodeProc) -> AsyncIterator[P2PNode]:
    async with open_p2p_node(
        create_new_key_pair(), ["/ip4/127.0.0.1/tcp/0"], validator=_accept_all
    ) as p2p:
        yield p2p


async def wait_for(pred: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    with trio.move_on_after(timeout):
        while not await pred():
            await trio.sleep(0.2)
        return
    raise AssertionError(f"timed out waiting for {what}")


def sync_status(st: dict[str, Any]) -> dict[str, Any]:
    return dict(st["sync"])


def tampered_objects(n: int) -> list[bytes]:
    """Objects whose signature does not verify (ids = hashes of the tampered bytes)."""
    key = Ed25519PrivateKey.generate()
    now = int(time.time() * 1000) - 60_000
    out = []
    for i in range(n):
        obj = kinds.create(key, "profile", {"name": f"Forger {i}", "about": ""}, now + i)
        raw = bytearray(obj.raw)
        raw[-1] ^= 0xFF  # last signature byte
        out.append(bytes(raw))
    return out


def run_case(tmp_path: Path, case: Callable[[NodeProc, P2PNode], Awaitable[None]]) -> None:
    node = NodeProc(tmp_path / "n", "n")
    node.init()
    node.start()
    try:

        async def main() -> None:
            async with fake_peer(node) as p2p:
                await case(node, p2p)

        trio.run(main)
        assert node.call("status")["running"]  # survived
    finally:
        node.stop()


def test_peer_lying_about_ids_and_serving_invalid_objects(tmp_path: Path) -> None:
    """The fake answers the node's sync with ids it then refuses to serve (public scope),
    or serves objects that fail signature checks."""
    bad = tampered_objects(40)
    bad_ids = [objects.object_id(r) for r in bad]
    lies = [(int(time.time() * 1000) - 5000 + i, bytes([i]) * 32) for i in range(1, 100)]
    served: dict[str, int] = {"fetches": 0}

    async def case(node: NodeProc, p2p: P2PNode) -> None:
        before = await call(node, "status")
        keys = lies + [(int(time.time() * 1000) - 60_000 + i, oid) for i, oid in enumerate(bad_ids)]

        async def sync_handler(stream: Any) -> None:
            opening = await read_frame(stream)
            assert opening is not None
            await write_frame(stream, bytes([0x92, 1, int(Accept.OK)]))  # [1, OK]
            resp = Responder(SortedItems(keys))
            while not resp.done:
                data = await read_frame(stream)
                if data is None:
                    break
                reply = resp.receive(data)
                if reply is not None:
                    await write_frame(stream, reply)
            await write_end(stream)
            await read_frame(stream)

        async def fetch_handler(stream: Any) -> None:
            served["fetches"] += 1
            await read_frame(stream)
            await read_frame(stream)
            for frame in encode_fetch_batches(bad):  # the invalid ones; never the lies
                await write_frame(stream, frame)
            await write_end(stream)

        p2p.set_stream_handler(SYNC_PROTOCOL_ID, sync_handler)
        p2p.set_stream_handler(FETCH_PROTOCOL_ID, fetch_handler)
        await p2p.connect(await trio.to_thread.run_sync(node.addr))

        async def reported() -> bool:
            st = await call(node, "status")
            return bool(st["sync"]["violations"] >= 2)

        await wait_for(reported, 30, "violations to be reported")
        after = await call(node, "status")
        assert after["digest"] == before["digest"]  # nothing stored
        last = after["sync"]["last"]
        assert last.get("error", "").startswith("violation") or after["sync"]["violations"] >= 2
        assert served["fetches"] >= 1

    run_case(tmp_path, case)


def test_garbage_and_limits_on_incoming_streams(tmp_path: Path) -> None:
    async def case(node: NodeProc, p2p: P2PNode) -> None:
        addr = await trio.to_thread.run_sync(node.addr)
        peer = await p2p.connect(addr)
        before = await call(node, "status")

        async def expect_reset(stream: Any) -> None:
            with trio.fail_after(10):
                try:
                    while await read_frame(stream) is not None:
                        pass
                except Exception:
                    return  # reset / EOF before END: what a violation earns

        # 1. Garbage instead of SyncOpen.
        s = await p2p.new_stream(peer, [SYNC_PROTOCOL_ID])
        await write_frame(s, b"\xc1garbage")
        await expect_reset(s)
        # 2. A valid opening, then a garbage reconciliation message.
        s = await p2p.new_stream(peer, [SYNC_PROTOCOL_ID])
        await write_frame(s, SyncOpen(kinds.PUBLIC_SCOPE).encode())
        await write_frame(s, b"\x96\x01\x00\x00\xc4\x00\x90")
        await expect_reset(s)
        # 3. An oversized frame header.
        s = await p2p.new_stream(peer, [SYNC_PROTOCOL_ID])
        await s.write(struct.pack(">I", 0x7FFFFFFF))
        await expect_reset(s)
        # 4. A fetch request naming too many ids.
        s = await p2p.new_stream(peer, [FETCH_PROTOCOL_ID])
        ids = [i.to_bytes(32, "big") for i in range(MAX_FETCH_IDS + 1)]
        import msgpack

        await write_frame(s, msgpack.packb([1, ids]))
        await write_end(s)
        await expect_reset(s)
        # 5. Sessions held open: beyond the per-peer limit the node answers BUSY.
        held = []
        for _ in range(2):
            s = await p2p.new_stream(peer, [SYNC_PROTOCOL_ID])
            await write_frame(s, SyncOpen(kinds.PUBLIC_SCOPE).encode())
            raw = await read_frame(s, timeout=10)
            assert raw is not None and decode_accept(raw).status == Accept.OK
            held.append(s)
        s = await p2p.new_stream(peer, [SYNC_PROTOCOL_ID])
        await write_frame(s, SyncOpen(kinds.PUBLIC_SCOPE).encode())
        raw = await read_frame(s, timeout=10)
        assert raw is not None and decode_accept(raw).status == Accept.BUSY
        # An honest session still works afterwards (from the fake, with an empty set).
        for h in held:
            await h.reset()
        s = await p2p.new_stream(peer, [SYNC_PROTOCOL_ID])
        init = Initiator(SortedItems())
        await write_frame(s, SyncOpen(kinds.PUBLIC_SCOPE).encode())
        await write_frame(s, init.start())
        assert decode_accept(await read_frame(s, timeout=10) or b"").status == Accept.OK
        while not init.done:
            data = await read_frame(s, timeout=10)
            assert data is not None
            reply = init.receive(data)
            if reply is not None:
                await write_frame(s, reply)
        await write_end(s)
        assert await read_frame(s, timeout=10) is None
        assert len(init.need) >= 1  # the node's own profile
        after = await call(node, "status")
        assert after["sync"]["violations"] >= before["sync"]["violations"] + 3
        assert after["digest"] == before["digest"]

    run_case(tmp_path, case)
