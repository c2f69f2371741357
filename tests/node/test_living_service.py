"""Living projects through the node (issue 23), in process: several members' Services over one
store: edit and its refusals, the visible project, history, pledges, fork and lineage, search
by the current text, retraction of a revision, and the registry's cache."""

from __future__ import annotations

from typing import Any

import pytest

from node.service import living
from node.service.api import Service, ServiceError
from protocols import kinds
from protocols.objects import SignedObject
from tests.node.services import member


def project(svc: Service, pid: str) -> dict[str, Any]:
    return dict(svc.call("project", {"id": pid})["project"])


def me(svc: Service) -> str:
    return str(svc.call("whoami", {})["member"])


@pytest.fixture
def trio_(world: Any) -> tuple[Service, Service, Service, str, str]:
    ada, bob, eve = member(world, "Ada"), member(world, "Bob"), member(world, "Eve")
    lab = ada.call("lab_create", {"name": "Fablab"})
    pid = ada.call("post", {"lab": lab, "title": "Solar oven", "summary": "a box",
                            "body": "line one\nline two", "needs": ["glass"],
                            "licence": "CC-BY-SA-4.0"})  # fmt: skip
    return ada, bob, eve, lab, pid


def test_edit_shows_the_current_project_and_its_history(trio_: Any) -> None:
    ada, bob, _, _, pid = trio_
    p = project(bob, pid)
    assert (p["licence"], p["licence_known"], p["revisions"], p["revised_ts"]) == (
        "CC-BY-SA-4.0", True, 0, None)
    rid = ada.call("edit", {"id": pid, "title": "Solar cooker", "stage": "prototype",
                            "note": "built one"})  # fmt: skip
    p = project(bob, pid)
    assert (p["title"], p["stage"], p["summary"], p["revisions"]) == (
        "Solar cooker", "prototype", "a box", 1)
    assert p["revised_ts"] is not None and p["updated"] >= p["revised_ts"]
    h = bob.call("history", {"id": pid})
    assert h["project"] == pid and h["heads"] == [rid] and h["total"] == 1
    (e,) = h["entries"]
    assert e["effect"] == "applied" and e["author_name"] == "Ada" and e["note"] == "built one"
    assert e["changes"] == {"title": {"old": "Solar oven", "new": "Solar cooker"},
                            "stage": {"old": "idea", "new": "prototype"}}  # fmt: skip
    assert e["supersedes"] == [pid]
    with pytest.raises(ServiceError) as err:
        ada.call("edit", {"id": pid, "title": "Solar cooker"})
    assert err.value.code == "no_change"


def test_authority_stranger_coauthor_and_removal(trio_: Any) -> None:
    ada, bob, eve, _, pid = trio_
    with pytest.raises(ServiceError) as err:
        bob.call("edit", {"id": pid, "title": "Mine now"})
    assert err.value.code == "not_author"
    # A stranger's revision signed anyway (validity is context-free): stored, no effect.
    forged = eve.create("revision", {"lab": project(eve, pid)["lab"] and bytes.fromhex(
        project(eve, pid)["lab"]), "target": bytes.fromhex(pid),
        "supersedes": [bytes.fromhex(pid)], "set": {"title": "Eve's oven"}})  # fmt: skip
    assert project(ada, pid)["title"] == "Solar oven"
    entries = ada.call("history", {"id": pid})["entries"]
    assert [(e["id"], e["effect"]) for e in entries] == [(forged.id_hex, "not_author")]
    # A co-author added later can revise; by name or by id.
    ada.call("edit", {"id": pid, "coauthors": ["Bob"]})
    p = project(eve, pid)
    assert [c["name"] for c in p["coauthors"]] == ["Bob"]
    bob.call("edit", {"id": pid, "body": "line one\nline 2"})
    assert project(eve, pid)["body"] == "line one\nline 2"
    # Removed: Bob may no longer revise.
    ada.call("edit", {"id": pid, "coauthors": []})
    with pytest.raises(ServiceError) as err:
        bob.call("edit", {"id": pid, "stage": "done"})
    assert err.value.code == "not_author"
    # Signed anyway, on top of the removal: stored and relayed, no visible effect.
    late = _revise(bob, pid, {"stage": "done"})
    assert project(eve, pid)["stage"] == "idea"
    effects = {e["id"]: e["effect"] for e in eve.call("history", {"id": pid})["entries"]}
    assert effects[late] == "not_author"


def test_retracting_a_revision_removes_its_effect(trio_: Any) -> None:
    ada, bob, _, _, pid = trio_
    first = ada.call("edit", {"id": pid, "summary": "a better box"})
    second = ada.call("edit", {"id": pid, "stage": "design"})
    assert project(bob, pid)["summary"] == "a better box"
    ada.call("retract", {"id": first})
    p = project(bob, pid)
    assert (p["summary"], p["stage"], p["revisions"]) == ("a box", "design", 1)
    h = bob.call("history", {"id": pid})
    assert [e["id"] for e in h["entries"]] == [second] and h["heads"] == [second]


def test_pledges_on_needs_and_around_members_and_labs(trio_: Any) -> None:
    ada, bob, eve, lab, pid = trio_
    p1 = bob.call("pledge", {"id": pid, "type": "build", "need": "glass", "note": "I have some"})
    p2 = eve.call("pledge", {"id": pid, "type": "use"})
    with pytest.raises(ServiceError) as err:
        eve.call("pledge", {"id": pid, "type": "give", "need": "steel"})
    assert err.value.code == "unknown_need" and "glass" in err.value.message
    shown = ada.call("project", {"id": pid})
    assert shown["project"]["pledges"] == 2
    assert [x["id"] for x in shown["pledges"]] == [p1, p2]
    (need,) = shown["needs"]
    assert need["need"] == "glass" and [x["id"] for x in need["pledges"]] == [p1]
    assert need["pledges"][0]["type_label"] == "I can build it"
    assert [x["id"] for x in ada.call("pledges", {"id": pid})] == [p2, p1]
    made = bob.call("pledges", {"member": me(bob)})
    assert [(x["id"], x["made"], x["received"]) for x in made] == [(p1, True, False)]
    received = ada.call("pledges", {"member": "Ada"})
    assert {(x["id"], x["made"], x["received"]) for x in received} == {
        (p1, False, True), (p2, False, True)}
    assert {x["id"] for x in ada.call("pledges", {"lab": lab})} == {p1, p2}
    eve.call("retract", {"id": p2})  # withdrawn
    assert project(ada, pid)["pledges"] == 1
    with pytest.raises(ServiceError):
        ada.call("pledges", {"id": pid, "lab": lab})


def test_fork_and_lineage_across_labs(trio_: Any) -> None:
    ada, bob, _, _, pid = trio_
    other = bob.call("lab_create", {"name": "Makerspace"})
    ada.call("edit", {"id": pid, "title": "Solar cooker"})
    fork = bob.call("fork", {"id": pid, "lab": other, "note": "our climate"})
    f = project(ada, fork)
    assert (f["title"], f["licence"], f["lab_name"]) == ("Solar cooker", "CC-BY-SA-4.0",
                                                         "Makerspace")
    (d,) = f["derives"]
    assert (d["project"], d["how"], d["note"], d["title"], d["lab_name"]) == (
        pid, "fork", "our climate", "Solar cooker", "Fablab")
    lin = ada.call("lineage", {"id": pid})
    assert lin["ancestors"] == []
    (child,) = lin["descendants"]
    assert (child["project"], child["title"], child["depth"]) == (fork, "Solar cooker", 1)
    grand = ada.call("fork", {"id": fork, "lab": "Fablab", "how": "built"})
    lin = ada.call("show", {"id": pid})["lineage"]
    assert [(x["project"], x["depth"], x["via"]) for x in lin["descendants"]] == [
        (fork, 1, None), (grand, 2, fork)]
    assert [x["project"] for x in ada.call("lineage", {"id": grand})["ancestors"]] == [fork, pid]
    # A revision that drops the origin from derives: no longer a descendant.
    bob.call("edit", {"id": fork, "title": "Our oven"})  # derives unchanged
    assert next(x["project"] for x in ada.call("lineage", {"id": pid})["descendants"]) == fork
    rid = _revise(bob, fork, {"derives": []})
    assert rid and [x["project"] for x in ada.call("lineage", {"id": pid})["descendants"]] == []


def _revise(svc: Service, pid: str, changes: dict[str, Any]) -> str:
    """A revision through the node (edit has no derives parameter): the current heads."""
    h = svc.call("history", {"id": pid})
    p = svc.call("project", {"id": pid})["project"]
    obj = svc.create("revision", {"lab": bytes.fromhex(p["lab"]), "target": bytes.fromhex(pid),
                                  "supersedes": [bytes.fromhex(x) for x in h["heads"]],
                                  "set": changes})  # fmt: skip
    return obj.id_hex


def test_search_finds_the_current_text_only(trio_: Any) -> None:
    ada, bob, _, _, pid = trio_

    def titles(q: str) -> list[str]:
        return [v["title"] for v in bob.call("search", {"query": q})]

    assert titles("solar oven") == ["Solar oven"]
    ada.call("edit", {"id": pid, "title": "Sun cooker", "summary": "parabolic dish"})
    assert titles("oven") == [] and titles("box") == []
    assert titles("sun cooker") == ["Sun cooker"]
    assert titles("parab") == ["Sun cooker"]
    assert titles("sun parabolic") == ["Sun cooker"]
    other = ada.call("post", {"lab": "Fablab", "title": "Sun dial"})
    assert sorted(titles("sun")) == ["Sun cooker", "Sun dial"] and other


def test_registry_cache_incremental_and_invalidated(world: Any) -> None:
    ada = member(world, "Ada")
    _, store, _ = world
    lab = ada.call("lab_create", {"name": "Lab"})
    pid = ada.call("post", {"lab": lab, "title": "T0"})
    reg = living.of_store(store)
    assert reg is ada.living
    for i in range(1, 6):
        ada.call("edit", {"id": pid, "title": f"T{i}"})
        assert project(ada, pid)["title"] == f"T{i}"
    builds = reg.builds
    ada.call("edit", {"id": pid, "title": "T6"})
    assert project(ada, pid)["title"] == "T6" and reg.builds == builds  # fed, not rebuilt
    ada.call("profile_set", {"name": "Ada L."})  # not an identity kind: still cached
    assert project(ada, pid)["revisions"] == 6 and reg.builds == builds
    ada.members.generation += 1  # what any identity object does
    assert project(ada, pid)["title"] == "T6" and reg.builds == builds + 1


def test_waiting_revision_and_forged_link(world: Any) -> None:
    """A revision superseding one not here waits (no effect); once that one arrives both
    apply. A link to an object that is no revision of the project is forged."""
    ada, _ = member(world, "Ada"), None
    lab = ada.call("lab_create", {"name": "Lab"})
    pid = ada.call("post", {"lab": lab, "title": "T0"})
    project(ada, pid)  # cached: the registry is fed from here on
    lab_b, pid_b = bytes.fromhex(lab), bytes.fromhex(pid)
    first = _signed(ada, pid_b, lab_b, [pid_b], {"title": "T1"})
    second = _signed(ada, pid_b, lab_b, [first.id], {"stage": "design"})
    _, _, ingest = world
    ingest.ingest([second.raw])
    h = ada.call("history", {"id": pid})
    assert [e["effect"] for e in h["entries"]] == ["waiting"]
    assert project(ada, pid)["title"] == "T0"
    ingest.ingest([first.raw])
    p = project(ada, pid)
    assert (p["title"], p["stage"], p["revisions"]) == ("T1", "design", 2)
    forged = _signed(ada, pid_b, lab_b, [bytes.fromhex(lab)], {"title": "Forged"})
    ingest.ingest([forged.raw])
    assert project(ada, pid)["title"] == "T1"
    effects = {e["id"]: e["effect"] for e in ada.call("history", {"id": pid})["entries"]}
    assert effects[forged.id_hex] == "forged_link"


def _signed(svc: Service, pid: bytes, lab: bytes, sup: list[bytes],
            changes: dict[str, Any]) -> SignedObject:  # fmt: skip
    """A revision signed by the member's device but not stored (delivered by the test)."""
    from node.ingest.pipeline import now_ms
    from node.service.identity_ops import DEVICE, DEVICE_CERT
    from protocols.identity import with_cert

    ring = svc._require_ring()
    body = with_cert({"lab": lab, "target": pid, "supersedes": sup, "set": changes},
                     ring.extra[DEVICE_CERT])  # fmt: skip
    return kinds.create(ring.private_key(DEVICE), "revision", body, now_ms())
