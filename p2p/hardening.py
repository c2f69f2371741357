"""Containment of py-libp2p 0.8.1 failure modes, and peer down-scoring.

Upstream behaviours contained here (py-libp2p 0.8.1):

1. ``libp2p/pubsub/pubsub.py``, ``Pubsub.continuously_read_stream``: one undecodable protobuf
   frame makes ``rpc_pb2.RPC.ParseFromString`` raise ``google.protobuf.message.DecodeError``;
   ``Pubsub.stream_handler`` only catches ``StreamError/ParseError/IncompleteReadError``, so the
   error escapes and takes the process down. Likewise any exception from the router's
   ``handle_rpc`` on crafted control messages. :class:`HardenedPubsub` catches every
   ``Exception`` there, logs it, resets that stream, drops the peer from pubsub and records
   a strike.
2. ``libp2p/pubsub/pubsub.py``, ``Pubsub.push_msg`` -> ``libp2p/pubsub/validators.py``,
   ``signature_validator``: a message whose ``from`` is not an identity peer id and whose
   ``key`` is garbage re-raises from ``deserialize_public_key``. ``push_msg`` runs as a
   service task, and a failing service task cancels the whole Pubsub service. We verify the
   signature ourselves first, inside ``try``, drop (and strike) bad messages, and wrap the
   rest of ``push_msg`` so no message can kill the service.
3. ``libp2p/pubsub/gossipsub.py``, ``GossipSub._check_spam_protection``: 10 msgs/s/topic per
   "forwarder", where the node itself is the forwarder of its own publishes, so a burst of
   own publishes was dropped silently. :class:`HardenedGossipSub` exempts our own id and
   applies a named, higher limit to relayed traffic.
4. ``Pubsub._handle_new_peer`` creates ``RpcQueue()`` with 32 slots (drops when full, no
   backpressure). We enlarge each new queue to ``PEER_SEND_QUEUE_RPCS``; ``gossip.py`` paces
   our own publishes against the queue depth.
5. ``Pubsub.notify_subscriptions`` pushes each accepted message into a 32-slot channel and
   drops on overflow. In Percolab the topic validator *is* the delivery path (the node's
   ingest), so the subscription channel is not used: we skip filling it.

Wire economy (measured in bench/gossip.py; see docs/gossip.md):

6. ``GossipSub`` with ``adaptive_gossip_enabled`` (upstream default) rewrites the heartbeat
   interval to >= 60 s and raises D_low/D_high whenever its "network health" is below
   0.7/0.8, which it always was in our benchmarks (0.56-0.72): our 1 s heartbeat became
   60 s and meshes never shrank. ``gossip.py`` turns it off.
7. ``GossipSub._perform_opportunistic_grafting`` runs on every heartbeat (the spec: every 60)
   and grafts up to 2 peers whenever they score >= the median mesh score; with unscored
   peers (all 0) that is every peer, so every mesh grew to all its connections (flooding:
   ~4.8 copies of each message per delivery at 20 nodes). :class:`HardenedGossipSub`
   disables it; the mesh keeps D_low..D_high by the spec's rules alone.
8. ``Pubsub``/``GossipSub`` attach the node's signed peer record (``senderRecord``, ~216 B)
   to every RPC: 10% of loopback bytes. Peers get it from identify; we strip it from every
   RPC we write (``HardenedPubsub.write_msg``).
9. ``Pubsub.publish`` always sets the message ``key``; for Ed25519 peer ids the key is
   inlined in ``from`` and the spec lets it be omitted (go-libp2p does, js-libp2p and
   py-libp2p's ``signature_validator`` take it from the peer id): 38 B per copy saved.
10. ``libp2p/pubsub/mcache.py``, ``MessageCache.put`` keys the message cache by
    ``from + seqno`` whatever ``msg_id_constructor`` the Pubsub uses. IHAVE therefore
    advertised ids that no receiver had in its seen cache (ours are content hashes), so
    *every* IHAVE was answered by an IWANT and a full re-send of the message (20 nodes:
    2,482 of 2,468 advertised ids re-sent). :class:`ContentIdMessageCache` keys it by the
    node's message id; ``HardenedGossipSub`` installs it.
11. ``Pubsub.push_msg`` marks a message seen only after its (asynchronous) validation, and
    runs as one task per received copy: copies that arrive while the first is being
    validated (our ingest takes tens of ms under load) are validated too and *each* is
    forwarded to the whole mesh again. :class:`HardenedPubsub` drops a copy whose id is
    already being validated (ids are content hashes and our validator judges the content,
    so the later copy could not be judged differently).
12. ``GossipSub._get_adaptive_gossip_peers_count`` hard-codes Dlazy = max(6, 25% of the
    non-mesh topic peers); we use the named ``GOSSIP_LAZY_PEERS`` / ``GOSSIP_FACTOR``.
13. ``GossipSub._handle_topic_heartbeat`` picks IHAVE targets with ``backoff_check=True``,
    so a peer under PRUNE backoff (``PRUNE_BACKOFF_S`` = 60 s) got no IHAVE at all. A peer
    that sent us PRUNE (it declined our GRAFT, or pruned us from its mesh) is exactly such a
    peer: it sat outside the mesh *and* outside gossip, and a new object reached it only
    through the next sync (every 30 s). Backoff in the spec only forbids re-GRAFTing; go-libp2p's
    ``emitGossip`` filters by gossip score and direct peers only. ``HardenedGossipSub``
    selects IHAVE targets without the backoff filter (``gossip_heartbeat``).

Connections and listeners:

14. ``libp2p/transport/tcp/tcp.py``, ``_set_reuse_flags``: every TCP listener is opened with
    ``SO_REUSEPORT`` (so DCUtR hole punching can dial from the listen port; Percolab does not
    use DCUtR). A second process then binds the same port without error and the kernel
    splits incoming connections between the two nodes. :func:`install_exclusive_tcp_listeners`
    makes listeners set ``SO_REUSEADDR`` only (still binding over a previous run's TIME_WAIT
    connections), so the kernel itself refuses a second listener on the port, atomically;
    ``host.check_listen_addr`` turns a taken port into a clear error before listening.
    (Upstream's hole-punch dial falls back to an ephemeral source port without the flag.)
15. ``libp2p/network/swarm.py``, ``Swarm._do_handle_inbound_connection``: after upgrading an
    inbound connection it awaits ``self.manager.wait_finished()`` (the *swarm's* end, not the
    connection's). So ``Swarm._inbound_limiter`` (max_connections - min_connections = 64
    tokens), taken in ``_handle_inbound_connection``, was only given back at shutdown, and
    the listener's handler task (trio's ``_run_handler``) lived on: after 64 inbound
    connections in its lifetime a node accepted none, and leaked one task per closed
    inbound connection. :func:`contain_inbound_slot_leak` ends that wait when the
    connection closes, which returns the token and ends the task.

Down-scoring: :class:`PeerGuard` counts strikes (invalid objects, undecodable frames, bad
signatures) per peer; ``INVALID_STRIKE_THRESHOLD`` strikes within ``INVALID_STRIKE_WINDOW_S``
disconnect the peer and block it for ``PEER_BLOCK_DURATION_S``. The owner's blocks
(p2p/blocklist.py) count as blocks without an end.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import libp2p.transport.tcp.tcp as upstream_tcp
import trio
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.mcache import CacheEntry, MessageCache
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.validators import PUBSUB_SIGNING_PREFIX, signature_validator

from p2p.blocklist import Blocklist
from p2p.limits import (
    GOSSIP_FACTOR,
    GOSSIP_LAZY_PEERS,
    INVALID_STRIKE_THRESHOLD,
    INVALID_STRIKE_WINDOW_S,
    PEER_BLOCK_DURATION_S,
    PEER_EVENT_BUFFER,
    PEER_SEND_QUEUE_RPCS,
)

logger = logging.getLogger(__name__)

StrikeFn = Callable[[Any, str], None]  # (libp2p ID, reason)
InboundHandler = Callable[[Any, Any, Any], Awaitable[None]]
Upgrade = Callable[[Any, Any], Awaitable[Any]]
MsgIdFn = Callable[[Any], bytes]  # pubsub message -> message id


class ContentIdMessageCache(MessageCache):
    """``MessageCache`` keyed by the node's message id (behaviour 10), not from + seqno."""

    def __init__(self, msg_id_fn: MsgIdFn, window_size: int, history_size: int) -> None:
        super().__init__(window_size, history_size)
        self._msg_id_fn = msg_id_fn

    def put(self, msg: Any) -> None:
        mid = self._msg_id_fn(msg)
        if mid in self.msgs:
            return
        self.msgs[mid] = msg
        self.history[0].append(CacheEntry(mid, msg.topicIDs))


def _safe_signature_ok(msg: Any) -> tuple[bool, str]:
    """Run upstream's signature check without letting it raise (behaviour 2 above)."""
    if not msg.from_id:
        return False, "missing from"
    try:
        ok = bool(signature_validator(msg))
    except Exception as exc:  # garbage key: deserialize_public_key re-raises
        return False, f"undecodable key/signature ({exc.__class__.__name__})"
    return ok, "" if ok else "bad signature"


class HardenedPubsub(Pubsub):
    """``Pubsub`` that survives any bytes a peer sends (see module docstring)."""

    def __init__(self, *args: Any, on_strike: StrikeFn, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_strike = on_strike
        self._validating: set[bytes] = set()  # ids of messages in push_msg (behaviour 11)

    async def continuously_read_stream(self, stream: Any) -> None:
        # Behaviour 1: upstream lets DecodeError (and router errors) escape.
        try:
            await super().continuously_read_stream(stream)
        except Exception as exc:
            peer_id = stream.muxed_conn.peer_id
            logger.warning(
                "pubsub stream from %s failed (%s: %s); resetting it",
                peer_id,
                exc.__class__.__name__,
                exc,
            )
            with contextlib.suppress(Exception):
                await stream.reset()
            with contextlib.suppress(Exception):
                self._handle_dead_peer(peer_id)
            self._on_strike(peer_id, f"undecodable pubsub frame ({exc.__class__.__name__})")

    async def push_msg(self, msg_forwarder: Any, msg: Any) -> None:
        # Behaviour 2: upstream's signature check can raise inside a service task.
        try:
            if self.is_peer_blacklisted(msg_forwarder) or self._is_msg_seen(msg):
                return
            if self.strict_signing and msg_forwarder != self.my_id:
                ok, reason = _safe_signature_ok(msg)
                if not ok:
                    logger.info("dropping gossip from %s: %s", msg_forwarder, reason)
                    self._on_strike(msg_forwarder, reason)
                    return
            # Behaviour 11: one validation (and one forward) per message id at a time.
            msg_id = self._msg_id_constructor(msg)
            if msg_id in self._validating:
                return
            self._validating.add(msg_id)
            try:
                await super().push_msg(msg_forwarder, msg)
            finally:
                self._validating.discard(msg_id)
        except Exception:
            logger.exception("dropping gossip from %s: push_msg failed", msg_forwarder)

    async def _handle_new_peer(self, peer_id: Any) -> None:
        # Behaviour 4: enlarge the 32-slot per-peer send queue (private attribute of
        # libp2p/pubsub/rpc_queue.py RpcQueue; guarded so an upstream change degrades to 32).
        await super()._handle_new_peer(peer_id)
        queue = self.peer_queues.get(peer_id)
        inner = getattr(queue, "_queue", None)
        if inner is not None and hasattr(inner, "max_size"):
            inner.max_size = max(inner.max_size, PEER_SEND_QUEUE_RPCS)

    def notify_subscriptions(self, publish_message: Any) -> None:
        # Behaviour 5: delivery happens through the topic validator; nothing reads this.
        return

    async def write_msg(self, stream: Any, rpc_msg: Any) -> bool:
        # Behaviour 8: upstream puts our signed peer record in every RPC; identify already
        # carries it. (The RPC is a per-peer copy made by GossipSub.send_rpc or a
        # subscription announcement: clearing it in place is safe and idempotent.)
        if rpc_msg.HasField("senderRecord"):
            rpc_msg.ClearField("senderRecord")
        return bool(await super().write_msg(stream, rpc_msg))

    async def publish(self, topic_id: str | list[str], data: bytes) -> None:
        # Behaviour 9: upstream's publish, minus ``msg.key`` when our peer id inlines it.
        if not self.strict_signing or self.sign_key is None:
            await super().publish(topic_id, data)
            return
        msg = rpc_pb2.Message(
            data=data,
            topicIDs=[topic_id] if isinstance(topic_id, str) else list(topic_id),
            from_id=self.my_id.to_bytes(),
            seqno=self._next_seqno(),
        )
        msg.signature = self.sign_key.sign(PUBSUB_SIGNING_PREFIX.encode() + msg.SerializeToString())
        if self._key_not_inlined():
            msg.key = self.host.get_public_key().serialize()
        await self.push_msg(self.my_id, msg)

    def _key_not_inlined(self) -> bool:
        cached: bool | None = getattr(self, "_key_not_inlined_cache", None)
        if cached is None:
            try:
                cached = self.my_id.extract_public_key() is None
            except Exception:
                cached = True
            self._key_not_inlined_cache = cached
        return cached


class HardenedGossipSub(GossipSub):
    """``GossipSub`` whose spam limit never applies to the node's own publishes, without
    upstream's per-heartbeat opportunistic grafting, with a named Dlazy, a message cache
    keyed by the node's message id, and IHAVE to non-mesh peers even under backoff."""

    def __init__(self, *args: Any, msg_id_fn: MsgIdFn, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Behaviour 10: IHAVE/IWANT must speak the same ids as the seen cache.
        self.mcache = ContentIdMessageCache(
            msg_id_fn, self.mcache.window_size, self.mcache.history_size
        )

    def _perform_opportunistic_grafting(self, topic: str, peers_to_graft: Any) -> int:
        # Behaviour 7: upstream grafts up to 2 equal-score peers on every heartbeat.
        return 0

    def _get_adaptive_gossip_peers_count(self, topic: str, total_peers: int) -> int:
        # Behaviour 12: IHAVE goes to max(GOSSIP_LAZY_PEERS, GOSSIP_FACTOR x non-mesh peers).
        return max(GOSSIP_LAZY_PEERS, int(total_peers * GOSSIP_FACTOR))

    def gossip_heartbeat(self) -> collections.defaultdict[Any, dict[str, list[bytes]]]:
        """IHAVE targets of this heartbeat: ``{peer: {topic: [message id, ...]}}``.

        Behaviour 13: upstream's selection drops peers under PRUNE backoff, i.e. the very
        peers that declined our mesh. Here, for every topic we are in (mesh) or publish to
        (fanout) with ids in the gossip window, the candidates are the topic's GossipSub
        peers outside that mesh/fanout, minus direct peers and peers scored below the gossip
        threshold (go-libp2p's rule), backoff or not; Dlazy of them (behaviour 12) get IHAVE.
        """
        peers_to_gossip: collections.defaultdict[Any, dict[str, list[bytes]]] = (
            collections.defaultdict(dict)
        )
        pubsub = self.pubsub
        if pubsub is None:
            return peers_to_gossip
        targets = list(self.mesh.items())
        targets += [(t, peers) for t, peers in self.fanout.items() if t not in self.mesh]
        for topic, full_peers in targets:
            msg_ids = self.mcache.window(topic)
            if not msg_ids:
                continue
            candidates = [
                peer
                for peer in pubsub.peer_topics.get(topic, ())
                if peer not in full_peers
                and peer not in self.direct_peers
                and self._is_gossipsub_peer(peer)
                and (self.scorer is None or self.scorer.allow_gossip(peer, [topic]))
            ]
            count = self._get_adaptive_gossip_peers_count(topic, len(candidates))
            for peer in self.select_from_minus(count, candidates, ()):
                peers_to_gossip[peer][topic] = list(msg_ids)
        return peers_to_gossip

    def _check_spam_protection(self, peer_id: Any, msg: Any) -> bool:
        pubsub = self.pubsub
        if pubsub is not None and peer_id == pubsub.my_id:
            return True
        return bool(super()._check_spam_protection(peer_id, msg))


class PeerGuard:
    """Strike counting and temporary blocks, enforced by :meth:`run` in the node's nursery."""

    def __init__(
        self,
        *,
        threshold: int = INVALID_STRIKE_THRESHOLD,
        window_s: float = INVALID_STRIKE_WINDOW_S,
        block_s: float = PEER_BLOCK_DURATION_S,
        blocklist: Blocklist | None = None,
    ) -> None:
        # The owner's blocks (p2p/blocklist.py): blocked like a struck peer, until unblocked.
        self.blocklist = blocklist if blocklist is not None else Blocklist()
        self.threshold = threshold
        self.window_s = window_s
        self.block_s = block_s
        self._strikes: dict[str, collections.deque[float]] = {}
        self._blocked_until: dict[str, float] = {}
        self._send, self._recv = trio.open_memory_channel[str](PEER_EVENT_BUFFER)
        self._host: Any = None
        self._pubsub: Any = None

    def attach(self, host: Any, pubsub: Any) -> None:
        self._host = host
        self._pubsub = pubsub

    def is_blocked(self, peer_id: str) -> bool:
        if peer_id in self.blocklist:
            return True
        until = self._blocked_until.get(peer_id)
        return until is not None and trio.current_time() < until

    def strike_count(self, peer_id: str) -> int:
        """Strikes currently counted against ``peer_id`` (within the window)."""
        return len(self._strikes.get(peer_id, ()))

    def blocked_peers(self) -> list[str]:
        now = trio.current_time()
        struck = [p for p, until in self._blocked_until.items() if now < until]
        return sorted(self.blocklist.peers().union(struck))

    def set_blocklist(self, peers: Iterable[str]) -> frozenset[str]:
        """Make ``peers`` the owner's blocks: new ones are blacklisted in gossip and kicked;
        returns the peers unblocked (struck ones stay blacklisted until their block ends)."""
        added, removed = self.blocklist.replace(peers)
        for pid in added:
            if self._pubsub is not None:
                self._pubsub.blacklisted_peers.add(ID.from_base58(pid))
            self.kick(pid)
        for pid in removed:
            if self._pubsub is not None and not self.is_blocked(pid):
                self._pubsub.blacklisted_peers.discard(ID.from_base58(pid))
        return removed

    def strike(self, peer_id: Any, reason: str) -> None:
        """Record one invalid object/frame from ``peer_id`` (a libp2p ID or base58 str)."""
        pid = str(peer_id)
        if self._host is not None and pid == str(self._host.get_id()):
            return
        if self.is_blocked(pid):
            return
        now = trio.current_time()
        times = self._strikes.setdefault(pid, collections.deque())
        times.append(now)
        while times and times[0] < now - self.window_s:
            times.popleft()
        logger.info("strike %d/%d for %s: %s", len(times), self.threshold, pid, reason)
        if len(times) >= self.threshold:
            self._strikes.pop(pid, None)
            self._blocked_until[pid] = now + self.block_s
            logger.warning("blocking %s for %.0f s: %s", pid, self.block_s, reason)
            if self._pubsub is not None:
                self._pubsub.blacklisted_peers.add(ID.from_base58(pid))
            self.kick(pid)

    def kick(self, peer_id: str) -> None:
        """Ask :meth:`run` to disconnect ``peer_id`` (non-blocking)."""
        try:
            self._send.send_nowait(peer_id)
        except trio.WouldBlock:
            logger.warning("disconnect queue full; %s will be dropped on next contact", peer_id)

    async def _disconnect(self, peer_id: str) -> None:
        if self._host is None:
            return
        pid = ID.from_base58(peer_id)
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub._teardown_if_connected(pid)
        try:
            await self._host.disconnect(pid)
        except Exception as exc:
            logger.debug("disconnecting %s failed: %s", peer_id, exc)

    def _expire(self) -> None:
        now = trio.current_time()
        for pid, until in list(self._blocked_until.items()):
            if until <= now:
                del self._blocked_until[pid]
                logger.info("block on %s expired", pid)
                if self._pubsub is not None and pid not in self.blocklist:
                    self._pubsub.blacklisted_peers.discard(ID.from_base58(pid))
        for pid, times in list(self._strikes.items()):
            while times and times[0] < now - self.window_s:
                times.popleft()
            if not times:
                del self._strikes[pid]

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Disconnect kicked peers and expire blocks. Runs for the node's lifetime."""
        task_status.started()
        while True:
            with trio.move_on_after(self.window_s / 4):
                peer_id = await self._recv.receive()
                await self._disconnect(peer_id)
            self._expire()


# ---- behaviour 14: exclusive TCP listeners -------------------------------------------------


def _exclusive_reuse_flags(sock: Any) -> None:
    """Upstream's ``_set_reuse_flags`` without ``SO_REUSEPORT`` (behaviour 14)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)


def install_exclusive_tcp_listeners() -> None:
    """Make py-libp2p's TCP listeners exclusive (process-wide; idempotent)."""
    if getattr(upstream_tcp, "_set_reuse_flags", None) is _exclusive_reuse_flags:
        return
    if not hasattr(upstream_tcp, "_set_reuse_flags"):  # upstream changed: the check remains
        logger.warning("py-libp2p has no tcp._set_reuse_flags; listeners may share ports")
        return
    upstream_tcp._set_reuse_flags = _exclusive_reuse_flags


# ---- behaviour 15: an inbound connection's slot and task end with the connection ----------


@dataclass
class _InboundConn:
    """The muxed connection an inbound handler upgraded (set by the upgrade wrapper)."""

    upgraded: trio.Event = field(default_factory=trio.Event)
    muxed: Any = None


# The _InboundConn of the inbound handler running in this task (and the tasks it starts).
_INBOUND: contextvars.ContextVar[_InboundConn | None] = contextvars.ContextVar(
    "percolab_inbound_conn", default=None
)


def contain_inbound_slot_leak(swarm: Any) -> None:
    """Wrap ``swarm``'s inbound handler so it returns once its connection closes."""
    handle: InboundHandler | None = getattr(swarm, "_do_handle_inbound_connection", None)
    upgrade: Upgrade | None = getattr(swarm, "upgrade_inbound_raw_conn", None)
    if handle is None or upgrade is None:
        logger.warning("py-libp2p's Swarm changed; inbound slot leak not contained")
        return

    async def upgrade_and_record(raw_conn: Any, maddr: Any) -> Any:
        muxed = await upgrade(raw_conn, maddr)
        record = _INBOUND.get()
        if record is not None:
            record.muxed = muxed
            record.upgraded.set()
        return muxed

    async def handle_until_closed(read_write_closer: Any, maddr: Any, failure_event: Any) -> None:
        record = _InboundConn()
        _INBOUND.set(record)  # this task's context; the nursery's children copy it
        async with trio.open_nursery() as nursery:

            async def upstream() -> None:
                # Returns by itself only if the upgrade failed or the swarm stopped.
                await handle(read_write_closer, maddr, failure_event)
                nursery.cancel_scope.cancel()

            async def until_closed() -> None:
                await record.upgraded.wait()
                closed: trio.Event | None = getattr(record.muxed, "event_closed", None)
                if closed is None:  # a muxer without the event: upstream's behaviour
                    return
                await closed.wait()
                nursery.cancel_scope.cancel()  # ends upstream's wait for the swarm's end

            nursery.start_soon(upstream)
            nursery.start_soon(until_closed)

    swarm.upgrade_inbound_raw_conn = upgrade_and_record
    swarm._do_handle_inbound_connection = handle_until_closed
