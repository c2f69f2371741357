"""A hostile sync peer (an in-process P2PNode speaking crafted frames) against a real node
process: every case costs bounded time, is reported as a violation, and never changes the
store; the node keeps running."""

from __future__ import annotations

import hashlib
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from libp2p.crypto.ed25519 import create_new_key_pair

from p2p.framing import MAX_FRAME, read_frame, write_end, write_frame
from p2p.host import P2PNode, open_p2p_node
from p2p.sync_transport import (
    PeerViolation,
    fetch_objects,
    initiate_sync,
    respond_sync,
    serve_fetch,
)
from protocols import kinds, objects
from protocols.reconcile import Initiator, Responder, SortedItems
from protocols.sync_messages import (
    FETCH_PROTOCOL_ID,
    MAX_FETCH_IDS,
    SYNC_PROTOCOL_ID,
    Accept,
    FetchRequest,
    SyncOpen,
    decode_accept,
    decode_request,
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


async def answer_sync(stream: Any, keys: list[tuple[int, bytes]]) -> None:
    """A fake peer's sync responder over `keys`: accept, reconcile to the end, END."""
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
            await answer_sync(stream, keys)

        async def fetch_handler(stream: Any) -> None:
            served["fetches"] += 1
            request = decode_request(await read_frame(stream) or b"")
            await read_frame(stream)
            by_id = dict(zip(bad_ids, bad, strict=True))
            # The invalid ones (never the lies), in request order as the rules want.
            answer = [by_id[oid] for oid in request.ids if oid in by_id]
            for frame in encode_fetch_batches(answer):
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
        # garbage opening, garbage message, oversized frame header, over-long fetch request
        assert after["sync"]["violations"] >= before["sync"]["violations"] + 4
        assert after["digest"] == before["digest"]

    run_case(tmp_path, case)


# ---- the stream rules over in-memory streams (p2p/sync_transport.py, docs/sync.md) --------


class MemStream:
    """One end of an in-memory byte stream with the calls the transport makes."""

    def __init__(self, inner: Any) -> None:
        self._s = inner

    async def read(self, n: int | None = None) -> bytes:
        data: bytes = await self._s.receive_some(n)
        return data

    async def write(self, data: bytes) -> None:
        await self._s.send_all(data)

    async def close(self) -> None:
        await self._s.send_stream.aclose()

    async def reset(self) -> None:
        await self._s.aclose()


def stream_pair() -> tuple[MemStream, MemStream]:
    a, b = trio.testing.memory_stream_pair()
    return MemStream(a), MemStream(b)


def test_fetch_answers_must_follow_request_order() -> None:
    ids = [hashlib.sha256(bytes([i])).digest() for i in range(3)]
    raws = {oid: bytes([i]) for i, oid in enumerate(ids)}  # object_id(raw) == oid

    async def serve(stream: MemStream, order: list[bytes]) -> None:
        assert await read_frame(stream) is not None
        assert await read_frame(stream) is None
        for frame in encode_fetch_batches(order):
            await write_frame(stream, frame)
        await write_end(stream)

    async def fetch(order: list[bytes]) -> list[bytes]:
        client, server = stream_pair()
        got: list[bytes] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve, server, order)
            with trio.fail_after(10):
                async for batch in fetch_objects(client, ids):
                    got += batch
        return got

    in_order = [raws[ids[0]], raws[ids[2]]]  # ids[1] unknown: omitted
    assert trio.run(fetch, in_order) == in_order
    for bad in ([raws[ids[2]], raws[ids[0]]], [raws[ids[0]], raws[ids[0]]]):
        with pytest.raises(BaseExceptionGroup) as info:
            trio.run(fetch, bad)
        assert info.group_contains(PeerViolation, match="order")


def test_fetch_server_answers_after_end_and_sends_end_alone_for_unknown_ids() -> None:
    looked_up: list[int] = []

    async def lookup(ids: Any) -> tuple[list[bytes], int]:
        looked_up.append(len(ids))
        return [], len(ids)

    async def body() -> None:
        client, server = stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(serve_fetch, server, lookup))
            await write_frame(client, FetchRequest((bytes(32),)).encode())
            await trio.testing.wait_all_tasks_blocked()
            assert looked_up == []  # the request's END has not come yet: nothing answered
            await write_end(client)
            with trio.fail_after(10):
                assert await read_frame(client) is None  # END alone: it knows none
            assert looked_up == [1]

    trio.run(body)


def test_oversized_frame_header_is_a_violation_and_busy_ends_cleanly() -> None:
    async def body() -> None:
        client, server = stream_pair()
        await client.write(struct.pack(">I", MAX_FRAME + 1))
        with pytest.raises(PeerViolation, match="exceeds"), trio.fail_after(10):
            await respond_sync(server, busy)
        # BUSY: status, then END both ways; the initiator gets the status, no error.
        client, server = stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(respond_sync, server, busy))
            with trio.fail_after(10):
                status = await initiate_sync(
                    client, SyncOpen(kinds.PUBLIC_SCOPE), Initiator(SortedItems()).start(),
                    never_called, lambda: False,
                )  # fmt: skip
        assert status == Accept.BUSY

    async def busy(opening: SyncOpen) -> Any:
        return Accept.BUSY, None, lambda: True

    async def never_called(data: bytes) -> bytes | None:
        raise AssertionError("no reconciliation after BUSY")

    trio.run(body)
