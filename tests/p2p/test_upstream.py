"""Reproductions of the py-libp2p 0.8.1 behaviours that p2p/ works around.

If one of these starts failing after a libp2p upgrade, upstream changed: revisit the matching
workaround in p2p/hardening.py or p2p/host.py (and maybe delete it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import multiaddr
import pytest
import trio
from google.protobuf.message import DecodeError
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport
from libp2p.tools.anyio_service import background_trio_service
from libp2p.utils.varint import encode_varint_prefixed

from p2p.host import noise_only_security, yamux_only_muxer
from tests.p2p.test_hardening import TOPIC, frame, raw_peer, send_raw

CRASH_DEADLINE_S = 10


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            yield from _leaves(sub)
    else:
        yield exc


def _addr(host: Any) -> str:
    addr = str(host.get_addrs()[0])
    return addr if "/p2p/" in addr else f"{addr}/p2p/{host.get_id()}"


async def _vanilla_pubsub_receives(blob: bytes) -> None:
    kp = create_new_key_pair()
    host = new_host(key_pair=kp, sec_opt=noise_only_security(kp), muxer_opt=yamux_only_muxer())
    router = GossipSub([PROTOCOL_ID_V11], 6, 4, 12, heartbeat_interval=1)
    pubsub = Pubsub(host, router)
    async with (
        host.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]),
        background_trio_service(pubsub),
        background_trio_service(router),
    ):
        await pubsub.wait_until_ready()
        await pubsub.subscribe(TOPIC)
        async with raw_peer() as evil:
            await evil.connect(info_from_p2p_addr(multiaddr.Multiaddr(_addr(host))))
            await send_raw(evil, str(host.get_id()), blob)
            with trio.fail_after(CRASH_DEADLINE_S):
                await trio.sleep_forever()  # the crash cancels this


def _assert_crashes_with_decode_error(blob: bytes) -> None:
    with pytest.raises(BaseException) as info:
        trio.run(_vanilla_pubsub_receives, blob)
    assert any(isinstance(e, DecodeError) for e in _leaves(info.value)), info.value


def test_upstream_undecodable_frame_kills_vanilla_pubsub() -> None:
    _assert_crashes_with_decode_error(encode_varint_prefixed(b"\xff\xff\xff\xff\x0f"))


def test_upstream_garbage_key_kills_vanilla_pubsub() -> None:
    msg = rpc_pb2.Message(
        data=b"g",
        topicIDs=[TOPIC],
        from_id=b"\x12\x20" + os.urandom(32),
        seqno=bytes(8),
        key=b"junk",
        signature=os.urandom(64),
    )
    _assert_crashes_with_decode_error(frame(msg))


def test_upstream_default_host_accepts_plaintext() -> None:
    async def body() -> None:
        server = new_host(key_pair=create_new_key_pair())  # default sec_opt
        kp = create_new_key_pair()
        sec = {PLAINTEXT_PROTOCOL_ID: InsecureTransport(kp)}
        with trio.fail_after(20):
            async with (
                server.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]),
                raw_peer(sec_opt=sec, key_pair=kp) as dialer,
            ):
                await dialer.connect(info_from_p2p_addr(multiaddr.Multiaddr(_addr(server))))
                assert dialer.get_connected_peers() == [server.get_id()]

    trio.run(body)
