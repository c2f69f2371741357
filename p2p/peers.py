"""Peer connections: explicit connect, "peer connected" events, and the redial loop.

The redial loop keeps trying bootstrap peers and peers the node remembers (the node keeps
that memory in LMDB and hands us a callable returning addresses) with exponential backoff
per peer, from ``REDIAL_BACKOFF_INITIAL_S`` doubling up to ``REDIAL_BACKOFF_MAX_S``; a
successful connection (ours or theirs) resets the backoff.

A peer that dialed us is remembered too: when it connects, the peerstore holds none of its
addresses (the connection's source port is an ephemeral one); identify brings its listen
addresses a moment later, so ``on_peer_connected`` waits for them (``IDENTIFY_WAIT_S``), with
a wildcard address (``/ip4/0.0.0.0``, the default listen address) replaced by the IP the
connection came from.
"""

from __future__ import annotations

import ipaddress
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import multiaddr
import trio
from libp2p.abc import INotifee
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr

from p2p.hardening import PeerGuard
from p2p.limits import (
    CONNECT_TIMEOUT_S,
    IDENTIFY_POLL_S,
    IDENTIFY_WAIT_S,
    MAX_CONCURRENT_DIALS,
    PEER_EVENT_BUFFER,
    REDIAL_BACKOFF_FACTOR,
    REDIAL_BACKOFF_INITIAL_S,
    REDIAL_BACKOFF_MAX_S,
    REDIAL_SCAN_INTERVAL_S,
)

logger = logging.getLogger(__name__)

PEERSTORE_ADDR_TTL_S = 3600
BACKOFF_JITTER = 0.1

OnPeerConnected = Callable[[str, list[str]], Awaitable[None]]
RedialSource = Callable[[], Iterable[str]]


class ConnectError(Exception):
    """``connect()`` failed: bad multiaddr, unreachable, handshake refused or timed out."""


@dataclass(frozen=True)
class PeerConnected:
    """A connection to ``peer_id`` was established (``inbound`` = they dialed us)."""

    peer_id: str
    addrs: list[str]
    inbound: bool


def parse_peer_addr(addr: str) -> tuple[ID, multiaddr.Multiaddr]:
    """Split ``/ip4/../tcp/../p2p/<id>`` into (peer id, multiaddr). Raises ConnectError."""
    try:
        maddr = multiaddr.Multiaddr(addr)
        info = info_from_p2p_addr(maddr)
    except Exception as exc:
        raise ConnectError(f"not a dialable /p2p/ multiaddr: {addr!r} ({exc})") from exc
    return info.peer_id, maddr


async def connect(host: Any, addr: str, guard: PeerGuard | None = None) -> str:
    """Dial ``addr`` (must end in ``/p2p/<peer id>``); return the peer id.

    An explicit connect lifts py-libp2p's 60 s negative dial cache for that peer
    (``Swarm.unblock_peer``), since the caller is asking for a fresh attempt now.
    """
    peer_id, maddr = parse_peer_addr(addr)
    pid = str(peer_id)
    if pid == str(host.get_id()):
        raise ConnectError("refusing to dial ourselves")
    if guard is not None and guard.is_blocked(pid):
        raise ConnectError(f"peer {pid} is blocked")
    network = host.get_network()
    unblock = getattr(network, "unblock_peer", None)
    if unblock is not None:
        unblock(peer_id)
    info = info_from_p2p_addr(maddr)
    try:
        with trio.fail_after(CONNECT_TIMEOUT_S):
            await host.connect(info)
    except trio.TooSlowError as exc:
        raise ConnectError(f"connect to {addr} timed out after {CONNECT_TIMEOUT_S} s") from exc
    except Exception as exc:
        raise ConnectError(f"connect to {addr} failed: {exc.__class__.__name__}: {exc}") from exc
    return pid


# (peer id, inbound, the connection's remote address or None)
ConnectionEvent = tuple[Any, bool, str | None]


def _remote_addr(conn: Any) -> str | None:
    """The remote end of a swarm connection (``/ip4/IP/tcp/PORT``), if known."""
    try:
        addrs = conn.get_transport_addresses()
    except Exception:
        return None
    return str(addrs[0]) if addrs else None


class ConnectionEvents(INotifee):
    """Swarm notifee forwarding new connections to a channel (never blocks the swarm)."""

    def __init__(self) -> None:
        self.send, self.recv = trio.open_memory_channel[ConnectionEvent](PEER_EVENT_BUFFER)

    async def connected(self, network: Any, conn: Any) -> None:
        inbound = str(getattr(conn, "direction", "")).lower().endswith("inbound")
        try:
            self.send.send_nowait((conn.muxed_conn.peer_id, inbound, _remote_addr(conn)))
        except (trio.WouldBlock, trio.ClosedResourceError):
            logger.warning("peer event queue full; dropped connect event")
        await trio.lowlevel.checkpoint()

    async def disconnected(self, network: Any, conn: Any) -> None:
        await trio.lowlevel.checkpoint()

    async def opened_stream(self, network: Any, stream: Any) -> None:
        await trio.lowlevel.checkpoint()

    async def closed_stream(self, network: Any, stream: Any) -> None:
        await trio.lowlevel.checkpoint()

    async def listen(self, network: Any, multiaddr: Any) -> None:
        await trio.lowlevel.checkpoint()

    async def listen_close(self, network: Any, multiaddr: Any) -> None:
        await trio.lowlevel.checkpoint()


def peer_addrs(host: Any, peer_id: Any) -> list[str]:
    """Known addresses of a peer as ``/ip4/.../tcp/.../p2p/<id>`` strings."""
    out: list[str] = []
    try:
        addrs = host.get_peerstore().addrs(peer_id)
    except Exception:
        addrs = []
    for a in addrs:
        s = str(a)
        out.append(s if "/p2p/" in s else f"{s}/p2p/{peer_id}")
    return out


def dialable_addrs(addrs: Iterable[str], remote: str | None) -> list[str]:
    """A dialing peer's advertised addresses as we can dial them back: a wildcard IP
    (0.0.0.0, ::) becomes the IP its connection came from (when of the same family), and
    the connection's own remote address (an ephemeral source port) is dropped."""
    remote_ip: str | None = None
    if remote is not None:
        parts = remote.split("/")
        if len(parts) > 2 and parts[1] in ("ip4", "ip6"):
            remote_ip = parts[2]
    out: list[str] = []
    for addr in addrs:
        parts = addr.split("/")
        if remote is not None and addr.startswith(remote + "/"):
            continue
        if len(parts) > 2 and parts[1] in ("ip4", "ip6"):
            try:
                unspecified = ipaddress.ip_address(parts[2]).is_unspecified
            except ValueError:
                unspecified = False
            if unspecified:
                if remote_ip is None or (":" in remote_ip) != (parts[1] == "ip6"):
                    continue  # no address of that family to put in
                parts[2] = remote_ip
                addr = "/".join(parts)
        if addr not in out:
            out.append(addr)
    return out


async def _identified_addrs(host: Any, peer_id: Any, remote: str | None) -> list[str]:
    """A peer that dialed us: its listen addresses once identify has put them in the
    peerstore (or what is there after ``IDENTIFY_WAIT_S``, or when it left)."""
    network = host.get_network()
    identified = getattr(host, "_identified_peers", {})  # upstream's "identify done" (private)
    with trio.move_on_after(IDENTIFY_WAIT_S):
        while True:
            addrs = dialable_addrs(peer_addrs(host, peer_id), remote)
            if addrs or peer_id in identified or not network.get_connections(peer_id):
                return addrs
            await trio.sleep(IDENTIFY_POLL_S)
    return dialable_addrs(peer_addrs(host, peer_id), remote)


async def _report(on_peer_connected: OnPeerConnected, pid: str, addrs: list[str]) -> None:
    try:
        await on_peer_connected(pid, addrs)
    except Exception:
        logger.exception("on_peer_connected callback failed for %s", pid)


async def _report_inbound(
    on_peer_connected: OnPeerConnected, host: Any, peer_id: Any, remote: str | None
) -> None:
    await _report(on_peer_connected, str(peer_id), await _identified_addrs(host, peer_id, remote))


@dataclass
class _Target:
    addrs: set[str] = field(default_factory=set)
    backoff: float = REDIAL_BACKOFF_INITIAL_S
    due: float = 0.0
    dialing: bool = False


class Redialer:
    """Keeps bootstrap and remembered peers connected, with exponential backoff per peer."""

    def __init__(
        self,
        host: Any,
        guard: PeerGuard,
        bootstrap: Sequence[str],
        source: RedialSource | None,
    ) -> None:
        self._host = host
        self._guard = guard
        self._bootstrap = list(bootstrap)
        self._source = source
        self._targets: dict[str, _Target] = {}
        self._limiter = trio.CapacityLimiter(MAX_CONCURRENT_DIALS)
        self._wake = trio.Event()

    def add(self, addr: str) -> None:
        """Remember ``addr`` for redialing (ignored if malformed)."""
        try:
            peer_id, _ = parse_peer_addr(addr)
        except ConnectError as exc:
            logger.warning("ignoring redial address: %s", exc)
            return
        pid = str(peer_id)
        if pid == str(self._host.get_id()):
            return
        self._targets.setdefault(pid, _Target()).addrs.add(addr)

    def retry_now(self, peer_id: str) -> None:
        """Dial ``peer_id`` at the next scan, from the first backoff (it was unblocked)."""
        target = self._targets.get(peer_id)
        if target is not None:
            target.backoff, target.due = REDIAL_BACKOFF_INITIAL_S, 0.0

    def connected(self, peer_id: str) -> None:
        """A connection to ``peer_id`` exists: reset its backoff."""
        target = self._targets.get(peer_id)
        if target is not None:
            target.backoff = REDIAL_BACKOFF_INITIAL_S

    def _refresh(self) -> None:
        for addr in self._bootstrap:
            self.add(addr)
        if self._source is not None:
            try:
                for addr in self._source():
                    self.add(addr)
            except Exception:
                logger.exception("redial address source failed")

    def _is_connected(self, pid: str) -> bool:
        try:
            return bool(self._host.get_network().get_connections(ID.from_base58(pid)))
        except Exception:
            return False

    async def _dial(self, pid: str, target: _Target) -> None:
        async with self._limiter:
            for addr in sorted(target.addrs):
                try:
                    await connect(self._host, addr, self._guard)
                except ConnectError as exc:
                    logger.debug("redial %s failed: %s", addr, exc)
                    continue
                logger.info("redialed %s", pid)
                target.backoff = REDIAL_BACKOFF_INITIAL_S
                target.dialing = False
                return
        delay = target.backoff * (1 + random.uniform(-BACKOFF_JITTER, BACKOFF_JITTER))
        target.due = trio.current_time() + delay
        target.backoff = min(target.backoff * REDIAL_BACKOFF_FACTOR, REDIAL_BACKOFF_MAX_S)
        target.dialing = False
        logger.debug("redial %s: next attempt in %.1f s", pid, delay)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Dial due targets every ``REDIAL_SCAN_INTERVAL_S``, forever."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                self._refresh()
                now = trio.current_time()
                for pid, target in self._targets.items():
                    if target.dialing or target.due > now or self._guard.is_blocked(pid):
                        continue
                    if self._is_connected(pid):
                        target.backoff = REDIAL_BACKOFF_INITIAL_S
                        continue
                    target.dialing = True
                    nursery.start_soon(self._dial, pid, target)
                await trio.sleep(REDIAL_SCAN_INTERVAL_S)


async def pump_peer_events(
    host: Any,
    events: ConnectionEvents,
    guard: PeerGuard,
    redialer: Redialer,
    on_peer_connected: OnPeerConnected | None,
    listeners: list[trio.MemorySendChannel[PeerConnected]],
    *,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Turn swarm notifications into callbacks; kick blocked peers that reconnect."""
    async with trio.open_nursery() as nursery:
        task_status.started()
        async for peer_id, inbound, remote in events.recv:
            pid = str(peer_id)
            if guard.is_blocked(pid):
                logger.info("blocked peer %s connected; disconnecting", pid)
                guard.kick(pid)
                continue
            redialer.connected(pid)
            event = PeerConnected(pid, peer_addrs(host, peer_id), inbound)
            for chan in list(listeners):
                try:
                    chan.send_nowait(event)
                except trio.WouldBlock:
                    logger.warning("peer event listener is full; dropped event for %s", pid)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    listeners.remove(chan)
            if on_peer_connected is None:
                continue
            if inbound:
                # Its listen addresses come with identify (one waiter per live inbound
                # connection at most: a waiter ends when its peer leaves).
                nursery.start_soon(_report_inbound, on_peer_connected, host, peer_id, remote)
            else:
                await _report(on_peer_connected, pid, event.addrs)
