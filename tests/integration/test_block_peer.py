"""Blocking a peer (`block`/`unblock`, p2p/blocklist.py) between real nodes on loopback.

A blocks B: the connection between them closes at once, B cannot connect again (A refuses
its handshake) and B's new posts do not reach A. A unblocks B: A redials B and the sync on
connect brings what A missed. The block outlives a restart of A.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from node.service.api import ServiceError
from tests.integration.nodes import NodeProc, node_group, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ARRIVE_TIMEOUT_S = 30.0
# Unblocked: A redials B at its next scan (1 s), then syncs after the connection settles.
CATCH_UP_TIMEOUT_S = 60.0


def _peer_ids(node: NodeProc) -> set[str]:
    return {p["peer_id"] for p in node.call("peers")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _refusals(node: NodeProc) -> int:
    """Connections the node refused at the handshake (p2p/blocklist.py logs each)."""
    return (node.data_dir / "node.log").read_text().count("refused a connection from blocked")


def _refused(b: NodeProc, a: NodeProc) -> str:
    """B dials A: the error code, once A has logged refusing it."""
    seen = _refusals(a)
    with pytest.raises(ServiceError) as exc:
        b.call("connect", addr=a.addr())
    wait_until(lambda: _refusals(a) > seen, ARRIVE_TIMEOUT_S, "a to refuse b's handshake")
    return exc.value.code


def test_block_then_unblock_a_peer(tmp_path: Path) -> None:
    with node_group(tmp_path, ["a", "b"]) as (a, b):
        # A keeps its port across its restart below, so B's address of A stays good.
        a.listen = f"/ip4/127.0.0.1/tcp/{_free_port()}"
        a.start()
        b.start(bootstrap=[a.addr()])
        b_id = b.peer_id()
        wait_until(lambda: b_id in _peer_ids(a), ARRIVE_TIMEOUT_S, "b to connect to a")
        lab = a.call("lab_create", name="Fablab", posts="shown")
        wait_until(lambda: b.find(lab), ARRIVE_TIMEOUT_S, "the lab to reach b")
        b.call("lab_follow", lab=lab)
        before = b.call("post", lab=lab, title="Before the block")
        wait_until(lambda: a.find(before), ARRIVE_TIMEOUT_S, "b's first post to reach a")

        a.call("block", peer=b_id)
        assert a.call("moderation")["blocked"] == [b_id]
        wait_until(lambda: not _peer_ids(a) and not _peer_ids(b), ARRIVE_TIMEOUT_S,
                   "the connection between a and b to close")  # fmt: skip
        during = b.call("post", lab=lab, title="During the block")
        # B cannot connect (its redial loop keeps trying too): A refuses the handshake.
        assert _refused(b, a) == "connect_failed"
        assert not _peer_ids(a)
        assert a.find(during) is None  # no connection, no gossip: it cannot have come

        # The block is kept: a restarted A refuses B still.
        a.stop()
        a.start()
        assert _refused(b, a) == "connect_failed"
        assert not _peer_ids(a) and a.find(during) is None

        a.call("unblock", peer=b_id)
        assert a.call("moderation")["blocked"] == []
        wait_until(lambda: a.find(during), CATCH_UP_TIMEOUT_S, "the missed post to reach a")
        assert b_id in _peer_ids(a)
        after = b.call("post", lab=lab, title="After the block")
        wait_until(lambda: a.find(after), ARRIVE_TIMEOUT_S, "b's next post to reach a")
