"""Gossip between real nodes on 127.0.0.1: delivery, rejection, bursts, peer events."""

from __future__ import annotations

import time

import trio
from libp2p.crypto.ed25519 import create_new_key_pair

from p2p.host import open_p2p_node
from tests.p2p.helpers import Recorder, link, nodes, payload, run, wait_mesh, wait_until

TOPIC = "percolab/test"
BURST = 1000


def test_publish_reaches_b_and_c_through_validator() -> None:
    async def body() -> None:
        va, vb, vc = Recorder(), Recorder(), Recorder()
        async with nodes([va, vb, vc]) as (a, b, c):
            for n in (a, b, c):
                await n.subscribe(TOPIC)
            assert a.topics() == [TOPIC]
            await link(a, b)
            await link(c, b)  # line: a - b - c; c only hears a through b
            await wait_mesh(b, TOPIC, [a, c])
            await wait_mesh(a, TOPIC, [b])
            await a.publish(TOPIC, b"hello")
            await wait_until(lambda: vb.saw(b"hello") and vc.saw(b"hello"), what="delivery")
            assert (TOPIC, b"hello", a.peer_id) in vb.seen
            assert (TOPIC, b"hello", b.peer_id) in vc.seen  # from_peer = forwarder
            assert va.seen == []  # own publishes skip the validator

    run(body)


def test_rejected_message_is_not_forwarded() -> None:
    async def body() -> None:
        va, vc = Recorder(), Recorder()
        vb = Recorder(reject=lambda d: d.startswith(b"bad"))
        async with nodes([va, vb, vc]) as (a, b, c):
            for n in (a, b, c):
                await n.subscribe(TOPIC)
            await link(a, b)
            await link(c, b)
            await wait_mesh(b, TOPIC, [a, c])
            await wait_mesh(a, TOPIC, [b])
            await a.publish(TOPIC, b"bad-1")
            await wait_until(lambda: vb.saw(b"bad-1"), what="b validates bad-1")
            await a.publish(TOPIC, b"good-1")
            await wait_until(lambda: vc.saw(b"good-1"), what="good-1 at c")
            assert not vc.saw(b"bad-1")
            assert b.strike_count(a.peer_id) == 1

    run(body)


def test_burst_of_1000_arrives_in_full() -> None:
    async def body() -> None:
        va, vb = Recorder(), Recorder()
        async with nodes([va, vb]) as (a, b):
            await a.subscribe(TOPIC)
            await b.subscribe(TOPIC)
            await link(a, b)
            await wait_mesh(a, TOPIC, [b])
            t0 = time.perf_counter()
            for i in range(BURST):
                await a.publish(TOPIC, payload(i, 1024))
            t_pub = time.perf_counter() - t0
            await wait_until(lambda: len(vb.accepted) >= BURST, timeout=60, what="burst")
            elapsed = time.perf_counter() - t0
            assert sorted(vb.accepted) == [payload(i, 1024) for i in range(BURST)]
            print(
                f"\nburst: {BURST} x 1 KiB published in {t_pub:.2f} s, delivered in "
                f"{elapsed:.2f} s = {BURST / elapsed:.0f} msgs/s"
            )

    run(body, timeout=90)


def test_duplicate_content_is_delivered_once() -> None:
    async def body() -> None:
        va, vb = Recorder(), Recorder()
        async with nodes([va, vb]) as (a, b):
            await a.subscribe(TOPIC)
            await b.subscribe(TOPIC)
            await link(a, b)
            await wait_mesh(a, TOPIC, [b])
            await a.publish(TOPIC, b"same")
            await a.publish(TOPIC, b"same")  # new seqno, same content => same message id
            await a.publish(TOPIC, b"marker")
            await wait_until(lambda: vb.saw(b"marker"), what="marker")
            assert [d for _, d, _ in vb.seen].count(b"same") == 1

    run(body)


def test_peer_connected_events_and_callback() -> None:
    async def body() -> None:
        got: list[tuple[str, list[str]]] = []

        async def on_connected(peer_id: str, addrs: list[str]) -> None:
            got.append((peer_id, addrs))

        async with nodes([Recorder()]) as (a,):
            events = a.peer_events()
            async with open_p2p_node(
                create_new_key_pair(),
                ["/ip4/127.0.0.1/tcp/0"],
                validator=Recorder(),
                bootstrap=[a.listen_addrs()[0]],
                on_peer_connected=on_connected,
            ) as b:
                # b dials its bootstrap peer at start: a sees an inbound connection
                with trio.fail_after(10):
                    event = await events.receive()
                assert event.peer_id == b.peer_id and event.inbound
                await wait_until(lambda: bool(got), what="callback")
                assert got[0][0] == a.peer_id
                assert got[0][1] == [a.listen_addrs()[0]]

    run(body)


def test_redial_after_disconnect() -> None:
    async def body() -> None:
        async with nodes([Recorder(), Recorder()]) as (a, b):
            b.add_redial_addr(a.listen_addrs()[0])
            await wait_until(lambda: bool(a.connected_peers()), what="first dial")
            await b.disconnect(a.peer_id)
            await wait_until(lambda: not b.connected_peers(), what="disconnect")
            await wait_until(lambda: bool(b.connected_peers()), timeout=10, what="redial")

    run(body)
