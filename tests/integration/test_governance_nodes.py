"""Labs without a chief across real `percolab node` processes (issue 24 part 2).

Three nodes, one member each: Ada creates a members-only lab and admits Bob; Eve, a newcomer,
posts: her post waits in the queue on Ada's and Bob's nodes and shows to her marked queued;
Bob vouches (the rules ask one vouch) and the post shows in `projects` on every node. Ada then
hides it: hidden everywhere, still stored and synced (equal digests), shown with
`show_hidden`. Two stewards on two nodes: one alone cannot remove the other; a removed
steward's later decisions, signed anyway, have no effect on any node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from node.ingest.pipeline import now_ms
from node.keys import keyfile
from node.keys.keyfile import UNENCRYPTED
from node.service.api import ServiceError
from protocols import kinds
from protocols.governance import decision_body
from protocols.identity import with_cert
from tests.integration.nodes import NodeProc, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

TIMEOUT_S = 90.0


def listed(node: NodeProc, lab: str, **params: Any) -> dict[str, dict[str, Any]]:
    return {p["id"]: p for p in node.call("projects", lab=lab, **params)["items"]}


def role(node: NodeProc, lab: str) -> str | None:
    try:
        r: str | None = node.call("lab_members", lab=lab)["role"]
        return r
    except ServiceError as exc:
        if exc.code == "not_found":  # the lab has not arrived yet
            return None
        raise


def code_of(node: NodeProc, method: str, **params: Any) -> str:
    with pytest.raises(ServiceError) as err:
        node.call(method, **params)
    return err.value.code


def effect(node: NodeProc, lab: str, did: str) -> str | None:
    for e in node.call("lab_log", lab=lab, limit=200)["entries"]:
        if e["id"] == did:
            return str(e["effect"])
    return None


def test_newcomer_vouched_in_then_hidden_on_every_node(tmp_path: Path) -> None:
    a, b, e = (NodeProc(tmp_path / n, n) for n in ("ada", "bob", "eve"))
    nodes = [a, b, e]
    try:
        for n in nodes:
            n.init()
        a.start()
        b.start(bootstrap=[a.addr()])
        e.start(bootstrap=[a.addr()])
        bob, eve = b.call("whoami")["member"], e.call("whoami")["member"]
        lab = a.call("lab_create", name="Commons")  # members-only: the default
        for n in (b, e):
            n.call("lab_follow", lab=lab)
        a.call("lab_admit", lab=lab, member=bob)
        a.call("lab_rules", lab=lab, admit_vouches=1)
        wait_until(lambda: role(b, lab) == "member", TIMEOUT_S, "Bob a member on his node")
        wait_until(lambda: role(e, lab) is None and e.find(lab), TIMEOUT_S, "the lab on eve")
        assert code_of(e, "vouch", lab=lab, member=eve) == "not_member"  # refused unsigned
        assert code_of(b, "lab_hide", id=lab) == "not_steward"

        # ---- the newcomer posts: queued on the others' nodes, hers marked queued ----------
        pid = e.call("post", lab=lab, title="Newcomer bench", summary="oak")
        assert listed(e, lab)[pid]["moderation"] == "queued"
        for n in (a, b):
            wait_until(lambda n=n: n.find(pid), TIMEOUT_S, f"eve's post on {n.name}")
            assert pid not in listed(n, lab)
        wait_until(lambda: [o["id"] for o in a.call("queue", lab=lab)["objects"]] == [pid],
                   TIMEOUT_S, "eve's post in ada's queue")  # fmt: skip
        labs = {v["id"]: v for v in a.call("lab_list")}
        assert labs[lab]["role"] == "steward" and labs[lab]["queued"] >= 1
        assert a.call("search", query="bench") == []

        # ---- a member vouches: shown on every node -----------------------------------------
        b.call("vouch", lab=lab, member=eve)
        for n in nodes:
            wait_until(lambda n=n: (p := listed(n, lab).get(pid)) and p["moderation"] == "shown",
                       TIMEOUT_S, f"eve's post shown on {n.name}")  # fmt: skip
        assert role(e, lab) == "member"

        # ---- the lab hides it: hidden on every node, still synced --------------------------
        a.call("lab_hide", id=pid, reason="off topic")
        for n in nodes:
            wait_until(lambda n=n: pid not in listed(n, lab), TIMEOUT_S, f"hidden on {n.name}")
        v = listed(b, lab, show_hidden=True)[pid]
        assert (v["moderation"], v["hidden_by"], v["hidden_reason"]) == (
            "hidden", a.call("whoami")["member"], "off topic")
        assert b.call("search", query="bench") == []
        assert b.call("search", query="bench", show_hidden=True)[0]["id"] == pid
        wait_until(lambda: len({n.call("status")["digest"] for n in nodes}) == 1, TIMEOUT_S,
                   "the same objects on every node")  # fmt: skip
        assert code_of(e, "lab_hide", id=pid) == "not_steward"
    finally:
        for n in nodes:
            n.stop()


def test_stewards_on_two_nodes(tmp_path: Path) -> None:
    a, b, c = (NodeProc(tmp_path / n, n) for n in ("ada", "bob", "cy"))
    nodes = [a, b, c]
    try:
        for n in nodes:
            n.init()
        a.start()
        b.start(bootstrap=[a.addr()])
        c.start(bootstrap=[a.addr()])
        bob, cy = b.call("whoami")["member"], c.call("whoami")["member"]
        lab = a.call("lab_create", name="Workshop")
        for n in (b, c):
            n.call("lab_follow", lab=lab)
        a.call("lab_admit", lab=lab, member=bob, role="steward")
        wait_until(lambda: role(b, lab) == "steward", TIMEOUT_S, "Bob a steward on his node")

        # One of two stewards alone cannot remove the other.
        rm = a.call("lab_remove", lab=lab, member=bob, role="steward")
        wait_until(lambda: effect(b, lab, rm) == "pending", TIMEOUT_S, "the proposal on bob")
        m = b.call("lab_members", lab=lab)
        assert {s["member"] for s in m["stewards"]} == {a.call("whoami")["member"], bob}
        assert [(p["id"], p["backing"], p["needed"]) for p in m["proposals"]] == [(rm, 1, 2)]

        # Cy joins the stewards (both endorse), then Ada and Cy remove Bob (2 of 3).
        add = a.call("lab_admit", lab=lab, member=cy, role="steward")
        wait_until(lambda: effect(b, lab, add) == "pending", TIMEOUT_S, "Cy's admission on b")
        b.call("endorse", id=add)
        wait_until(lambda: role(c, lab) == "steward", TIMEOUT_S, "Cy a steward on her node")
        wait_until(lambda: effect(c, lab, rm) == "pending", TIMEOUT_S, "the removal on cy")
        c.call("endorse", id=rm)
        wait_until(lambda: role(b, lab) == "member", TIMEOUT_S, "Bob no steward on his node")
        assert code_of(b, "suspend", lab=lab, member=cy) == "not_steward"

        # Signed anyway (another client on Bob's keys): valid, stored, no effect anywhere.
        pid = a.call("post", lab=lab, title="Lathe")
        ring = keyfile.load(b.data_dir / "member.keys", UNENCRYPTED)
        body = with_cert(decision_body(bytes.fromhex(lab), "hide", target=bytes.fromhex(pid)),
                         ring.extra["device_cert"])  # fmt: skip
        late = kinds.create(ring.private_key("device"), "decision", body, now_ms())
        assert b.call("import_objects", objects=[late.raw])["accepted"] == 1
        for n in nodes:
            wait_until(lambda n=n: effect(n, lab, late.id_hex) == "no_authority", TIMEOUT_S,
                       f"Bob's late hide on {n.name}")  # fmt: skip
            wait_until(lambda n=n: pid in listed(n, lab), TIMEOUT_S, f"the post on {n.name}")
    finally:
        for n in nodes:
            n.stop()
