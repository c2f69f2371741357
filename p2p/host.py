"""``open_p2p_node``: a py-libp2p host (TCP + Noise + Yamux) with hardened GossipSub.

Usage (the node runs this inside its own nursery tree)::

    async with open_p2p_node(key, ["/ip4/0.0.0.0/tcp/4001"], validator=ingest) as p2p:
        await p2p.subscribe("percolab/lab/<id>")
        await p2p.publish("percolab/lab/<id>", blob)

Everything the node needs runs inside the context manager: libp2p's services, the strike
enforcer, the peer-event pump and the redial loop. Leaving the block stops all of them.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.tools.anyio_service import background_trio_service

from p2p.discovery import mdns_to_redialer
from p2p.gossip import Gossip, Validator, build_gossip
from p2p.hardening import PeerGuard
from p2p.limits import DIAL_TIMEOUT_S, MAX_CONNECTIONS, MAX_CONNECTIONS_PER_PEER
from p2p.muxer import BatchedCreditYamux, install_batched_credit_yamux
from p2p.peers import (
    ConnectionEvents,
    OnPeerConnected,
    PeerConnected,
    Redialer,
    RedialSource,
    connect,
    peer_addrs,
    pump_peer_events,
)

logger = logging.getLogger(__name__)

StreamHandler = Callable[[Any], Awaitable[None]]
PEER_EVENT_LISTENER_BUFFER = 64


def noise_only_security(key_pair: KeyPair) -> dict[Any, Any]:
    """``sec_opt`` offering Noise alone (a default host also accepts plaintext and secio)."""
    noise_key = create_x25519_key_pair().private_key
    return {NOISE_PROTOCOL_ID: NoiseTransport(key_pair, noise_privkey=noise_key)}


def yamux_only_muxer() -> dict[Any, Any]:
    # Yamux with batched window credit (p2p/muxer.py); the wire protocol is unchanged.
    return {TProtocol(YAMUX_PROTOCOL_ID): BatchedCreditYamux}


def connection_config(max_connections: int, max_per_peer: int) -> ConnectionConfig:
    # min_connections/low_watermark 0: py-libp2p's auto-connector stays idle (it would
    # redial any peer in the peerstore, blocked ones included); our Redialer does that job.
    return ConnectionConfig(
        max_connections=max_connections,
        min_connections=0,
        low_watermark=0,
        high_watermark=max_connections,
        max_connections_per_peer=max_per_peer,
        dial_timeout=DIAL_TIMEOUT_S,
    )


class P2PNode:
    """The node's handle on the network. Created by :func:`open_p2p_node`."""

    def __init__(
        self,
        host: Any,
        gossip: Gossip,
        guard: PeerGuard,
        redialer: Redialer,
        nursery: trio.Nursery,
    ) -> None:
        self._host = host
        self._gossip = gossip
        self._guard = guard
        self._redialer = redialer
        self._nursery = nursery
        self._listeners: list[trio.MemorySendChannel[PeerConnected]] = []
        self.peer_id: str = str(host.get_id())

    # --- identity and addresses -----------------------------------------------------------
    @property
    def host(self) -> Any:
        """The underlying py-libp2p host (escape hatch; prefer the methods below)."""
        return self._host

    def listen_addrs(self) -> list[str]:
        """Bound listen addresses (real ports), each ending in ``/p2p/<our peer id>``."""
        out = []
        for addr in self._host.get_addrs():
            s = str(addr)
            out.append(s if "/p2p/" in s else f"{s}/p2p/{self.peer_id}")
        return out

    # --- peers ----------------------------------------------------------------------------
    def connected_peers(self) -> list[dict[str, Any]]:
        """``[{"peer_id": str, "addrs": [multiaddr str, ...]}]`` for live connections."""
        return [
            {"peer_id": str(pid), "addrs": peer_addrs(self._host, pid)}
            for pid in self._host.get_connected_peers()
        ]

    async def connect(self, addr: str) -> str:
        """Dial a ``.../p2p/<id>`` multiaddr; returns the peer id. Raises ``ConnectError``."""
        return await connect(self._host, addr, self._guard)

    async def disconnect(self, peer_id: str) -> None:
        await self._host.disconnect(ID.from_base58(peer_id))

    def add_redial_addr(self, addr: str) -> None:
        """Keep redialing ``addr`` with backoff (in addition to bootstrap/remembered)."""
        self._redialer.add(addr)

    def peer_events(self) -> trio.MemoryReceiveChannel[PeerConnected]:
        """A new channel receiving a :class:`PeerConnected` for every new connection.

        Bounded (``PEER_EVENT_LISTENER_BUFFER``); events are dropped if the reader lags.
        Close the channel to unsubscribe.
        """
        send, recv = trio.open_memory_channel[PeerConnected](PEER_EVENT_LISTENER_BUFFER)
        self._listeners.append(send)
        return recv

    # --- down-scoring ---------------------------------------------------------------------
    def report_invalid(self, peer_id: str, reason: str = "invalid object") -> None:
        """Count one invalid object from ``peer_id``; enough of them disconnect and block it."""
        self._guard.strike(peer_id, reason)

    def is_blocked(self, peer_id: str) -> bool:
        return self._guard.is_blocked(peer_id)

    def blocked_peers(self) -> list[str]:
        return self._guard.blocked_peers()

    def strike_count(self, peer_id: str) -> int:
        return self._guard.strike_count(peer_id)

    # --- gossip ---------------------------------------------------------------------------
    async def subscribe(self, topic: str) -> None:
        await self._gossip.subscribe(topic)

    async def unsubscribe(self, topic: str) -> None:
        await self._gossip.unsubscribe(topic)

    def topics(self) -> list[str]:
        return self._gossip.topics()

    def peers_on_topic(self, topic: str) -> list[str]:
        return self._gossip.peers_on_topic(topic)

    def mesh_peers(self, topic: str) -> list[str]:
        return self._gossip.mesh_peers(topic)

    async def publish(self, topic: str, data: bytes) -> None:
        """Publish with backpressure (waits while peer send queues are full)."""
        await self._gossip.publish(topic, data)

    # --- our own stream protocols ---------------------------------------------------------
    def set_stream_handler(self, protocol_id: str, handler: StreamHandler) -> None:
        """Serve ``protocol_id``; ``handler(stream)`` runs once per inbound stream.

        An exception from the handler is logged and the stream reset; it never reaches
        py-libp2p (whose handler task would otherwise die noisily).
        """

        async def guarded(stream: Any) -> None:
            try:
                await handler(stream)
            except Exception:
                logger.exception("handler for %s failed; resetting stream", protocol_id)
                with contextlib.suppress(Exception):
                    await stream.reset()

        self._host.set_stream_handler(TProtocol(protocol_id), guarded)

    async def new_stream(self, peer_id: str, protocol_ids: Sequence[str]) -> Any:
        """Open a stream to a connected peer, negotiating the first supported protocol."""
        return await self._host.new_stream(
            ID.from_base58(peer_id), [TProtocol(p) for p in protocol_ids]
        )


@contextlib.asynccontextmanager
async def open_p2p_node(
    key_pair: KeyPair,
    listen_addrs: Sequence[str],
    *,
    validator: Validator,
    mdns: bool = False,
    bootstrap: Sequence[str] = (),
    redial_addrs: RedialSource | None = None,
    on_peer_connected: OnPeerConnected | None = None,
    max_connections: int = MAX_CONNECTIONS,
    max_connections_per_peer: int = MAX_CONNECTIONS_PER_PEER,
    guard: PeerGuard | None = None,
) -> AsyncIterator[P2PNode]:
    """Run a libp2p node for the lifetime of the ``async with`` block.

    :param validator: ``async (topic, data, from_peer) -> bool`` for every received gossip
        message (``from_peer`` = the peer that forwarded it to us). False: dropped, not
        forwarded, counted as a strike against ``from_peer``.
    :param mdns: LAN discovery via mDNS (binds every interface; keep off in tests).
    :param bootstrap: ``/p2p/`` multiaddrs dialed at start and redialed with backoff.
    :param redial_addrs: called every redial scan for remembered peer addresses.
    :param on_peer_connected: awaited as ``(peer_id, addrs)`` for each new connection.
    """
    guard = guard or PeerGuard()
    muxer_opt = yamux_only_muxer()
    host = new_host(
        key_pair=key_pair,
        sec_opt=noise_only_security(key_pair),
        muxer_opt=muxer_opt,
        enable_mDNS=mdns,
        connection_config=connection_config(max_connections, max_connections_per_peer),
    )
    install_batched_credit_yamux(host, muxer_opt)
    pubsub, router = build_gossip(host, guard)
    guard.attach(host, pubsub)
    gossip = Gossip(pubsub, validator, guard)
    events = ConnectionEvents()
    host.get_network().register_notifee(events)
    redialer = Redialer(host, guard, bootstrap, redial_addrs)
    maddrs = [multiaddr.Multiaddr(a) for a in listen_addrs]

    async with (
        contextlib.AsyncExitStack() as stack,
        host.run(listen_addrs=maddrs),
        background_trio_service(pubsub),
        background_trio_service(router),
    ):
        await pubsub.wait_until_ready()
        async with trio.open_nursery() as nursery:
            node = P2PNode(host, gossip, guard, redialer, nursery)
            if mdns:
                stack.enter_context(mdns_to_redialer(redialer.add, node.peer_id))
            await nursery.start(guard.run)
            pump = functools.partial(
                pump_peer_events, host, events, guard, redialer, on_peer_connected, node._listeners
            )
            await nursery.start(pump)
            await nursery.start(redialer.run)
            logger.info("p2p node %s listening on %s", node.peer_id, node.listen_addrs())
            try:
                yield node
            finally:
                nursery.cancel_scope.cancel()
