"""Identities across real `percolab node` processes on loopback (issue 22):

* a stolen device, revoked while one of three nodes is offline: the thief's post (signed with
  the device's key and certificate, submitted to another node) shows "unattributed" on every
  node, the offline one too once it is back and has caught up, and what the device signed
  before `since` stays the member's;
* a lost root recovered through the contacts: a fresh root claims the member
  (`recovery rotate`), one endorsement of a threshold of two does not make it speak for the
  member, the second does; the member's old posts, profile name and lab stay the member's.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.ingest.pipeline import now_ms
from node.keys import keyfile
from node.keys.keyfile import UNENCRYPTED
from protocols import kinds
from protocols.identity import device_body, with_cert
from protocols.objects import SignedObject, public_key_bytes
from tests.integration.nodes import NodeProc, cli, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

TIMEOUT_S = 60.0


def _view(node: NodeProc, oid: str) -> dict[str, Any] | None:
    """The object's view on `node` (its attribution fields included), None until it is there."""
    shown = node.find(oid)
    return None if shown is None else dict(shown[shown["kind"]])


def _shows(node: NodeProc, oid: str, status: str, member: str | None) -> dict[str, Any] | None:
    """The view once `node` holds the object with that attribution, else None (to poll)."""
    v = _view(node, oid)
    return v if v is not None and (v["attribution"], v["member"]) == (status, member) else None


def _wait_shows(nodes: list[NodeProc], oid: str, status: str, member: str | None,
                what: str) -> None:  # fmt: skip
    for n in nodes:
        _wait_shows_on(n, oid, status, member, what)


def _wait_shows_on(n: NodeProc, oid: str, status: str, member: str | None, what: str) -> None:
    wait_until(lambda: _shows(n, oid, status, member), TIMEOUT_S,
               f"{what} to show {status} on {n.name}")  # fmt: skip


def _wait_found(n: NodeProc, oid: str, what: str) -> dict[str, Any]:
    found: dict[str, Any] = wait_until(lambda: _view(n, oid), TIMEOUT_S, f"{what} on {n.name}")
    return found


def _project(key: Ed25519PrivateKey, cert: bytes, lab: str, title: str, ts: int) -> SignedObject:
    body = {"lab": bytes.fromhex(lab), "title": title, "summary": "", "body": "",
            "stage": "idea", "needs": []}  # fmt: skip
    return kinds.create(key, "project", with_cert(body, cert), ts)


def _submit(node: NodeProc, obj: SignedObject) -> None:
    res = node.call("import_objects", objects=[obj.raw])
    assert res["accepted"] == 1 and not res["unindexed"], res


def test_stolen_device_revoked_while_a_node_is_offline(tmp_path: Path) -> None:
    a, b, c = (NodeProc(tmp_path / n, n) for n in ("ada", "bob", "cy"))
    nodes = [a, b, c]
    try:
        for n in nodes:
            n.init()
            n.start()
        member = a.call("whoami")["member"]
        lab = a.call("lab_create", name="Fab")
        for n in (b, c):
            n.call("lab_follow", lab=lab)
        b_addr = b.addr()
        a.call("connect", addr=b_addr)  # a - b - c
        c.call("connect", addr=b_addr)

        # M's second device D (a phone): certified by M's root, whose seed is in a's ring.
        root = keyfile.load(a.data_dir / "member.keys", UNENCRYPTED).private_key()
        assert public_key_bytes(root).hex() == member
        phone = Ed25519PrivateKey.generate()
        cert = kinds.create(root, "device", device_body(root, bytes.fromhex(member), phone,
                                                        "phone"), now_ms())  # fmt: skip
        _submit(a, cert)
        early = _project(phone, cert.id, lab, "from the phone, in hand", now_ms())
        _submit(a, early)
        _wait_shows(nodes, early.id_hex, "member", member, "the phone's post")
        listed = cli(a.data_dir, "device", "list")
        assert sorted((d["name"], d["valid"]) for d in listed if d["name"] == "phone") == [
            ("phone", True)]  # fmt: skip

        c.stop()  # offline while the phone is stolen and revoked
        res = cli(a.data_dir, "device", "revoke", "phone", "--since", "now",
                  "--reason", "stolen phone")  # fmt: skip
        assert res["device"] == public_key_bytes(phone).hex()
        assert early.ts < res["since"]
        # The thief posts with the phone's key and certificate, through b.
        stolen = _project(phone, cert.id, lab, "by the thief", max(now_ms(), res["since"]) + 1)
        _submit(b, stolen)
        _wait_shows([a, b], stolen.id_hex, "unattributed", None, "the thief's post")
        for n in (a, b):
            assert _shows(n, early.id_hex, "member", member), n.name

        c.start()
        c.call("connect", addr=b_addr)  # catches up by sync: the revocation and the post
        _wait_shows([c], stolen.id_hex, "unattributed", None, "the thief's post")
        wait_until(lambda: c.find(res["id"]), TIMEOUT_S, "the revocation on c")
        for n in nodes:
            assert _shows(n, early.id_hex, "member", member), n.name
            stolen_view = _view(n, stolen.id_hex)
            assert stolen_view is not None and stolen_view["author_name"] is None, n.name
            phone_info = [d for d in n.call("member", id=member)["devices"]
                          if d["name"] == "phone"]  # fmt: skip
            assert [d["revoked_since"] for d in phone_info] == [res["since"]], n.name
    finally:
        for n in nodes:
            n.stop()


def test_lost_root_recovered_by_contacts(tmp_path: Path) -> None:
    x, y = NodeProc(tmp_path / "x", "xena"), NodeProc(tmp_path / "y", "yuri")
    old = NodeProc(tmp_path / "m", "mona")
    new = NodeProc(tmp_path / "m-new", "mona again")
    nodes = [x, y, old, new]
    try:
        z = cli(tmp_path / "z", "init", "--unencrypted-key", "--name", "zoe")["member"]
        for n in (x, y, old):
            n.init()
            n.start()
        x_addr = x.addr()
        for n in (y, old):
            n.call("connect", addr=x_addr)
        contacts = [n.call("whoami")["member"] for n in (x, y)] + [z]
        member = old.call("whoami")["member"]

        lab = old.call("lab_create", name="Mona's lab")
        x.call("lab_follow", lab=lab)
        before = old.call("post", lab=lab, title="before the loss")
        rset = cli(old.data_dir, "recovery", "set", *contacts, "--threshold", "2")
        assert rset["threshold"] == 2 and sorted(rset["contacts"]) == sorted(contacts)
        for oid in (lab, before, rset["id"]):
            _wait_found(x, oid, "M's objects")
        old.stop()
        shutil.rmtree(old.data_dir)  # the member's only machine is lost, root and all

        new.init()  # a fresh root
        new.start()
        assert new.call("whoami")["member"] != member
        new.call("connect", addr=x_addr)
        new.call("lab_follow", lab=lab)
        wait_until(lambda: new.call("recovery_show", member=member)["recovery"], TIMEOUT_S,
                   "the member's recovery set on the new machine")  # fmt: skip
        rot = cli(new.data_dir, "recovery", "rotate", "--member", member)
        assert rot["member"] == member and rot["old"] == member
        assert new.call("whoami")["member"] == member
        after = new.call("post", lab=lab, title="after the loss")

        # One contact of a threshold of two: the new root does not speak for the member.
        wait_until(lambda: x.find(rot["rotation"]), TIMEOUT_S, "the rotation on x")
        endorsed = cli(x.data_dir, "recovery", "endorse", rot["rotation"])
        for n in (x, new):
            _wait_found(n, endorsed["id"], "x's endorsement")
            assert _endorsements(n, member) == 1, n.name
            shown = _wait_found(n, after, "the new post")
            assert (shown["attribution"], shown["member"]) == ("unattributed", None), n.name

        # The second: effective. New posts are the member's; the old ones stay the member's.
        wait_until(lambda: y.find(rot["rotation"]), TIMEOUT_S, "the rotation on y")
        cli(y.data_dir, "recovery", "endorse", rot["rotation"])
        _wait_shows([x, new], after, "member", member, "the post after the recovery")
        for n in (x, new):
            rotations = n.call("recovery_show", member=member)["rotations"]
            assert [(r["effective"], r["disputed"]) for r in rotations] == [(True, False)]
            for oid in (before, after, lab):  # the lab: its creator is still the member
                v = _shows(n, oid, "member", member)
                assert v is not None and v["author_name"] == "mona", (n.name, oid, v)
        who = new.call("whoami")
        assert (who["member"], who["name"]) == (member, "mona")
    finally:
        for n in nodes:
            n.stop()


def _endorsements(node: NodeProc, member: str) -> int:
    rotations = node.call("recovery_show", member=member)["rotations"]
    return sum(len(r["endorsements"]) for r in rotations)
