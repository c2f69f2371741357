"""An externally signed object posted over HTTP is gossiped to a peer following its lab."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocols import topics
from tests.http.helpers import RunningNode, percolab, start_node, wait_for
from tests.http.test_write import external_project

GOSSIP_TIMEOUT_S = 30.0


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[RunningNode, RunningNode, str]]:
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    percolab(a_dir, "init", "--unencrypted-key", "--name", "Ada")
    lab = json.loads(percolab(a_dir, "--json", "lab", "create", "Gossip Lab").stdout)["id"]
    percolab(b_dir, "init", "--unencrypted-key", "--name", "Bo")
    percolab(b_dir, "lab", "follow", lab)
    a = start_node(a_dir)
    try:
        b = start_node(b_dir, "--bootstrap", a.status["addrs"][0])
        try:
            yield a, b, lab
        finally:
            b.stop()
    finally:
        a.stop()


@pytest.mark.slow
def test_posted_object_reaches_a_peer(pair: tuple[RunningNode, RunningNode, str]) -> None:
    a, b, lab = pair
    topic = topics.lab_topic(bytes.fromhex(lab))
    with a.client() as ca, b.client() as cb:
        def meshed() -> bool:
            mesh = ca.get("/api/v1/status").json().get("mesh", {})
            return bool(mesh.get(topic))

        wait_for(meshed, GOSSIP_TIMEOUT_S, "node b in node a's mesh for the lab topic")
        obj = external_project(lab, "Travels by gossip")
        r = ca.post("/api/v1/objects", json={"raw": base64.b64encode(obj.raw).decode()},
                    headers=a.auth)  # fmt: skip
        assert r.status_code == 201, r.text
        wait_for(lambda: cb.get(f"/api/v1/objects/{obj.id_hex}").status_code == 200,
                 GOSSIP_TIMEOUT_S, "the object at node b")  # fmt: skip
