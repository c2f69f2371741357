"""A peer outside the mesh still gets new objects by gossip (IHAVE/IWANT), within a few
heartbeats, not at the next sync (p2p/hardening.py behaviour 13, docs/gossip.md)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

import pytest
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.pubsub.pb import rpc_pb2

import p2p.gossip
from p2p.gossip import content_message_id
from p2p.hardening import HardenedGossipSub
from p2p.host import P2PNode, open_p2p_node
from p2p.limits import HEARTBEAT_INTERVAL_S
from tests.p2p.helpers import LOOPBACK, link, run, wait_until

TOPIC = "percolab/test-nonmesh"
# "Within a few heartbeats": the id is advertised at the first heartbeat after the publish
# (then for GOSSIP_WINDOW heartbeats); 5 heartbeats leave room for a loaded test machine.
DEADLINE_S = 5 * HEARTBEAT_INTERVAL_S


class GraftRefusingGossipSub(HardenedGossipSub):
    """Our hardened router, on a peer that declines the mesh.

    It answers every GRAFT with PRUNE (upstream's ``emit_prune``, carrying the usual
    ``PRUNE_BACKOFF_S`` backoff): on the wire that is what any GossipSub peer sends when it
    declines us (its mesh is full, it is backing off from us, it does not want full
    messages), and the PRUNE is what puts it under backoff at the grafting side, the state
    in which it used to get no IHAVE. It also never GRAFTs anyone itself (D = D_low = 0): a
    peer that declines the mesh does not then ask to join it. Everything else (validation,
    IHAVE/IWANT handling, message cache) is the production code path.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.update(degree=0, degree_low=0)
        super().__init__(*args, **kwargs)
        self.grafts_refused = 0
        self.ihave_received = 0
        self.iwant_ids: list[bytes] = []  # message ids this peer asked for by IWANT
        self.iwant_received = 0  # IWANTs this peer answered from its message cache

    async def handle_graft(self, graft_msg: Any, sender_peer_id: Any) -> None:
        self.grafts_refused += 1
        await self.emit_prune(graft_msg.topicID, sender_peer_id, False, False)

    async def handle_ihave(self, ihave_msg: Any, sender_peer_id: Any) -> None:
        self.ihave_received += 1
        await super().handle_ihave(ihave_msg, sender_peer_id)

    async def handle_iwant(self, iwant_msg: Any, sender_peer_id: Any) -> None:
        self.iwant_received += 1
        await super().handle_iwant(iwant_msg, sender_peer_id)

    async def emit_iwant(self, msg_ids: Sequence[bytes], to_peer: Any) -> None:
        self.iwant_ids.extend(bytes(m) for m in msg_ids)
        await super().emit_iwant(msg_ids, to_peer)


class Arrivals:
    """The node validator (stands in for ingest): records calls, sets an event per payload."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes, str]] = []
        self._events: dict[bytes, trio.Event] = {}

    def event(self, data: bytes) -> trio.Event:
        return self._events.setdefault(data, trio.Event())

    async def __call__(self, topic: str, data: bytes, from_peer: str) -> bool:
        self.seen.append((topic, data, from_peer))
        self.event(data).set()
        return True


def _router(node: P2PNode) -> Any:
    return node._gossip._pubsub.router


async def _arrives_within(arrivals: Arrivals, data: bytes, what: str) -> float:
    t0 = time.monotonic()
    try:
        with trio.fail_after(DEADLINE_S):
            await arrivals.event(data).wait()
    except trio.TooSlowError as exc:
        raise AssertionError(f"{what}: not delivered within {DEADLINE_S} s") from exc
    return time.monotonic() - t0


def test_peer_refusing_graft_gets_new_object_by_ihave_iwant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def body() -> None:
        va, vb = Arrivals(), Arrivals()
        async with contextlib.AsyncExitStack() as stack:
            a = await stack.enter_async_context(
                open_p2p_node(create_new_key_pair(), LOOPBACK, validator=va)
            )
            # b is built by the production build_gossip, with the refusing router class.
            with monkeypatch.context() as m:
                m.setattr(p2p.gossip, "HardenedGossipSub", GraftRefusingGossipSub)
                b = await stack.enter_async_context(
                    open_p2p_node(create_new_key_pair(), LOOPBACK, validator=vb)
                )
            ra, rb = _router(a), _router(b)
            assert isinstance(rb, GraftRefusingGossipSub)
            assert not isinstance(ra, GraftRefusingGossipSub)
            b_id = b.host.get_id()

            for n in (a, b):
                await n.subscribe(TOPIC)
            await link(a, b)
            # a grafts b as soon as b's subscription arrives; b answers PRUNE.
            await wait_until(
                lambda: rb.grafts_refused >= 1 and ra._check_back_off(b_id, TOPIC),
                what="b declines a's GRAFT",
            )
            # The bug's precondition: b is subscribed, outside a's mesh, under backoff.
            assert a.peers_on_topic(TOPIC) == [b.peer_id]
            assert a.mesh_peers(TOPIC) == [] and b.mesh_peers(TOPIC) == []

            data = b"a new object, published after b declined the mesh"
            await a.publish(TOPIC, data)
            elapsed = await _arrives_within(vb, data, "a -> b (b outside a's mesh)")

            # Through IHAVE/IWANT: b asked for exactly this id, and nothing meshed them.
            assert rb.ihave_received >= 1
            assert rb.iwant_ids == [content_message_id(rpc_pb2.Message(data=data))]
            assert b.peer_id not in a.mesh_peers(TOPIC)
            # The full message went through b's topic validator (the node's ingest), with
            # the forwarding peer, exactly like a mesh delivery.
            assert vb.seen == [(TOPIC, data, a.peer_id)]
            assert elapsed <= DEADLINE_S
            print(f"\nnon-mesh delivery a -> b by IHAVE/IWANT in {elapsed:.2f} s")

            # And the other way: b's own object (its mesh is empty, so it sends it to no
            # one directly) reaches a through b's IHAVE and a's IWANT.
            back = b"an object from the peer that declined the mesh"
            await b.publish(TOPIC, back)
            elapsed = await _arrives_within(va, back, "b -> a (b has no mesh)")
            assert va.seen == [(TOPIC, back, b.peer_id)]
            assert rb.iwant_received >= 1
            print(f"non-mesh delivery b -> a by IHAVE/IWANT in {elapsed:.2f} s")

    run(body, timeout=60)
