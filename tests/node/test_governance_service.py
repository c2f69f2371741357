"""Labs without a chief through the node (issue 24 part 2), in process: several members'
Services over one store. Stewards and proposals, a removed steward, the newcomer path (queued,
vouched, admitted), the lab's hide, refusals before signing, lab views, the `decisions` index
and its upgrade."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from node.ingest.pipeline import Ingest
from node.service import governance
from node.service.api import Service, ServiceError
from node.store.read import U64
from node.store.store import Store
from protocols.governance import decision_body
from tests.node.services import member


def me(svc: Service) -> str:
    return str(svc.call("whoami", {})["member"])


def code_of(svc: Service, method: str, params: dict[str, Any]) -> str:
    with pytest.raises(ServiceError) as err:
        svc.call(method, params)
    return err.value.code


def listed(svc: Service, lab: str, **params: Any) -> dict[str, dict[str, Any]]:
    items = svc.call("projects", {"lab": lab, **params})["items"]
    return {p["id"]: p for p in items}


def effects(svc: Service, lab: str) -> dict[str, str]:
    return {e["id"]: e["effect"] for e in svc.call("lab_log", {"lab": lab})["entries"]}


@pytest.fixture
def three(world: Any) -> tuple[Service, Service, Service, str]:
    ada, bob, eve = member(world, "Ada"), member(world, "Bob"), member(world, "Eve")
    lab = ada.call("lab_create", {"name": "Fablab"})  # members-only by default
    return ada, bob, eve, lab


def test_two_stewards_one_alone_cannot_remove_the_other(three: Any) -> None:
    ada, bob, _, lab = three
    assert ada.call("lab_admit", {"lab": lab, "member": me(bob), "role": "steward"})
    m = ada.call("lab_members", {"lab": lab})
    assert {s["member"] for s in m["stewards"]} == {me(ada), me(bob)}
    assert m["role"] == "steward" and m["rules"]["posts"] == "queued"
    rm = ada.call("lab_remove", {"lab": lab, "member": "Bob", "role": "steward",
                                 "reason": "not alone"})  # fmt: skip
    assert effects(ada, lab)[rm] == "pending"
    m = ada.call("lab_members", {"lab": lab})
    assert {s["member"] for s in m["stewards"]} == {me(ada), me(bob)}
    [p] = m["proposals"]
    assert (p["id"], p["act"], p["subject"]["member"], p["backing"], p["needed"]) == (
        rm, "remove", me(bob), 1, 2)
    assert p["by"]["name"] == "Ada" and p["by"]["fingerprint"]
    # A steward cannot be removed as a plain member, and a member is no steward.
    assert code_of(ada, "lab_remove", {"lab": lab, "member": me(bob)}) == "bad_request"
    entry = next(e for e in ada.call("lab_log", {"lab": lab})["entries"] if e["id"] == rm)
    assert (entry["by"]["member"], entry["subject"]["member"], entry["role"], entry["reason"]) == (
        me(ada), me(bob), "steward", "not alone")


def test_a_removed_stewards_later_decisions_have_no_effect(world: Any, three: Any) -> None:
    ada, bob, _, lab = three
    cy = member(world, "Cy")
    ada.call("lab_admit", {"lab": lab, "member": me(bob), "role": "steward"})
    add_cy = ada.call("lab_admit", {"lab": lab, "member": me(cy), "role": "steward"})
    bob.call("endorse", {"id": add_cy})
    rm = ada.call("lab_remove", {"lab": lab, "member": me(bob), "role": "steward"})
    cy.call("endorse", {"id": rm})  # 2 of 3: Bob is no steward, still a member
    m = ada.call("lab_members", {"lab": lab})
    assert {s["member"] for s in m["stewards"]} == {me(ada), me(cy)}
    assert me(bob) in {x["member"] for x in m["members"]}
    pid = ada.call("post", {"lab": lab, "title": "Solar oven"})
    # Refused before signing...
    assert code_of(bob, "lab_hide", {"id": pid}) == "not_steward"
    # ...and if signed anyway (another client), valid and without effect.
    late = bob.create("decision", decision_body(bytes.fromhex(lab), "hide",
                                                target=bytes.fromhex(pid)))  # fmt: skip
    assert effects(ada, lab)[late.id_hex] == "no_authority"
    assert listed(ada, lab)[pid]["moderation"] == "shown"


def test_newcomer_queued_then_vouched_in(three: Any) -> None:
    ada, bob, eve, lab = three
    ada.call("lab_admit", {"lab": lab, "member": me(bob)})
    post = eve.call("post", {"lab": lab, "title": "Newcomer's bike"})
    # Shown to Eve, marked queued; left out of others' lists, in the queue.
    assert listed(eve, lab)[post]["moderation"] == "queued"
    assert post not in listed(ada, lab) and post not in listed(bob, lab)
    assert listed(ada, lab, show_hidden=True)[post]["moderation"] == "queued"
    q = ada.call("queue", {"lab": lab})
    assert [o["id"] for o in q["objects"]] == [post] and (q["total"], q["next"]) == (1, None)
    assert [n["member"]["member"] for n in q["newcomers"]] == [me(eve)]
    labs = {v["id"]: v for v in ada.call("lab_list", {})}
    assert (labs[lab]["role"], labs[lab]["queued"], labs[lab]["short_id"]) == (
        "steward", 1, lab[:8])
    assert labs[lab]["name_clash"] is False
    assert {v["id"]: v for v in eve.call("lab_list", {})}[lab]["role"] is None
    assert ada.call("search", {"query": "newcomer"}) == []
    assert [p["id"] for p in eve.call("search", {"query": "newcomer"})] == [post]
    # A member vouches (one vouch now suffices): Eve is in, her post shows everywhere.
    ada.call("lab_rules", {"lab": lab, "admit_vouches": 1})
    assert code_of(eve, "vouch", {"lab": lab, "member": me(eve)}) == "not_member"
    bob.call("vouch", {"lab": lab, "member": me(eve)})
    assert listed(ada, lab)[post]["moderation"] == "shown"
    assert ada.call("queue", {"lab": lab}) == {"objects": [], "newcomers": [], "total": 0,
                                               "next": None}  # fmt: skip
    assert ada.call("lab_members", {"lab": lab})["role"] == "steward"
    assert eve.call("lab_members", {"lab": lab})["role"] == "member"


def test_approve_and_steward_admits(three: Any) -> None:
    ada, bob, eve, lab = three
    first = eve.call("post", {"lab": lab, "title": "One"})
    ada.call("lab_admit", {"lab": lab, "member": me(bob)})
    assert code_of(eve, "approve", {"id": first}) == "not_member"
    bob.call("approve", {"id": first})  # one object, not its author
    second = eve.call("post", {"lab": lab, "title": "Two"})
    assert first in listed(ada, lab) and second not in listed(ada, lab)
    assert code_of(bob, "lab_admit", {"lab": lab, "member": me(eve)}) == "not_steward"
    ada.call("lab_admit", {"lab": lab, "member": "Eve"})
    assert second in listed(ada, lab)


def test_lab_hide_comments_and_suspension(three: Any) -> None:
    ada, bob, eve, lab = three
    ada.call("lab_admit", {"lab": lab, "member": me(bob)})
    pid = bob.call("post", {"lab": lab, "title": "Kiln", "tags": ["ceramics"]})
    spam = eve.call("comment", {"target": pid, "body": "buy now"})  # replies: shown
    assert ada.call("project", {"id": pid})["project"]["comments"] == 1
    hid = ada.call("lab_hide", {"id": spam, "reason": "spam"})
    shown = ada.call("project", {"id": pid})
    assert shown["comments"] == [] and shown["project"]["comments"] == 0
    full = ada.call("project", {"id": pid, "show_hidden": True})["comments"]
    assert [(c["id"], c["moderation"], c["hidden_by"], c["hidden_reason"]) for c in full] == [
        (spam, "hidden", me(ada), "spam")]
    assert effects(ada, lab)[hid] == "applied"
    ada.call("lab_unhide", {"id": spam})
    assert ada.call("project", {"id": pid})["project"]["comments"] == 1
    ada.call("suspend", {"lab": lab, "member": me(bob), "reason": "cool down"})
    assert pid not in listed(ada, lab)
    v = ada.call("show", {"id": pid, "show_hidden": True})["project"]
    assert (v["moderation"], v["hidden_by"], v["hidden_reason"]) == ("hidden", me(ada),
                                                                     "cool down")
    assert ada.call("lab_members", {"lab": lab})["suspended"][0]["member"] == me(bob)
    assert code_of(bob, "vouch", {"lab": lab, "member": me(eve)}) == "not_member"
    ada.call("unsuspend", {"lab": lab, "member": me(bob)})
    assert pid in listed(ada, lab)
    assert ada.call("search", {"query": "kiln"})[0]["id"] == pid


def test_rules_proposals_and_refusals(three: Any) -> None:
    ada, bob, eve, lab = three
    assert code_of(eve, "lab_rules", {"lab": lab, "posts": "shown"}) == "not_steward"
    assert code_of(ada, "lab_rules", {"lab": lab}) == "bad_request"
    assert code_of(ada, "lab_rules", {"lab": lab, "posts": "members"}) == "bad_request"
    assert code_of(ada, "endorse", {"id": lab}) == "bad_request"
    assert code_of(ada, "lab_admit", {"lab": lab, "member": "Nobody"}) == "not_found"
    ada.call("lab_admit", {"lab": lab, "member": me(bob), "role": "steward"})
    r = ada.call("lab_rules", {"lab": lab, "posts": "shown"})
    assert ada.call("lab_members", {"lab": lab})["rules"]["posts"] == "queued"
    bob.call("endorse", {"id": r})
    assert ada.call("lab_members", {"lab": lab})["rules"]["posts"] == "shown"
    assert eve.call("post", {"lab": lab, "title": "Open now"}) in listed(ada, lab)


def test_open_lab_and_the_log_pages(world: Any) -> None:
    ada, eve = member(world, "Ada"), member(world, "Eve")
    lab = ada.call("lab_create", {"name": "Open lab", "posts": "shown"})
    assert ada.call("lab_log", {"lab": lab}) == {"entries": [], "next": None}
    assert eve.call("post", {"lab": lab, "title": "Hello"}) in listed(ada, lab)
    for _ in range(3):
        ada.call("lab_rules", {"lab": lab, "replies": "queued"})
    page = ada.call("lab_log", {"lab": lab, "limit": 2})
    assert [e["effect"] for e in page["entries"]] == ["no_effect", "no_effect"]
    rest = ada.call("lab_log", {"lab": lab, "limit": 2, "cursor": page["next"]})
    assert [e["effect"] for e in rest["entries"]] == ["applied"] and rest["next"] is None
    assert rest["entries"][0]["rules"] == {"replies": "queued"}
    assert code_of(ada, "lab_create", {"name": "X", "posts": "all"}) == "bad_request"
    assert code_of(ada, "lab_log", {"lab": lab, "cursor": "zz"}) == "bad_request"


def test_name_clash_and_registry_cache(world: Any) -> None:
    ada, bob = member(world, "Ada"), member(world, "Bob")
    one = ada.call("lab_create", {"name": "Fablab"})
    two = bob.call("lab_create", {"name": "FABLAB"})
    labs = {v["id"]: v for v in ada.call("lab_list", {})}
    assert labs[one]["name_clash"] and labs[two]["name_clash"]
    gov = ada.governance
    before = gov.builds
    ada.call("lab_members", {"lab": one})
    ada.call("lab_members", {"lab": one})
    assert gov.builds == before  # cached: no replay for a read
    ada.call("lab_rules", {"lab": one, "admit_vouches": 1})
    assert ada.call("lab_members", {"lab": one})["rules"]["admit_vouches"] == 1


def test_decisions_index_and_its_upgrade(tmp_path: Path) -> None:
    store = Store(tmp_path / "store", map_size=1 << 30)
    ingest = Ingest(store, check_workers=0)
    ada = member((tmp_path, store, ingest), "Ada")
    lab = ada.call("lab_create", {"name": "Fablab"})
    ada.call("lab_rules", {"lab": lab, "admit_vouches": 3})
    with store.read() as txn:
        keys = [bytes(k) for k, _ in txn.cursor(db=store.db["decisions"])]
    assert len(keys) == 2 and all(k.startswith(bytes.fromhex(lab)) for k in keys)
    # A store from before the index: emptied, marker gone; the next open fills it.
    with store.env.begin(write=True) as txn:
        txn.drop(store.db["decisions"], delete=False)
        txn.delete(b"decisions:v1", db=store.db["meta"])
    ingest.close()
    store.close()
    again = Store(tmp_path / "store", map_size=1 << 30)
    try:
        with again.read() as txn:
            assert [bytes(k) for k, _ in txn.cursor(db=again.db["decisions"])] == keys
        a = governance.of_store(again).authority(bytes.fromhex(lab))
        assert a is not None and a.rules.admit_vouches == 3 and a.rules.posts == "queued"
    finally:
        again.close()


def test_local_choices_and_followed_decisions(world: Any) -> None:
    ada, eve = member(world, "Ada"), member(world, "Eve")
    lab = ada.call("lab_create", {"name": "Open lab", "posts": "shown"})
    other = ada.call("lab_create", {"name": "Moderators"})
    pid = eve.call("post", {"lab": lab, "title": "Spam"})
    ada.call("mute", {"member": me(eve)})  # this node only: every seat, no object
    v = ada.call("project", {"id": pid})["project"]
    assert (v["moderation"], v["hidden_by"]) == ("hidden", "node")
    assert pid not in listed(ada, lab) and pid in listed(ada, lab, show_hidden=True)
    ada.call("unmute", {"member": me(eve)})
    assert pid in listed(ada, lab)
    # Another lab's steward hides it there (a decision naming an object of another lab):
    # no effect in `lab`, until this node follows that lab's decisions.
    ada.call("lab_hide", {"id": pid, "lab": other, "reason": "known spammer"})
    assert pid in listed(ada, lab)
    ada.call("decisions_follow", {"lab": other, "on": True})
    v = ada.call("project", {"id": pid})["project"]
    assert (v["moderation"], v["hidden_by"], v["hidden_reason"]) == (
        "hidden", me(ada), "known spammer")
    assert pid not in listed(ada, lab)


# ---- counts leave out what lists leave out (hidden, others' queued) ---------------------


def counts(svc: Service, lab: str, pid: str | None = None) -> dict[str, Any]:
    """Every count a member sees of `lab` (and of project `pid`), and what its lists hold."""
    view = next(v for v in svc.call("lab_list", {}) if v["id"] == lab)
    page = svc.call("projects", {"lab": lab})
    out = {"projects": view["projects"], "shown": svc.call("show", {"id": lab})["lab"]["projects"],
           "total": page["total"], "items": len(page["items"]), "unread": view["unread"],
           "tags": {t["label"]: t["count"] for t in svc.call("tags", {})}}  # fmt: skip
    if pid is not None:
        project = svc.call("project", {"id": pid})
        out["pledges"], out["pledge_list"] = project["project"]["pledges"], len(project["pledges"])
        out["labels"] = project["project"]["tags"]
    return out


def test_counts_leave_out_hidden_and_queued_projects(three: Any) -> None:
    ada, bob, eve, lab = three
    ada.store.meta_put("readbase@main", U64.pack(1))  # every activity here is unread
    ada.call("lab_admit", {"lab": lab, "member": me(bob)})
    kept = bob.call("post", {"lab": lab, "title": "Kept", "tags": ["bikes"]})
    spam = bob.call("post", {"lab": lab, "title": "Spam", "tags": ["bikes"]})
    queued = eve.call("post", {"lab": lab, "title": "Newcomer's", "tags": ["bikes"]})
    # Eve's post waits (others do not count it); so far two of Bob's, both shown.
    c = counts(ada, lab)
    assert (c["projects"], c["shown"], c["total"], c["items"], c["unread"]) == (2, 2, 2, 2, 2)
    assert c["tags"]["bikes"] == 2
    mine = counts(eve, lab)  # Eve sees her own, marked queued; `tags` counts nobody's queued
    assert (mine["projects"], mine["total"], mine["items"]) == (3, 3, 3)
    hide = ada.call("lab_hide", {"id": spam, "reason": "spam"})
    c = counts(ada, lab)
    assert (c["projects"], c["shown"], c["total"], c["items"], c["unread"]) == (1, 1, 1, 1, 1)
    assert c["tags"]["bikes"] == 1
    page = ada.call("projects", {"tag": "bikes"})
    assert (page["total"], [p["id"] for p in page["items"]]) == (1, [kept])
    full = counts(ada, lab) | {"all": ada.call("projects", {})["total"]}
    assert full["all"] == 1
    # Unhidden and approved: counted again.
    ada.call("lab_unhide", {"id": spam})
    ada.call("approve", {"id": queued})
    c = counts(ada, lab)
    assert (c["projects"], c["shown"], c["total"], c["items"], c["unread"]) == (3, 3, 3, 3, 3)
    assert c["tags"]["bikes"] == 3 and ada.call("projects", {})["total"] == 3
    assert effects(ada, lab)[hide] == "applied"
    # Read marks still work: read one, two unread left.
    ada.call("mark_read", {"id": kept})
    assert counts(ada, lab)["unread"] == 2


def test_counts_leave_out_hidden_and_queued_replies(three: Any) -> None:
    ada, bob, eve, lab = three
    ada.store.meta_put("readbase@main", U64.pack(1))
    ada.call("lab_admit", {"lab": lab, "member": me(bob)})
    pid = bob.call("post", {"lab": lab, "title": "Kiln"})
    ada.call("mark_read", {"id": pid})
    assert counts(ada, lab)["unread"] == 0
    pledge = eve.call("pledge", {"id": pid, "type": "build"})  # replies: shown
    tag = eve.call("tag", {"target": pid, "labels": ["ceramics"]})
    c = counts(ada, lab, pid)
    assert (c["pledges"], c["pledge_list"], c["labels"], c["tags"].get("ceramics"),
            c["unread"]) == (1, 1, ["ceramics"], 1, 1)  # fmt: skip
    ada.call("mark_read", {"id": pid})
    ada.call("lab_hide", {"id": pledge})
    ada.call("lab_hide", {"id": tag})
    c = counts(ada, lab, pid)
    assert (c["pledges"], c["pledge_list"], c["labels"], c["tags"].get("ceramics"),
            c["unread"]) == (0, 0, [], None, 0)  # fmt: skip
    assert ada.call("projects", {"tag": "ceramics"}) == {"items": [], "next": None, "total": 0}
    ada.call("lab_unhide", {"id": pledge})
    ada.call("lab_unhide", {"id": tag})
    c = counts(ada, lab, pid)
    assert (c["pledges"], c["pledge_list"], c["labels"], c["tags"].get("ceramics")) == (
        1, 1, ["ceramics"], 1)
    # Replies queued too: a newcomer's pledges and tags wait (those before the rule too),
    # then count once approved.
    ada.call("lab_rules", {"lab": lab, "replies": "queued"})
    ada.call("mark_read", {"id": pid})
    later = eve.call("pledge", {"id": pid, "type": "lend"})
    tag2 = eve.call("tag", {"target": pid, "labels": ["kilns"]})
    c = counts(ada, lab, pid)
    assert (c["pledges"], c["pledge_list"], c["tags"].get("ceramics"), c["tags"].get("kilns"),
            c["unread"]) == (0, 0, None, None, 0)  # fmt: skip
    for oid in (pledge, tag, later, tag2):
        ada.call("approve", {"id": oid})
    c = counts(ada, lab, pid)
    assert (c["pledges"], c["pledge_list"], c["tags"].get("ceramics"), c["tags"].get("kilns"),
            c["unread"]) == (2, 2, 1, 1, 1)  # fmt: skip


def test_counts_leave_out_a_muted_or_suspended_author(world: Any) -> None:
    ada, bob, eve = member(world, "Ada"), member(world, "Bob"), member(world, "Eve")
    lab = ada.call("lab_create", {"name": "Open lab", "posts": "shown"})
    pid = bob.call("post", {"lab": lab, "title": "Loom", "tags": ["textiles"]})
    eve.call("post", {"lab": lab, "title": "Eve's", "tags": ["textiles"]})
    eve.call("tag", {"target": pid, "labels": ["weaving"]})
    eve.call("pledge", {"id": pid, "type": "use"})
    gov = ada.governance
    assert gov.held(bytes.fromhex(lab)) == []  # an open lab that hides nothing: no scan
    c = counts(ada, lab, pid)
    assert (c["projects"], c["tags"]["textiles"], c["tags"]["weaving"], c["pledges"]) == (
        2, 2, 1, 1)
    ada.call("mute", {"member": me(eve)})  # this node only
    c = counts(ada, lab, pid)
    assert (c["projects"], c["total"], c["tags"]["textiles"], c["pledges"]) == (1, 1, 1, 0)
    assert "weaving" not in c["tags"] and c["labels"] == ["textiles"]
    ada.call("unmute", {"member": me(eve)})
    ada.call("suspend", {"lab": lab, "member": me(eve)})
    c = counts(ada, lab, pid)
    assert (c["projects"], c["tags"]["textiles"], c["pledges"]) == (1, 1, 0)
    assert "weaving" not in c["tags"]
    ada.call("unsuspend", {"lab": lab, "member": me(eve)})
    c = counts(ada, lab, pid)
    assert (c["projects"], c["tags"]["textiles"], c["tags"]["weaving"], c["pledges"]) == (
        2, 2, 1, 1)
