"""The owner's blocks (p2p/blocklist.py, `P2PNode.set_blocked`), in process on loopback: a
blocked peer is disconnected, refused both ways, its gossip ignored even when another peer
forwards it; unblocked, it connects and is heard again."""

from __future__ import annotations

import pytest

from p2p.host import P2PNode
from p2p.peers import ConnectError
from tests.p2p.helpers import Recorder, link, nodes, run, wait_until

TOPIC = "percolab/test/blocklist"


def _connected(x: P2PNode, y: P2PNode) -> bool:
    return any(p["peer_id"] == y.peer_id for p in x.connected_peers())


def test_blocked_peer_is_refused_and_its_gossip_ignored() -> None:
    async def body() -> None:
        recs = [Recorder() for _ in range(3)]
        async with nodes(recs) as (a, b, c):
            await link(a, b)
            await link(b, c)
            await link(c, a)
            for n in (a, b, c):
                await n.subscribe(TOPIC)
            await wait_until(lambda: c.peer_id in a.peers_on_topic(TOPIC)
                             and b.peer_id in c.peers_on_topic(TOPIC), what="topic peers")

            a.set_blocked({b.peer_id})
            assert a.is_blocked(b.peer_id) and a.blocked_peers() == [b.peer_id]
            await wait_until(lambda: not _connected(a, b) and not _connected(b, a),
                             what="a and b to part")  # fmt: skip
            with pytest.raises(ConnectError):  # a refuses b's handshake
                await b.connect(a.listen_addrs()[0])
            with pytest.raises(ConnectError, match="blocked"):
                await a.connect(b.listen_addrs()[0])
            with pytest.raises(ConnectError, match="blocked"):
                await a.new_stream(b.peer_id, ["/percolab/test/1"])
            assert not _connected(a, b)

            # B's message reaches C, and C forwards it to A: A drops it (B is its origin).
            await b.publish(TOPIC, b"from b while blocked")
            await wait_until(lambda: recs[2].saw(b"from b while blocked"), what="c gets b's")
            await c.publish(TOPIC, b"from c")
            await wait_until(lambda: recs[0].saw(b"from c"), what="a gets c's")
            assert not recs[0].saw(b"from b while blocked")

            a.set_blocked(())
            assert not a.is_blocked(b.peer_id)
            await b.connect(a.listen_addrs()[0])
            await wait_until(lambda: _connected(a, b), what="b to connect again")
            await wait_until(lambda: b.peer_id in a.peers_on_topic(TOPIC), what="b on topic")
            await b.publish(TOPIC, b"from b again")
            await wait_until(lambda: recs[0].saw(b"from b again"), what="a gets b's again")

    run(body, timeout=60)
