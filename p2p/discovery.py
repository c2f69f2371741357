"""mDNS discovery bridge.

py-libp2p 0.8.1's mDNS (`libp2p/discovery/mdns/listener.py`, `PeerListener.add_service`)
only puts a discovered peer into the peerstore and emits it on the module-level
`peerDiscovery` singleton; nothing dials it. Zeroconf calls that from its own thread, so this
bridge hops onto the trio loop (`TrioToken.run_sync_soon`) and hands the peer's addresses to
our redialer, which connects with backoff like any remembered peer.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import trio
from libp2p.discovery.events.peerDiscovery import peerDiscovery

logger = logging.getLogger(__name__)


def dialable_addrs(peer_info: Any) -> list[str]:
    """`/ip4|ip6/.../tcp/N/p2p/ID` strings for a discovered peer's TCP addresses."""
    peer_id = str(peer_info.peer_id)
    out = []
    for addr in peer_info.addrs:
        text = str(addr)
        if "/tcp/" not in text:
            continue
        out.append(text if "/p2p/" in text else f"{text}/p2p/{peer_id}")
    return out


@contextlib.contextmanager
def mdns_to_redialer(add_addr: Callable[[str], None], own_peer_id: str) -> Iterator[None]:
    """While active, every peer mDNS discovers is handed to `add_addr` on the trio thread."""
    token = trio.lowlevel.current_trio_token()

    def on_discovered(peer_info: Any) -> None:
        if str(peer_info.peer_id) == own_peer_id:
            return
        addrs = dialable_addrs(peer_info)
        logger.info("mDNS discovered %s at %s", peer_info.peer_id, addrs)
        for addr in addrs:
            try:
                token.run_sync_soon(add_addr, addr)
            except trio.RunFinishedError:
                return

    peerDiscovery.register_peer_discovered_handler(on_discovered)
    try:
        yield
    finally:
        peerDiscovery.unregister_peer_discovered_handler(on_discovered)
