"""A node survives hostile peers: crafted pubsub frames, garbage keys, bad signatures,
non-Noise dialers, and repeated invalid objects (down-scoring)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import multiaddr
import pytest
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.validators import PUBSUB_SIGNING_PREFIX
from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport
from libp2p.utils.varint import encode_varint_prefixed

from p2p.hardening import PeerGuard
from p2p.host import noise_only_security, yamux_only_muxer
from tests.p2p.helpers import Recorder, link, nodes, run, wait_mesh, wait_until

TOPIC = "percolab/test"
MESHSUB_11 = TProtocol("/meshsub/1.1.0")


@contextlib.asynccontextmanager
async def raw_peer(sec_opt: Any = None, key_pair: Any = None) -> AsyncIterator[Any]:
    """A bare py-libp2p host (no pubsub) we drive by hand."""
    kp = key_pair or create_new_key_pair()
    host = new_host(
        key_pair=kp,
        sec_opt=sec_opt if sec_opt is not None else noise_only_security(kp),
        muxer_opt=yamux_only_muxer(),
    )
    async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        yield host


def signed_message(kp: Any, data: bytes, topic: str = TOPIC, seqno: int = 1) -> Any:
    from libp2p.peer.id import ID

    msg = rpc_pb2.Message(
        data=data,
        topicIDs=[topic],
        from_id=ID.from_pubkey(kp.public_key).to_bytes(),
        seqno=seqno.to_bytes(8, "big"),
    )
    msg.signature = kp.private_key.sign(PUBSUB_SIGNING_PREFIX.encode() + msg.SerializeToString())
    return msg


def frame(*msgs: Any, subscribe: bool = True) -> bytes:
    rpc = rpc_pb2.RPC(publish=list(msgs))
    if subscribe:
        rpc.subscriptions.extend([rpc_pb2.RPC.SubOpts(subscribe=True, topicid=TOPIC)])
    return encode_varint_prefixed(rpc.SerializeToString())


async def send_raw(host: Any, peer_id: str, blob: bytes) -> Any:
    from libp2p.peer.id import ID

    stream = await host.new_stream(ID.from_base58(peer_id), [MESHSUB_11])
    await stream.write(blob)
    return stream


def test_node_survives_crafted_pubsub_frames() -> None:
    async def body() -> None:
        va, vb = Recorder(), Recorder()
        async with nodes([va, vb]) as (a, b):
            await a.subscribe(TOPIC)
            await b.subscribe(TOPIC)
            await link(a, b)
            await wait_mesh(a, TOPIC, [b])
            kp = create_new_key_pair()
            async with raw_peer(key_pair=kp) as evil:
                evil_id = str(evil.get_id())
                await evil.connect(info_from_p2p_addr(multiaddr.Multiaddr(b.listen_addrs()[0])))

                # (a) one undecodable protobuf frame on /meshsub/1.1.0
                await send_raw(evil, b.peer_id, encode_varint_prefixed(b"\xff\xff\xff\xff\x0f"))
                await wait_until(lambda: b.strike_count(evil_id) == 1, what="decode strike")

                # (b) a message whose `from` is not an identity peer id and `key` is garbage
                garbage = rpc_pb2.Message(
                    data=b"garbage-key",
                    topicIDs=[TOPIC],
                    from_id=b"\x12\x20" + os.urandom(32),  # sha256 multihash: key needed
                    seqno=(1).to_bytes(8, "big"),
                    key=b"\x08\x01\x12\x05junk!",
                    signature=os.urandom(64),
                )
                await send_raw(evil, b.peer_id, frame(garbage))
                await wait_until(lambda: b.strike_count(evil_id) == 2, what="garbage key strike")

                # (c) bad signatures: forged bytes, and a valid signature over other data
                forged = signed_message(kp, b"forged", seqno=2)
                forged.signature = os.urandom(64)
                swapped = signed_message(kp, b"original", seqno=3)
                swapped.data = b"tampered"
                await send_raw(evil, b.peer_id, frame(forged, swapped))
                await wait_until(lambda: b.strike_count(evil_id) == 4, what="bad sig strikes")

                # still alive: an honest message from the same raw peer is validated ...
                await send_raw(evil, b.peer_id, frame(signed_message(kp, b"honest-raw", seqno=4)))
                await wait_until(lambda: vb.saw(b"honest-raw"), what="honest raw message")
                # ... and gossip from a regular node still flows
                await a.publish(TOPIC, b"honest")
                await wait_until(lambda: vb.saw(b"honest"), what="honest gossip")
                for bad in (b"garbage-key", b"forged", b"tampered"):
                    assert not vb.saw(bad)

    run(body)


@pytest.mark.parametrize("which", ["plaintext", "secio"])
def test_non_noise_dialer_is_refused(which: str) -> None:
    async def body() -> None:
        import libp2p.security.secio.transport as secio

        kp = create_new_key_pair()
        sec: dict[Any, Any]
        if which == "plaintext":
            sec = {PLAINTEXT_PROTOCOL_ID: InsecureTransport(kp)}
        else:
            sec = {TProtocol(secio.ID): secio.Transport(kp)}
        async with nodes([Recorder()]) as (b,), raw_peer(sec_opt=sec, key_pair=kp) as dialer:
            info = info_from_p2p_addr(multiaddr.Multiaddr(b.listen_addrs()[0]))
            with pytest.raises(Exception):  # noqa: B017 - any dial failure is a refusal
                await dialer.connect(info)
            assert b.connected_peers() == []
            assert dialer.get_connected_peers() == []

    run(body)


def test_repeated_invalid_objects_get_peer_disconnected_and_blocked() -> None:
    async def body() -> None:
        guard = PeerGuard(threshold=3, window_s=60, block_s=600)
        va, vb = Recorder(), Recorder(reject=lambda d: d.startswith(b"bad"))
        async with nodes([va, vb], guards=[None, guard]) as (a, b):
            await a.subscribe(TOPIC)
            await b.subscribe(TOPIC)
            await link(a, b)
            await wait_mesh(a, TOPIC, [b])
            for i in range(3):
                await a.publish(TOPIC, b"bad-%d" % i)
            await wait_until(lambda: b.is_blocked(a.peer_id), what="block")
            await wait_until(lambda: b.connected_peers() == [], what="disconnect at b")
            await wait_until(lambda: a.connected_peers() == [], what="disconnect at a")
            assert a.peer_id in b.blocked_peers()
            # b refuses to dial it while blocked; if it dials in, it is kicked again
            from p2p.peers import ConnectError

            with pytest.raises(ConnectError):
                await b.connect(a.listen_addrs()[0])
            with contextlib.suppress(Exception):
                await a.connect(b.listen_addrs()[0])
            await wait_until(lambda: b.connected_peers() == [], what="kicked on reconnect")

    run(body)


def test_report_invalid_counts_towards_block() -> None:
    async def body() -> None:
        guard = PeerGuard(threshold=2, window_s=60, block_s=600)
        async with nodes([Recorder(), Recorder()], guards=[None, guard]) as (a, b):
            await link(a, b)
            b.report_invalid(a.peer_id, "bad sync object")
            assert not b.is_blocked(a.peer_id)
            b.report_invalid(a.peer_id, "bad sync object")
            assert b.is_blocked(a.peer_id)
            await wait_until(lambda: b.connected_peers() == [], what="disconnect")

    run(body)


def test_strikes_expire_outside_window() -> None:
    async def body() -> None:
        guard = PeerGuard(threshold=2, window_s=0.2, block_s=0.3)
        guard.strike("peerA", "x")
        await trio.sleep(0.3)  # outside the window: the first strike no longer counts
        guard.strike("peerA", "x")
        assert not guard.is_blocked("peerA")
        guard.strike("peerA", "x")
        assert guard.is_blocked("peerA")
        await trio.sleep(0.35)
        assert not guard.is_blocked("peerA")

    run(body)


def test_total_connection_limit_is_enforced() -> None:
    async def body() -> None:
        from p2p.host import open_p2p_node
        from tests.p2p.helpers import LOOPBACK

        async with (
            nodes([Recorder(), Recorder()]) as (a, c),
            open_p2p_node(
                create_new_key_pair(), LOOPBACK, validator=Recorder(), max_connections=1
            ) as b,
        ):
            await link(a, b)
            with contextlib.suppress(Exception):
                await c.connect(b.listen_addrs()[0])
            await wait_until(lambda: c.connected_peers() == [], what="c refused")
            assert [p["peer_id"] for p in b.connected_peers()] == [a.peer_id]

    run(body)
