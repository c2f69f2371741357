"""GossipSub wiring: router/pubsub construction, the validator bridge, paced publishing.

* Message id = SHA-256 of the message ``data``: the same object published by two authors'
  nodes, or re-published after a restart, is deduplicated by content.
* Strict signing stays ON (js-libp2p interop needs StrictSign).
* Every received message goes through the node's validator as a GossipSub topic validator:
  ``False`` drops it (never forwarded) and counts a strike against the forwarding peer;
  ``None`` drops it with no strike (nobody broke the protocol); ``True`` forwards it.
  The node's own publishes skip the validator (the node stored the object before
  publishing it).
* ``publish`` is paced: it waits until every peer's send queue is below
  ``PUBLISH_QUEUE_HIGH_WATER`` RPCs, so a burst cannot overflow the queues and lose
  messages silently.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11

from p2p.hardening import HardenedGossipSub, HardenedPubsub, PeerGuard
from p2p.limits import (
    FANOUT_TTL_S,
    GOSSIP_DEGREE,
    GOSSIP_DEGREE_HIGH,
    GOSSIP_DEGREE_LOW,
    GOSSIP_HISTORY,
    GOSSIP_WINDOW,
    HEARTBEAT_INITIAL_DELAY_S,
    HEARTBEAT_INTERVAL_S,
    MAX_CONCURRENT_VALIDATORS,
    MAX_GOSSIP_RPC_BYTES,
    MAX_TOPICS_PER_PEER,
    PRUNE_BACKOFF_S,
    PUBLISH_PACE_MAX_WAIT_S,
    PUBLISH_PACE_POLL_S,
    PUBLISH_QUEUE_HIGH_WATER,
    RELAY_MSGS_PER_S_PER_PEER_TOPIC,
    SEEN_TTL_S,
    VALIDATION_CACHE_SIZE,
    VALIDATION_CACHE_TTL_S,
    VALIDATION_TIMEOUT_S,
)

logger = logging.getLogger(__name__)

# (topic, data, forwarding peer id) -> True: accept and forward; False: reject, a strike
# against the forwarder; None: drop without blame (e.g. an object deferred by its timestamp).
Validator = Callable[[str, bytes, str], Awaitable[bool | None]]

# GossipSub 1.1 only. py-libp2p 0.8.1's 1.2 (IDONTWANT) roughly doubled loopback bytes per
# delivered byte in bench/gossip.py (10 nodes, 1 KiB objects: ~9x with 1.2 vs ~4.6x without)
# and added latency; js-libp2p speaks 1.1 too, so interop is kept. (That measurement predates
# the fixes of hardening.py behaviours 6-11; upstream sends IDONTWANT only after validation,
# to every mesh peer, one RPC each, which is why it cost more than it saved.) (0.8.1 also speaks
# 1.3/1.4/2.0, py-libp2p-specific extensions we do not rely on.)
GOSSIP_PROTOCOLS = [PROTOCOL_ID_V11]


def content_message_id(msg: Any) -> bytes:
    """GossipSub message id: SHA-256 of the payload."""
    return hashlib.sha256(bytes(msg.data)).digest()


def build_gossip(host: Any, guard: PeerGuard) -> tuple[HardenedPubsub, HardenedGossipSub]:
    """Construct the router and pubsub (services, not yet running) on ``host``."""
    router = HardenedGossipSub(
        protocols=GOSSIP_PROTOCOLS,
        degree=GOSSIP_DEGREE,
        degree_low=GOSSIP_DEGREE_LOW,
        degree_high=GOSSIP_DEGREE_HIGH,
        time_to_live=FANOUT_TTL_S,
        gossip_window=GOSSIP_WINDOW,
        gossip_history=GOSSIP_HISTORY,
        heartbeat_initial_delay=HEARTBEAT_INITIAL_DELAY_S,
        heartbeat_interval=HEARTBEAT_INTERVAL_S,
        prune_back_off=PRUNE_BACKOFF_S,
        spam_protection_enabled=True,
        max_messages_per_topic_per_second=RELAY_MSGS_PER_S_PER_PEER_TOPIC,
        # Needs >= 3 distinct IPs; on a LAN or loopback every peer may share one.
        eclipse_protection_enabled=False,
        # Upstream's "adaptive" mode turns the 1 s heartbeat into >= 60 s and widens
        # D_low/D_high whenever its health score is < 0.7/0.8 (hardening.py, behaviour 6).
        adaptive_gossip_enabled=False,
        msg_id_fn=content_message_id,
    )
    pubsub = HardenedPubsub(
        host,
        router,
        on_strike=guard.strike,
        strict_signing=True,
        msg_id_constructor=content_message_id,
        seen_ttl=SEEN_TTL_S,
        max_concurrent_validator_count=MAX_CONCURRENT_VALIDATORS,
        validation_cache_ttl=VALIDATION_CACHE_TTL_S,
        validation_cache_size=VALIDATION_CACHE_SIZE,
        validation_timeout=VALIDATION_TIMEOUT_S,
        max_subscriptions_per_peer=MAX_TOPICS_PER_PEER,
        max_inbound_rpc_size=MAX_GOSSIP_RPC_BYTES,
    )
    return pubsub, router


class Gossip:
    """Topic membership, the validator bridge and paced publishing over one pubsub."""

    def __init__(self, pubsub: HardenedPubsub, validator: Validator, guard: PeerGuard) -> None:
        self._pubsub = pubsub
        self._validator = validator
        self._guard = guard
        self._publish_lock = trio.Lock()
        self.published = 0

    def _make_topic_validator(self, topic: str) -> Callable[[Any, Any], Awaitable[bool]]:
        my_id = self._pubsub.my_id

        async def topic_validator(forwarder: Any, msg: Any) -> bool:
            if forwarder == my_id:
                return True
            try:
                verdict = await self._validator(topic, bytes(msg.data), str(forwarder))
            except Exception:
                logger.exception("validator raised on a message from %s; dropping it", forwarder)
                return False
            if verdict is False:
                self._guard.strike(forwarder, f"invalid object on {topic}")
            return verdict is True

        return topic_validator

    async def subscribe(self, topic: str) -> None:
        if topic in self._pubsub.topic_ids:
            return
        self._pubsub.set_topic_validator(
            topic, self._make_topic_validator(topic), is_async_validator=True
        )
        await self._pubsub.subscribe(topic)

    async def unsubscribe(self, topic: str) -> None:
        await self._pubsub.unsubscribe(topic)
        self._pubsub.remove_topic_validator(topic)

    def topics(self) -> list[str]:
        return sorted(self._pubsub.topic_ids)

    def peers_on_topic(self, topic: str) -> list[str]:
        """Connected peers that announced a subscription to ``topic``."""
        return sorted(str(p) for p in self._pubsub.peer_topics.get(topic, ()))

    def mesh_peers(self, topic: str) -> list[str]:
        """Peers in our GossipSub mesh for ``topic`` (full-message peers)."""
        mesh = getattr(self._pubsub.router, "mesh", {})
        return sorted(str(p) for p in mesh.get(topic, ()))

    def _max_queue_depth(self) -> int:
        return max((len(q) for q in self._pubsub.peer_queues.values()), default=0)

    async def _wait_for_queue_room(self) -> None:
        if self._max_queue_depth() < PUBLISH_QUEUE_HIGH_WATER:
            return
        with trio.move_on_after(PUBLISH_PACE_MAX_WAIT_S) as scope:
            while self._max_queue_depth() >= PUBLISH_QUEUE_HIGH_WATER:
                await trio.sleep(PUBLISH_PACE_POLL_S)
        if scope.cancelled_caught:
            logger.warning(
                "a peer send queue stayed above %d RPCs for %.0f s; publishing anyway",
                PUBLISH_QUEUE_HIGH_WATER,
                PUBLISH_PACE_MAX_WAIT_S,
            )

    async def publish(self, topic: str, data: bytes) -> None:
        """Publish ``data`` on ``topic``; returns once it is queued for every peer.

        Waits (backpressure) while any peer's send queue is at the high-water mark.
        Publishing to a topic we are not subscribed to uses GossipSub fanout.
        """
        async with self._publish_lock:
            await self._wait_for_queue_room()
            await self._pubsub.publish(topic, data)
            self.published += 1
