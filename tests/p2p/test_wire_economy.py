"""The byte-saving overrides (p2p/hardening.py behaviours 6-11, p2p/muxer.py) do what they
claim, and gossip still works through them."""

from __future__ import annotations

import struct
from typing import Any

import trio
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.validators import signature_validator
from libp2p.stream_muxer.yamux.yamux import (
    FLAG_FIN,
    TYPE_DATA,
    TYPE_WINDOW_UPDATE,
    YAMUX_HEADER_FORMAT,
)
from libp2p.utils.varint import decode_varint_from_bytes

from p2p.gossip import content_message_id
from p2p.limits import GOSSIP_DEGREE_HIGH, YAMUX_CREDIT_BATCH_BYTES
from p2p.muxer import BatchedCreditYamux
from tests.p2p.helpers import Recorder, link, nodes, payload, run, wait_mesh, wait_until

TOPIC = "percolab/test-wire"


def _pubsub(node: Any) -> Any:
    return node._gossip._pubsub


def _frame(typ: int, flags: int, sid: int, length: int) -> bytes:
    return struct.pack(YAMUX_HEADER_FORMAT, 0, typ, flags, sid, length)


class _Capture:
    """Stands in for the secured connection under a Yamux: records what is written."""

    is_initiator = True

    def __init__(self) -> None:
        self.frames: list[tuple[int, int, int, int]] = []

    async def write(self, data: bytes) -> None:
        self.frames.append(struct.unpack(YAMUX_HEADER_FORMAT, data[:12])[1:])


def test_window_credit_is_batched_and_flags_pass_through() -> None:
    async def body() -> None:
        cap = _Capture()
        mux = BatchedCreditYamux(cap, None, is_initiator=True)  # type: ignore[arg-type]
        small = YAMUX_CREDIT_BATCH_BYTES // 4
        for _ in range(3):
            await mux._write_frame(_frame(TYPE_WINDOW_UPDATE, 0, 1, small))
        assert cap.frames == []  # held back: 3/4 of the batch
        await mux._write_frame(_frame(TYPE_WINDOW_UPDATE, 0, 1, small))
        assert cap.frames == [(TYPE_WINDOW_UPDATE, 0, 1, 4 * small)]  # one coalesced frame
        await mux._write_frame(_frame(TYPE_WINDOW_UPDATE, 0, 3, 10))
        await mux._write_frame(_frame(TYPE_WINDOW_UPDATE, FLAG_FIN, 3, 0))  # FIN: not held
        await mux._write_frame(_frame(TYPE_DATA, 0, 3, 0))
        assert cap.frames[1:] == [(TYPE_WINDOW_UPDATE, FLAG_FIN, 3, 0), (TYPE_DATA, 0, 3, 0)]
        assert 3 not in mux._held_credit  # the ended stream's credit is forgotten

    run(body)


def test_hosts_use_the_batched_credit_muxer_and_bulk_gossip_flows() -> None:
    async def body() -> None:
        rec = Recorder()
        async with nodes([Recorder(), rec]) as (a, b):
            await link(a, b)
            conns = a.host.get_network().get_connections(b.host.get_id())
            assert conns and all(isinstance(c.muxed_conn, BatchedCreditYamux) for c in conns)
            for n in (a, b):
                await n.subscribe(TOPIC)
            await wait_mesh(a, TOPIC, [b])
            # well over the 256 KiB initial window: credit must keep flowing
            blobs = [payload(i, 4096) for i in range(200)]
            for blob in blobs:
                await a.publish(TOPIC, blob)
            await wait_until(lambda: len(rec.accepted) == len(blobs), timeout=30, what="all")

    run(body, timeout=60)


class _Sink:
    """A stream that keeps what pubsub writes to it."""

    def __init__(self) -> None:
        self.data = b""

    async def write(self, data: bytes) -> None:
        self.data += data


def _decode(raw: bytes) -> Any:
    size = decode_varint_from_bytes(raw)
    rpc = rpc_pb2.RPC()
    rpc.ParseFromString(raw[len(raw) - size :])
    return rpc


def test_rpcs_leave_without_sender_record_and_messages_without_key() -> None:
    async def body() -> None:
        async with nodes([Recorder()]) as (a,):
            pubsub = _pubsub(a)
            sink = _Sink()
            rpc = rpc_pb2.RPC(senderRecord=b"x" * 200)
            assert await pubsub.write_msg(sink, rpc)
            assert not _decode(sink.data).HasField("senderRecord")

            await a.subscribe(TOPIC)
            await a.publish(TOPIC, b"hello")
            cached = list(pubsub.router.mcache.msgs.values())
            assert len(cached) == 1
            msg = cached[0]
            assert msg.key == b""  # Ed25519: the key is inlined in the peer id
            assert signature_validator(msg)

    run(body)


def test_message_cache_speaks_content_ids() -> None:
    async def body() -> None:
        async with nodes([Recorder()]) as (a,):
            await a.subscribe(TOPIC)
            await a.publish(TOPIC, b"content id")
            router = _pubsub(a).router
            (msg,) = router.mcache.msgs.values()
            mid = content_message_id(msg)
            assert router.mcache.window(TOPIC) == [mid]
            assert router.mcache.get(mid) is msg

    run(body)


def test_mesh_stays_within_degree_bounds_and_heartbeat_stays_put() -> None:
    async def body() -> None:
        recs = [Recorder() for _ in range(GOSSIP_DEGREE_HIGH + 3)]
        async with nodes(recs) as ns:
            hub, *others = ns
            for n in others:
                await link(n, hub)
            for n in ns:
                await n.subscribe(TOPIC)
            router = _pubsub(hub).router
            interval = router.heartbeat_interval
            await wait_until(lambda: len(hub.peers_on_topic(TOPIC)) == len(others), timeout=20)
            await trio.sleep(3 * interval + 0.5)  # a few heartbeats: grafts, then pruning
            assert len(hub.mesh_peers(TOPIC)) <= GOSSIP_DEGREE_HIGH
            assert router.heartbeat_interval == interval  # no "adaptive" rewrite

    run(body, timeout=60)


def test_copies_arriving_during_validation_are_validated_and_forwarded_once() -> None:
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.peer.id import ID
    from libp2p.pubsub.validators import PUBSUB_SIGNING_PREFIX

    calls: list[bytes] = []

    async def slow_validator(topic: str, data: bytes, from_peer: str) -> bool:
        calls.append(data)
        await trio.sleep(0.2)
        return True

    async def body() -> None:
        async with nodes([slow_validator]) as (a,):
            await a.subscribe(TOPIC)
            pubsub = _pubsub(a)
            forwarded: list[Any] = []
            real_publish = pubsub.router.publish

            async def counting_publish(fwd: Any, msg: Any) -> None:
                forwarded.append(fwd)
                await real_publish(fwd, msg)

            pubsub.router.publish = counting_publish
            kp = create_new_key_pair()
            msg = rpc_pb2.Message(
                data=b"one object", topicIDs=[TOPIC],
                from_id=ID.from_pubkey(kp.public_key).to_bytes(), seqno=(1).to_bytes(8, "big"),
            )  # fmt: skip
            msg.signature = kp.private_key.sign(
                PUBSUB_SIGNING_PREFIX.encode() + msg.SerializeToString()
            )
            peers = [ID.from_pubkey(create_new_key_pair().public_key) for _ in range(3)]
            async with trio.open_nursery() as nursery:
                for p in peers:  # three mesh peers deliver the same copy at once
                    nursery.start_soon(pubsub.push_msg, p, msg)
            assert calls == [b"one object"]
            assert len(forwarded) == 1 and forwarded[0] in peers

    run(body)
