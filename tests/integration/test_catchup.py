"""Catch-up between real node processes: a restarted node converges by reconciliation,
a healed partition converges, a comment whose project is unknown gets its project fetched."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import kinds, objects
from tests.integration.nodes import NodeProc, node_group, wait_until

pytestmark = pytest.mark.timeout(240)

T0 = int(time.time() * 1000) - 3_600_000
IMPORT_CHUNK = 500


def make_lab(key: Ed25519PrivateKey, name: str, ts: int) -> objects.SignedObject:
    body = {"name": name, "description": "", "place": "", "theme": ""}
    return kinds.create(key, "lab", body, ts)


def make_objects(n: int, lab: bytes, seed: int, ts0: int = T0) -> list[bytes]:
    """n signed projects and comments in `lab` (fast: objects.sign, no per-object validate)."""
    key = Ed25519PrivateKey.from_private_bytes(bytes([seed % 256]) * 32)
    out: list[bytes] = []
    projects: list[bytes] = []
    body: dict[str, Any]
    for i in range(n):
        ts = ts0 + i * 7
        if i % 3 == 0 or not projects:
            body = {"lab": lab, "title": f"Project {seed}-{i}", "summary": "s", "body": "b" * 200,
                    "stage": "idea", "needs": []}  # fmt: skip
            obj = objects.sign(key, "project", ts, body)
            projects.append(obj.id)
        else:
            body = {"lab": lab, "target": projects[-1], "parent": None, "body": f"c {i}"}
            obj = objects.sign(key, "comment", ts, body)
        out.append(obj.raw)
    return out


def import_all(node: NodeProc, raws: list[bytes]) -> None:
    for start in range(0, len(raws), IMPORT_CHUNK):
        res = node.call("import_objects", objects=raws[start : start + IMPORT_CHUNK])
        assert not res["rejected"], res["rejected"][:3]


def digest(node: NodeProc) -> tuple[str, int]:
    st = node.call("status")
    return st["digest"], st["sync_items"]


def converged(nodes: list[NodeProc]) -> bool:
    digests = {digest(n) for n in nodes}
    return len(digests) == 1


def test_restarted_node_catches_up(tmp_path: Path) -> None:
    with node_group(tmp_path, ["a", "b"]) as (a, b):
        a.start()
        b.start(bootstrap=[a.addr()])
        lab = make_lab(Ed25519PrivateKey.generate(), "Catch-up lab", T0 - 1000)
        import_all(a, [lab.raw])
        b.call("lab_follow", lab=lab.id.hex())
        a.call("lab_follow", lab=lab.id.hex())
        wait_until(lambda: b.find(lab.id.hex()), 30, "the lab to reach b")
        b.stop()
        raws = make_objects(2000, lab.id, seed=1)
        import_all(a, raws)
        base = digest(a)[1] - 2000  # the lab and both members' profiles
        t = time.monotonic()
        b.start(bootstrap=[a.addr()])
        wait_until(lambda: converged([a, b]), 60, "b to catch up with a")
        took = time.monotonic() - t
        st = b.call("status")
        assert st["sync_items"] == base + 2000
        print(f"2000 objects caught up in {took:.1f} s; sync status {st['sync']}")


def test_partition_heals(tmp_path: Path) -> None:
    names = [f"n{i}" for i in range(6)]
    with node_group(tmp_path, names) as nodes:
        left, right = nodes[:3], nodes[3:]
        lab = make_lab(Ed25519PrivateKey.generate(), "Partition lab", T0 - 1000)
        for group in (left, right):
            group[0].start()
            for n in group[1:]:
                n.start(bootstrap=[group[0].addr()])
        for n in nodes:
            import_all(n, [lab.raw])
            n.call("lab_follow", lab=lab.id.hex())
        # Posts on both sides, at several nodes of each group.
        for i, n in enumerate(nodes):
            import_all(n, make_objects(60, lab.id, seed=10 + i, ts0=T0 + i * 100_000))
        wait_until(lambda: converged(left), 60, "the left group to converge")
        wait_until(lambda: converged(right), 60, "the right group to converge")
        assert digest(left[0]) != digest(right[0])
        left[1].call("connect", addr=right[2].addr())
        wait_until(lambda: converged(nodes), 90, "all 6 nodes to converge", step=0.5)
        assert digest(nodes[0])[1] >= 1 + 6 * 60


def test_missing_project_is_fetched(tmp_path: Path) -> None:
    with node_group(tmp_path, ["a", "b"]) as (a, b):
        a.start()
        b.start(bootstrap=[a.addr()])
        wait_until(lambda: b.call("status")["peers"] >= 1, 30, "b to connect")
        key = Ed25519PrivateKey.generate()
        lab = make_lab(key, "Refs lab", T0)
        # Only a holds the lab and the project; b follows nothing, so sync of the public
        # scope brings the lab but never the project (it lives in the lab's scope).
        project = kinds.create(
            key, "project",
            {"lab": lab.id, "title": "Kiln", "summary": "", "body": "", "stage": "idea",
             "needs": []},
            T0 + 1,
        )  # fmt: skip
        import_all(a, [lab.raw, project.raw])
        comment = kinds.create(
            key,
            "comment",
            {"lab": None, "target": project.id, "parent": None, "body": "hi"},
            T0 + 2,
        )
        import_all(b, [comment.raw])  # a public comment about a project b does not have
        wait_until(lambda: b.find(project.id.hex()), 30, "the project to be fetched by id")
        wait_until(lambda: b.find(lab.id.hex()), 30, "the lab to reach b")
