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
import errno
import functools
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
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

from p2p.blocklist import refuse_blocked_handshakes
from p2p.discovery import mdns_to_redialer
from p2p.gossip import Gossip, Validator, build_gossip
from p2p.hardening import (
    PeerGuard,
    contain_inbound_slot_leak,
    install_exclusive_tcp_listeners,
)
from p2p.limits import DIAL_TIMEOUT_S, MAX_CONNECTIONS, MAX_CONNECTIONS_PER_PEER
from p2p.muxer import BatchedCreditYamux, install_batched_credit_yamux
from p2p.peers import (
    ConnectError,
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
# Backlog of the throw-away socket that checks a listen address is free (it never accepts).
_CHECK_BACKLOG = 1


class ListenError(Exception):
    """A listen address cannot be used. ``in_use``: another socket already listens there."""

    def __init__(self, addr: str, message: str, *, in_use: bool = False) -> None:
        super().__init__(message)
        self.addr = addr
        self.in_use = in_use


def tcp_listen_target(addr: str) -> tuple[socket.AddressFamily, str, int] | None:
    """``(family, ip, port)`` of an ``/ip4|ip6/<ip>/tcp/<port>`` address, else None.
    Raises ListenError if ``addr`` is not a multiaddr at all."""
    try:
        maddr = multiaddr.Multiaddr(addr)
    except Exception as exc:
        raise ListenError(addr, f"{addr!r} is not a multiaddr ({exc})") from exc
    names = [p.name for p in maddr.protocols()]
    if len(names) < 2 or names[0] not in ("ip4", "ip6") or names[1] != "tcp":
        return None
    ip = str(maddr.value_for_protocol(names[0]))
    port = int(maddr.value_for_protocol("tcp"))
    family = socket.AF_INET6 if ipaddress.ip_address(ip).version == 6 else socket.AF_INET
    return family, ip, port


def check_listen_addr(addr: str) -> None:
    """Raise :class:`ListenError` if ``addr`` (``/ip4|ip6/IP/tcp/PORT``, PORT != 0) cannot be
    listened on: the port is taken, the IP is not this host's, the port is privileged...

    Why a separate check: py-libp2p's own bind carries ``SO_REUSEPORT`` (hardening.py,
    behaviour 14), so it could not tell a port held by another node; and when its bind fails
    it only logs at debug level and runs on with fewer listeners. This probe binds and listens
    with a plain socket, without ``SO_REUSEPORT`` (Linux refuses it on any port something
    listens on) but with ``SO_REUSEADDR`` (a node restarted on its port must not be refused
    for the TIME_WAIT connections its previous run left). Other addresses (port 0, DNS,
    other transports) are left to libp2p; ``open_p2p_node`` checks after listening that every
    address got a listener.
    """
    target = tcp_listen_target(addr)
    if target is None or target[2] == 0:
        return
    family, ip, port = target
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((ip, port))
            probe.listen(_CHECK_BACKLOG)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ListenError(
                    addr,
                    f"cannot listen on {addr}: port {port} is already in use (another "
                    "node or program listens on it); choose another with --listen "
                    f"/{'ip6' if family == socket.AF_INET6 else 'ip4'}/{ip}/tcp/PORT, or "
                    "tcp/0 for any free port",
                    in_use=True,
                ) from exc
            raise ListenError(addr, f"cannot listen on {addr}: {exc.strerror or exc}") from exc


def _listening_failure(host: Any, maddrs: Sequence[multiaddr.Multiaddr]) -> ListenError | None:
    """After ``host.run``: every requested address must have a listener (py-libp2p drops a
    failed one with a debug log and runs on), and the node must listen somewhere."""
    listeners = getattr(host.get_network(), "listeners", None)
    if listeners is not None:
        missing = [str(m) for m in maddrs if str(m) not in listeners]
        if missing:
            return ListenError(
                missing[0],
                f"cannot listen on {', '.join(missing)} (taken meanwhile, or no "
                "transport for it); choose another address with --listen",
            )
    if maddrs and not host.get_addrs():
        return ListenError(str(maddrs[0]), "the node listens on no address")
    return None


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

    def set_blocked(self, peers: Iterable[str]) -> None:
        """The peers the owner blocks (p2p/blocklist.py), replacing the previous set: a newly
        blocked peer is disconnected now and refused until unblocked; an unblocked one is
        redialed (when known) at the next scan. Call on the trio thread."""
        for pid in self._guard.set_blocklist(peers):
            unblock = getattr(self._host.get_network(), "unblock_peer", None)
            if unblock is not None:  # forget libp2p's failed dials to it while blocked
                with contextlib.suppress(Exception):
                    unblock(ID.from_base58(pid))
            self._redialer.retry_now(pid)

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
            peer = str(getattr(getattr(stream, "muxed_conn", None), "peer_id", ""))
            if self._guard.is_blocked(peer):  # a blocked peer's connection not closed yet
                logger.info("refused a %s stream from blocked peer %s", protocol_id, peer)
                with contextlib.suppress(Exception):
                    await stream.reset()
                return
            try:
                await handler(stream)
            except Exception:
                logger.exception("handler for %s failed; resetting stream", protocol_id)
                with contextlib.suppress(Exception):
                    await stream.reset()

        self._host.set_stream_handler(TProtocol(protocol_id), guarded)

    async def new_stream(self, peer_id: str, protocol_ids: Sequence[str]) -> Any:
        """Open a stream to a connected peer, negotiating the first supported protocol.
        Raises ``ConnectError`` for a blocked peer."""
        if self._guard.is_blocked(peer_id):
            raise ConnectError(f"peer {peer_id} is blocked")
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
    blocked: Iterable[str] = (),
) -> AsyncIterator[P2PNode]:
    """Run a libp2p node for the lifetime of the ``async with`` block.

    :param validator: ``async (topic, data, from_peer) -> bool`` for every received gossip
        message (``from_peer`` = the peer that forwarded it to us). False: dropped, not
        forwarded, counted as a strike against ``from_peer``.
    :param mdns: LAN discovery via mDNS (binds every interface; keep off in tests).
    :param bootstrap: ``/p2p/`` multiaddrs dialed at start and redialed with backoff.
    :param redial_addrs: called every redial scan for remembered peer addresses.
    :param on_peer_connected: awaited as ``(peer_id, addrs)`` for each new connection
        (for a peer that dialed us, its listen addresses, once identify has given them).
    :param blocked: peer ids the owner blocks (p2p/blocklist.py; ``P2PNode.set_blocked``
        changes them).
    :raises ListenError: a listen address is taken or cannot be listened on.
    """
    for addr in listen_addrs:  # a taken port is an error, before anything starts
        check_listen_addr(addr)
    install_exclusive_tcp_listeners()  # hardening.py, behaviour 14
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
    contain_inbound_slot_leak(host.get_network())  # hardening.py, behaviour 15
    pubsub, router = build_gossip(host, guard)
    guard.attach(host, pubsub)
    refuse_blocked_handshakes(host.get_network(), guard.blocklist.__contains__)
    guard.set_blocklist(blocked)
    gossip = Gossip(pubsub, validator, guard)
    events = ConnectionEvents()
    host.get_network().register_notifee(events)
    redialer = Redialer(host, guard, bootstrap, redial_addrs)
    maddrs = [multiaddr.Multiaddr(a) for a in listen_addrs]

    failure: ListenError | None = None
    async with (
        contextlib.AsyncExitStack() as stack,
        host.run(listen_addrs=maddrs),
        background_trio_service(pubsub),
        background_trio_service(router),
    ):
        failure = _listening_failure(host, maddrs)
        if failure is None:
            await pubsub.wait_until_ready()
            async with trio.open_nursery() as nursery:
                node = P2PNode(host, gossip, guard, redialer, nursery)
                if mdns:
                    stack.enter_context(mdns_to_redialer(redialer.add, node.peer_id))
                await nursery.start(guard.run)
                pump = functools.partial(
                    pump_peer_events, host, events, guard, redialer, on_peer_connected,
                    node._listeners,
                )  # fmt: skip
                await nursery.start(pump)
                await nursery.start(redialer.run)
                logger.info("p2p node %s listening on %s", node.peer_id, node.listen_addrs())
                try:
                    yield node
                finally:
                    nursery.cancel_scope.cancel()
    if failure is not None:  # raised out here, it is not wrapped in the services' groups
        raise failure
