"""Export and import through a running node, of more signed bytes than one RPC frame holds."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import kinds, objects
from protocols.exportfile import decode_export, encode_export
from protocols.limits import MAX_BODY_CHARS
from protocols.rpc import MAX_RPC_FRAME
from tests.integration.nodes import NodeProc, cli

pytestmark = pytest.mark.timeout(240)


def large_projects(n: int) -> list[bytes]:
    """A lab and n projects with bodies at the size limit (~32 KiB each)."""
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    ts = int(time.time() * 1000) - 3_600_000
    lab = kinds.create(key, "lab", {"name": "Big lab", "description": "", "place": "",
                                    "theme": ""}, ts)  # fmt: skip
    raws = [lab.raw]
    for i in range(n):
        text = (f"{i} " * MAX_BODY_CHARS)[:MAX_BODY_CHARS]
        body = {"lab": lab.id, "title": f"Long project {i}", "summary": "s", "body": text,
                "stage": "idea", "needs": []}  # fmt: skip
        raws.append(objects.sign(key, "project", ts + i, body).raw)
    return raws


def test_a_file_larger_than_an_rpc_frame_goes_in_and_out_of_a_running_node(
    tmp_path: Path,
) -> None:
    raws = large_projects(700)
    src = tmp_path / "in.percolab"
    src.write_bytes(encode_export(raws))
    assert src.stat().st_size > MAX_RPC_FRAME  # one call for all of it could not work
    node = NodeProc(tmp_path / "a", "a")
    node.init()
    node.start()
    try:
        assert (tmp_path / "a" / "node.sock").exists()  # so the CLI goes through the node
        result = cli(node.data_dir, "import", str(src))
        assert (result["accepted"], result["known"], result["rejected"]) == (len(raws), 0, [])
        out = tmp_path / "out.percolab"
        summary = cli(node.data_dir, "export", str(out))
        exported = decode_export(out.read_bytes())
        # and the member's own two: its device certificate and its profile
        assert summary["objects"] == len(exported) == len(raws) + 2
        # Byte-exact. Two import calls are in flight at once, so chunks may be stored in
        # either order (the store takes objects in any order, as sync delivers them).
        assert sorted(r for r in exported if r in set(raws)) == sorted(raws)
        assert summary["bytes"] == out.stat().st_size
        assert not (tmp_path / "out.percolab.part").exists()
        again = cli(node.data_dir, "import", str(out))
        assert (again["accepted"], again["known"]) == (0, len(raws) + 2)
    finally:
        node.stop()
