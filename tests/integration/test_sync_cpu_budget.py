"""Sessions that never converge cost the peer (issue 21): a peer whose fingerprints never
match the node's keeps it busy hashing and splitting for as long as it likes, unless answering
its sessions is paid from a CPU budget (node/sync/serve.py). With a budget small enough to
spend here (tests/integration/ext_sync_cpu.py), a peer that opens session after session over
made-up items is answered BUSY, and the node stays up and keeps every object."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from p2p.sync_transport import initiate_sync
from protocols import kinds
from protocols.reconcile import Initiator, SortedItems
from protocols.reconcile_limits import SYNC_PROTOCOL_ID_1_1, V1_1
from protocols.sync_messages import Accept, SyncOpen
from tests.integration.nodes import NodeProc
from tests.integration.test_mixed_release import write_config
from tests.integration.test_sync_hostile import fake_peer
from tests.integration.test_sync_versions import profiles

pytestmark = [pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[2]
MAX_SESSIONS = 200  # made-up sessions before the test gives up waiting for BUSY
SESSION_WAIT_S = 20.0


def test_never_converging_peer_is_answered_busy(tmp_path: Path) -> None:
    node = NodeProc(tmp_path / "n", "n", env={"PYTHONPATH": str(REPO)})
    node.init()
    write_config(node.data_dir, ["tests.integration.ext_sync_cpu"])
    node.start()
    try:
        res = node.call("import_objects", objects=profiles(2000, 7))
        assert not res["rejected"], res
        before = node.call("status")

        async def main() -> list[Accept]:
            statuses: list[Accept] = []
            async with fake_peer(node) as p2p:
                peer = await p2p.connect(await trio.to_thread.run_sync(node.addr))
                opening = SyncOpen(kinds.PUBLIC_SCOPE)
                for _ in range(MAX_SESSIONS):
                    # Items the node never holds: every fingerprint differs, every session
                    # makes the node split and list.
                    fake = SortedItems(
                        sorted((1_700_000_000_000 + i * 997, os.urandom(32)) for i in range(2000))
                    )
                    init = Initiator(fake, *opening.bounds, limits=V1_1)

                    async def step(data: bytes, init: Initiator = init) -> bytes | None:
                        return init.receive(data)

                    s = await p2p.new_stream(peer, [SYNC_PROTOCOL_ID_1_1])
                    with trio.fail_after(SESSION_WAIT_S):
                        status = await initiate_sync(
                            s, opening, init.start(), step, lambda init=init: init.done
                        )
                    statuses.append(status)
                    if status == Accept.BUSY:
                        break
            return statuses

        statuses = trio.run(main)
        assert statuses[-1] == Accept.BUSY, f"never refused after {len(statuses)} sessions"
        assert statuses[0] == Accept.OK  # the budget let the first sessions through
        after = node.call("status")
        assert after["running"] and after["digest"] == before["digest"]
    finally:
        node.stop()
