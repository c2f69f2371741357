"""Sync protocol versions between real node processes (docs/sync.md, "Versions"):

* a current node and a node of the first release (speaking only /percolab/sync/1.0.0,
  tests/integration/ext_sync_1_0.py) negotiate 1.0.0 and converge, with no strike;
* two current nodes negotiate 1.1.0;
* a session that runs out of rounds (tiny limits, tests/integration/ext_sync_small.py) ends
  cleanly and is resumed from where it stopped until the two stores are equal.
"""

from __future__ import annotations

import ast
import random
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.config import LOG_FILE
from protocols import kinds
from protocols.reconcile_limits import SYNC_PROTOCOL_ID_1_0, SYNC_PROTOCOL_ID_1_1
from tests.integration.nodes import NodeProc, wait_until
from tests.integration.test_mixed_release import (
    assert_nobody_blamed,
    digests_equal,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]
CONVERGE_TIMEOUT_S = 120.0
BASE_TS = 1_700_000_000_000


def profiles(n: int, seed: int) -> list[bytes]:
    """`n` profiles by fresh keys at scattered timestamps (interleaving with another seed's)."""
    rnd = random.Random(seed)
    return [
        kinds.create(Ed25519PrivateKey.generate(), "profile",
                     {"name": f"member {seed}-{i}", "about": ""},
                     BASE_TS + rnd.randrange(10_000_000)).raw
        for i in range(n)
    ]


def initiator_summaries(node: NodeProc) -> list[dict[str, Any]]:
    """The summaries of the sessions this node initiated, from its log ("sync {...}")."""
    out = []
    for line in (node.data_dir / LOG_FILE).read_text(encoding="utf-8").splitlines():
        _, sep, rest = line.partition(" sync {")
        if sep:
            summary = ast.literal_eval("{" + rest)
            if summary.get("role") == "initiator":
                out.append(summary)
    return out


def pair(tmp_path: Path, ext_a: list[str], ext_b: list[str], n: int) -> tuple[NodeProc, NodeProc]:
    env = {"PYTHONPATH": str(REPO)}
    a = NodeProc(tmp_path / "a", "a", env=env)
    b = NodeProc(tmp_path / "b", "b", env=env)
    for node, ext, seed in ((a, ext_a, 1), (b, ext_b, 2)):
        node.init()
        if ext:
            write_config(node.data_dir, ext)
        node.start()
        res = node.call("import_objects", objects=profiles(n, seed))
        assert not res["rejected"], res
    return a, b


def converge(a: NodeProc, b: NodeProc) -> None:
    b_addr = b.addr()
    a.call("connect", addr=b_addr)
    wait_until(lambda: digests_equal([a, b]), CONVERGE_TIMEOUT_S, "the two stores to converge")


@pytest.mark.parametrize(
    "old_side", ["initiator", "responder"], ids=["old-dials-new", "new-dials-old"]
)
def test_first_release_peer_gets_1_0_0(tmp_path: Path, old_side: str) -> None:
    old = ["tests.integration.ext_sync_1_0"]
    a, b = pair(tmp_path, old if old_side == "initiator" else [],
                old if old_side == "responder" else [], 400)  # fmt: skip
    try:
        converge(a, b)
        for node in (a, b):
            used = {s.get("protocol") for s in initiator_summaries(node)} - {None}
            assert used == {SYNC_PROTOCOL_ID_1_0}, (node.name, used)
        assert_nobody_blamed([a, b])
    finally:
        a.stop()
        b.stop()


def test_current_peers_use_1_1_0_and_resume(tmp_path: Path) -> None:
    small = ["tests.integration.ext_sync_small"]
    a, b = pair(tmp_path, small, small, 600)
    try:
        converge(a, b)
        summaries = initiator_summaries(a) + initiator_summaries(b)
        assert {s.get("protocol") for s in summaries} - {None} == {SYNC_PROTOCOL_ID_1_1}
        # Two rounds of 4 KiB cannot settle 1,200 scattered differences: sessions ended with
        # a bound left open, and were resumed from it.
        assert any(s.get("resume_from") is not None for s in summaries), summaries[:3]
        assert any(s.get("resumed") for s in summaries), summaries[:3]
        assert_nobody_blamed([a, b])
    finally:
        a.stop()
        b.stop()
