"""A restarted node redials the peers that had dialed it (issue 21).

B dials A (A's connection is inbound). A must remember B's listen address (identify gives
it; the connection itself only shows B's ephemeral source port), so that after a restart A
dials B by itself. A restarts on a new port, so B's own redial of A (its bootstrap address)
cannot be what reconnects them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.nodes import NodeProc, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

REMEMBER_TIMEOUT_S = 30.0
# The redial loop scans every second and dials a remembered peer at once after a start.
REDIAL_TIMEOUT_S = 30.0


def _peer_ids(node: NodeProc) -> set[str]:
    return {p["peer_id"] for p in node.call("peers")}


def test_restarted_node_redials_a_peer_that_had_dialed_it(tmp_path: Path) -> None:
    a = NodeProc(tmp_path / "a", "a")  # listens on tcp/0: a new port at each start
    b = NodeProc(tmp_path / "b", "b")
    a.init()
    b.init()
    a.start()
    try:
        b.start(bootstrap=[a.addr()])
        b_id, b_addr = b.peer_id(), b.addr()
        wait_until(lambda: b_id in _peer_ids(a), REMEMBER_TIMEOUT_S, "b to dial a")
        log = a.data_dir / "node.log"
        wait_until(lambda: f"remembered peer {b_id} at {b_addr}" in log.read_text(),
                   REMEMBER_TIMEOUT_S, "a to remember b's listen address")  # fmt: skip
        old_a_addr = a.addr()
        a.stop()
        wait_until(lambda: not b.call("peers"), REMEMBER_TIMEOUT_S, "b to see a gone")
        a.start()
        assert a.addr() != old_a_addr  # b's bootstrap address for a is now stale
        wait_until(lambda: b_id in _peer_ids(a), REDIAL_TIMEOUT_S, "a to redial b")
    finally:
        b.stop()
        a.stop()
