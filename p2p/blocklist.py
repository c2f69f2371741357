"""Peers the node's owner blocked (docs/rpc.md `block`): no connection, gossip or stream of
theirs is taken while they are listed, whichever side dials.

Where a listed peer is stopped:

- its Noise handshake: :func:`refuse_blocked_handshakes` fails the security upgrade of any
  connection (inbound or outbound) whose authenticated peer is listed, so the connection
  never reaches the swarm (a dialing peer's ``connect`` fails);
- everywhere a strike-blocked peer is stopped, since ``PeerGuard.is_blocked`` consults the
  list: our dials and redials, the peer-event pump (a connection that got through, e.g. one
  open when the block came, is closed), our stream handlers and ``new_stream``
  (p2p/host.py), and gossip (the peer is on pubsub's blacklist: nothing it forwards or
  originates is validated).

Unblocking takes the peer off the list and the blacklist; the redial loop then reconnects a
remembered peer, and the node's sync catches up on connect.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from libp2p.transport.exceptions import SecurityUpgradeFailure

logger = logging.getLogger(__name__)


class Blocklist:
    """The blocked peer ids (base58 strings). Changed on the trio thread only."""

    def __init__(self, peers: Iterable[str] = ()) -> None:
        self._peers: frozenset[str] = frozenset(peers)

    def __contains__(self, peer_id: object) -> bool:
        return str(peer_id) in self._peers

    def peers(self) -> frozenset[str]:
        return self._peers

    def replace(self, peers: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
        """Make ``peers`` the list; returns (peers added, peers removed)."""
        new = frozenset(peers)
        added, removed = new - self._peers, self._peers - new
        self._peers = new
        return added, removed


def refuse_blocked_handshakes(swarm: Any, is_listed: Callable[[str], bool]) -> None:
    """Fail the security upgrade of connections with a listed peer (wraps the swarm's
    upgrader; upstream turns the failure into a closed connection and a debug log)."""
    upgrader = getattr(swarm, "upgrader", None)
    secure = getattr(upgrader, "upgrade_security", None)
    if secure is None:
        logger.warning("py-libp2p's upgrader changed; blocked peers are refused after connect")
        return

    async def gated(raw_conn: Any, is_initiator: bool, peer_id: Any = None) -> Any:
        conn = await secure(raw_conn, is_initiator, peer_id)
        remote = str(conn.get_remote_peer())
        if is_listed(remote):
            logger.info("refused a connection %s blocked peer %s",
                        "to" if is_initiator else "from", remote)  # fmt: skip
            with contextlib.suppress(Exception):
                await conn.close()
            raise SecurityUpgradeFailure(f"peer {remote} is blocked here")
        return conn

    setattr(upgrader, "upgrade_security", gated)  # noqa: B010 (an instance attribute)
