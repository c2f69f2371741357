"""Store and queries: retraction everywhere, paging with cursors, search, index consistency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from node.ingest.pipeline import Ingest
from node.service.api import Service, ServiceError
from node.store import store as store_mod
from node.store.store import Store
from protocols.objects import SignedObject

from .helpers import NOW, check_consistency, member


@pytest.fixture
def svc(tmp_path: Path, store: Store, ingest: Ingest) -> Service:
    return Service(tmp_path / "data", store, ingest)


def put(ingest: Ingest, *objs: SignedObject) -> Any:
    result = ingest.ingest([o.raw for o in objs], now=NOW)
    assert result.rejected == []
    return result


def listed(svc: Service, **params: Any) -> list[str]:
    return [p["id"] for p in svc.call("projects", params | {"limit": 200})["items"]]


def visible_everywhere(svc: Service, p: SignedObject, lab: SignedObject, word: str) -> dict:
    """Where project `p` shows up (each entry True/False)."""
    pid = p.id.hex()
    try:
        svc.call("show", {"id": pid})
        shown = True
    except ServiceError as exc:
        assert exc.code == "not_found"
        shown = False
    return {
        "all": pid in listed(svc),
        "lab": pid in listed(svc, lab=lab.id.hex()),
        "active": pid in listed(svc, lab=lab.id.hex(), order="active"),
        "author": pid in listed(svc, author=p.author.hex()),
        "search": pid in [h["id"] for h in svc.call("search", {"query": word})],
        "show": shown,
    }


ALL_TRUE = dict.fromkeys(("all", "lab", "active", "author", "search", "show"), True)
ALL_FALSE = dict.fromkeys(ALL_TRUE, False)


def counts(svc: Service) -> dict[str, int]:
    status = svc.call("status", {})
    return status["counts"] | {"*": status["objects"]}


# ---- retraction ----------------------------------------------------------------------------


def test_retracted_project_disappears_everywhere(svc: Service, ingest: Ingest,
                                                 store: Store) -> None:  # fmt: skip
    ada = member("ada")
    lab = ada.lab()
    p = ada.project(lab, "Solar oven", "cooks with sunlight")
    other = ada.project(lab, "Wind turbine")
    put(ingest, lab, p, other)
    assert visible_everywhere(svc, p, lab, "sunlight") == ALL_TRUE
    before = counts(svc)
    assert svc.call("lab_list", {})[0]["projects"] == 2
    r = ada.retract(p)
    put(ingest, r)
    assert visible_everywhere(svc, p, lab, "sunlight") == ALL_FALSE
    assert listed(svc) == [other.id.hex()]
    after = counts(svc)
    assert after["project"] == before["project"] - 1 and after["retraction"] == 1
    assert after["*"] == before["*"]  # one project fewer, one retraction more
    assert svc.call("lab_list", {})[0]["projects"] == 1
    assert svc.call("projects", {"lab": lab.id.hex()})["total"] == 1
    # Re-delivery of the withdrawn object is a no-op (known), and it stays hidden.
    again = ingest.ingest([p.raw], now=NOW)
    assert again.known == 1 and again.stored == [] and again.rejected == []
    assert visible_everywhere(svc, p, lab, "sunlight") == ALL_FALSE
    with store.read() as txn:
        assert store.has(p.id, txn) and store.is_retracted(txn, p.id)
        assert store.get(txn, p.id) is None
        assert all(raw != p.raw for _, raw in store.iter_objects(txn))
    assert p.raw not in svc.call("export", {})["objects"]


def test_retracted_comment_leaves_the_thread(svc: Service, ingest: Ingest) -> None:
    ada, bob = member("ada"), member("bob")
    lab = ada.lab()
    p = ada.project(lab, "Solar oven")
    c1 = bob.comment(p, "first")
    c2 = ada.comment(p, "reply", parent=c1)
    c3 = bob.comment(p, "second")
    put(ingest, lab, p, c1, c2, c3)
    shown = svc.call("show", {"id": p.id.hex()})
    assert [c["id"] for c in shown["comments"]] == [c1.id.hex(), c3.id.hex()]
    assert [c["id"] for c in shown["comments"][0]["replies"]] == [c2.id.hex()]
    assert shown["project"]["comments"] == 3
    put(ingest, bob.retract(c3))
    shown = svc.call("show", {"id": p.id.hex()})
    assert [c["id"] for c in shown["comments"]] == [c1.id.hex()]
    assert shown["project"]["comments"] == 2
    assert counts(svc)["comment"] == 2
    with pytest.raises(ServiceError) as exc:
        svc.call("show", {"id": c3.id.hex()})
    assert exc.value.code == "not_found"


def test_retracted_tag_leaves_tag_counts_and_label_listing(svc: Service, ingest: Ingest) -> None:
    ada, bob = member("ada"), member("bob")
    lab = ada.lab()
    p = ada.project(lab, "Oven")
    q = ada.project(lab, "Dryer")
    t1 = bob.tag(p, "solar", "food")
    t2 = ada.tag(q, "solar")
    put(ingest, lab, p, q, t1, t2)
    tags = {t["label"]: t["count"] for t in svc.call("tags", {})}
    assert tags == {"solar": 2, "food": 1}
    assert set(listed(svc, tag="food")) == {p.id.hex()}
    assert svc.call("show", {"id": p.id.hex()})["project"]["tags"] == ["solar", "food"]
    assert [h["id"] for h in svc.call("search", {"query": "food"})] == [p.id.hex()]
    put(ingest, bob.retract(t1))
    tags = {t["label"]: t["count"] for t in svc.call("tags", {})}
    assert tags == {"solar": 1}
    assert listed(svc, tag="food") == []
    assert listed(svc, tag="solar") == [q.id.hex()]
    shown = svc.call("show", {"id": p.id.hex()})
    assert shown["tags"] == [] and shown["project"]["tags"] == []
    assert svc.call("search", {"query": "food"}) == []
    assert counts(svc)["tag"] == 1


@pytest.mark.parametrize("same_batch", [False, True])
def test_retraction_before_its_target_hides_the_target(
    svc: Service, ingest: Ingest, store: Store, same_batch: bool
) -> None:
    ada = member("ada")
    lab = ada.lab()
    p = ada.project(lab, "Solar oven", "sunlight")
    keep = ada.project(lab, "Kept")
    r = ada.retract(p)
    if same_batch:
        result = put(ingest, lab, r, p, keep)
    else:
        put(ingest, lab, r)
        result = put(ingest, p, keep)
    assert p.id in {s.obj.id for s in result.stored}  # stored (its id is known) ...
    assert visible_everywhere(svc, p, lab, "sunlight") == ALL_FALSE  # ... but withdrawn
    assert listed(svc) == [keep.id.hex()]
    assert counts(svc)["project"] == 1
    again = ingest.ingest([p.raw, r.raw], now=NOW)
    assert again.known == 2 and again.stored == []
    with store.read() as txn:
        assert store.is_retracted(txn, p.id)
    assert check_consistency(store) == []


@pytest.mark.parametrize("order", ["after", "before"])
def test_retraction_by_another_author_hides_nothing(
    svc: Service, ingest: Ingest, store: Store, order: str
) -> None:
    ada, eve = member("ada"), member("eve")
    lab = ada.lab()
    p = ada.project(lab, "Solar oven", "sunlight")
    c = ada.comment(p, "mine")
    t = ada.tag(p, "solar")
    forged = [eve.retract(x) for x in (p, c, t, lab)]
    if order == "after":
        put(ingest, lab, p, c, t)
        put(ingest, *forged)
    else:
        put(ingest, *forged)
        put(ingest, lab, p, c, t)
    assert visible_everywhere(svc, p, lab, "sunlight") == ALL_TRUE
    shown = svc.call("show", {"id": p.id.hex()})
    assert [x["id"] for x in shown["comments"]] == [c.id.hex()]
    assert shown["project"]["tags"] == ["solar"]
    assert [lb["id"] for lb in svc.call("lab_list", {})] == [lab.id.hex()]
    assert {x["label"]: x["count"] for x in svc.call("tags", {})} == {"solar": 1}
    with store.read() as txn:
        assert not any(store.is_retracted(txn, x.id) for x in (lab, p, c, t))
        assert all(store.has(x.id, txn) for x in forged)  # remembered, not fetched again
    again = ingest.ingest([x.raw for x in forged], now=NOW)
    assert again.known == len(forged)
    assert check_consistency(store) == []


def test_a_retraction_cannot_be_retracted(svc: Service, ingest: Ingest, store: Store) -> None:
    ada = member("ada")
    lab = ada.lab()
    p = ada.project(lab, "Oven")
    r = ada.retract(p)
    put(ingest, lab, p)
    put(ingest, r)
    put(ingest, ada.retract(r))
    assert listed(svc) == []
    with store.read() as txn:
        assert not store.is_retracted(txn, r.id)
        assert store.get(txn, r.id) is not None
    assert check_consistency(store) == []


def test_object_and_its_retraction_in_one_batch(svc: Service, ingest: Ingest,
                                                store: Store) -> None:  # fmt: skip
    ada = member("ada")
    lab = ada.lab()
    p = ada.project(lab, "Oven")
    result = ingest.ingest([lab.raw, p.raw, ada.retract(p).raw], now=NOW)
    assert len(result.stored) == 3 and result.rejected == []
    assert listed(svc) == []
    assert check_consistency(store) == []


# ---- paging --------------------------------------------------------------------------------


def _pages(svc: Service, limit: int, **params: Any) -> list[str]:
    out: list[str] = []
    cursor = None
    for _ in range(1000):
        page = svc.call("projects", params | {"limit": limit, "cursor": cursor})
        assert len(page["items"]) <= limit
        out += [p["id"] for p in page["items"]]
        cursor = page["next"]
        if cursor is None:
            return out
    raise AssertionError("paging did not end")


@pytest.fixture
def many(ingest: Ingest) -> dict[str, Any]:
    ada, bob = member("ada"), member("bob")
    labs = [ada.lab("A"), bob.lab("B")]
    projects = []
    objs: list[SignedObject] = list(labs)
    for i in range(61):
        who = (ada, bob)[i % 2]
        p = who.project(labs[i % 3 % 2], f"Project {i}", f"summary {i}")
        projects.append(p)
        objs.append(p)
        if i % 4 == 0:
            objs.append(bob.comment(p, f"comment {i}"))
        if i % 5 == 0:
            objs.append(ada.tag(p, "paged"))
    ingest.ingest([o.raw for o in objs], now=NOW)
    return {"labs": labs, "projects": projects, "ada": ada, "bob": bob}


@pytest.mark.parametrize("limit", [1, 7, 10, 61, 200])
def test_paging_returns_every_project_exactly_once(svc: Service, many, limit: int) -> None:
    projects = many["projects"]
    newest_first = [p.id.hex() for p in sorted(projects, key=lambda p: -p.ts)]
    assert _pages(svc, limit) == newest_first
    for lab in many["labs"]:
        in_lab = [p.id.hex() for p in sorted(projects, key=lambda p: -p.ts)
                  if p.body["lab"] == lab.id]  # fmt: skip
        assert _pages(svc, limit, lab=lab.id.hex()) == in_lab
        active = _pages(svc, limit, lab=lab.id.hex(), order="active")
        assert sorted(active) == sorted(in_lab)
    ada = many["ada"]
    mine = [p.id.hex() for p in sorted(projects, key=lambda p: -p.ts) if p.author == ada.key
            .public_key().public_bytes_raw()]  # fmt: skip
    assert _pages(svc, limit, author=ada.key.public_key().public_bytes_raw().hex()) == mine
    tagged = _pages(svc, limit, tag="paged")
    assert sorted(tagged) == sorted(p.id.hex() for i, p in enumerate(projects) if i % 5 == 0)


def test_active_order_puts_recently_discussed_projects_first(svc: Service, ingest: Ingest,
                                                             many) -> None:  # fmt: skip
    lab = many["labs"][0]
    in_lab = [p for p in many["projects"] if p.body["lab"] == lab.id]
    oldest = min(in_lab, key=lambda p: p.ts)
    put(ingest, many["bob"].comment(oldest, "bump"))
    active = _pages(svc, 5, lab=lab.id.hex(), order="active")
    assert active[0] == oldest.id.hex() and len(active) == len(set(active)) == len(in_lab)


def test_paging_by_tag_lists_a_twice_tagged_project_once(svc: Service, ingest: Ingest) -> None:
    ada, bob = member("ada"), member("bob")
    lab = ada.lab()
    p = ada.project(lab, "Oven")
    q = ada.project(lab, "Dryer")
    put(ingest, lab, p, q, ada.tag(p, "solar"), ada.tag(q, "solar"), bob.tag(p, "solar"))
    assert sorted(_pages(svc, 1, tag="solar")) == sorted([p.id.hex(), q.id.hex()])


def test_bad_cursor_is_a_bad_request(svc: Service, many) -> None:
    with pytest.raises(ServiceError) as exc:
        svc.call("projects", {"cursor": "not hex"})
    assert exc.value.code == "bad_request"


# ---- search --------------------------------------------------------------------------------


def test_search_by_title_summary_tag_and_prefix(svc: Service, ingest: Ingest) -> None:
    ada = member("ada")
    lab = ada.lab()
    oven = ada.project(lab, "Solar Oven", "Cooks food with sunlight")
    dryer = ada.project(lab, "Fruit dryer", "Dries apples using solar heat")
    bike = ada.project(lab, "Bike generator", "pedal power")
    put(ingest, lab, oven, dryer, bike, ada.tag(bike, "energy"), ada.tag(oven, "kitchen"))

    def hits(q: str) -> set[str]:
        return {h["id"] for h in svc.call("search", {"query": q})}

    o, d, b = oven.id.hex(), dryer.id.hex(), bike.id.hex()
    assert hits("oven") == {o}  # title word, case-insensitive
    assert hits("SUNLIGHT") == {o}  # summary word
    assert hits("apples") == {d}
    assert hits("solar") == {o, d}  # title of one, summary of the other
    assert hits("energy") == {b}  # tag label
    assert hits("kitchen") == {o}
    assert hits("sol") == {o, d}  # the last word is a prefix
    assert hits("gen") == {b}
    assert hits("solar dr") == {d}  # every word must match
    assert hits("sol oven") == set()  # only the last word is a prefix
    assert hits("nothing-like-this") == set()
    assert hits("") == set()
    assert [h["id"] for h in svc.call("search", {"query": "solar"})] == [d, o]  # newest first


def test_search_prefix_returns_the_newest_matches_across_words(
    svc: Service, ingest: Ingest
) -> None:
    ada = member("ada")
    lab = ada.lab()
    projects = [ada.project(lab, f"Solar idea {i}") for i in range(30)]
    projects += [ada.project(lab, f"Solstice party {i}") for i in range(30)]
    put(ingest, lab, *projects)
    newest_first = [p.id.hex() for p in reversed(projects)]

    def ids(q: str, limit: int) -> list[str]:
        return [h["id"] for h in svc.call("search", {"query": q, "limit": limit})]

    assert ids("sol", 50) == newest_first[:50]  # two words under the prefix, merged
    assert ids("solar", 10) == [p.id.hex() for p in reversed(projects[:30])][:10]
    assert ids("s", 50) == []  # one letter: wait for the second


def test_search_forgets_a_retracted_project(svc: Service, ingest: Ingest) -> None:
    ada = member("ada")
    lab = ada.lab()
    p = ada.project(lab, "Solar oven")
    put(ingest, lab, p, ada.tag(p, "kitchen"))
    put(ingest, ada.retract(p))
    assert svc.call("search", {"query": "solar"}) == []
    assert svc.call("search", {"query": "kitchen"}) == []


def test_withdrawing_a_tag_keeps_other_sources_of_the_same_word(
    svc: Service, ingest: Ingest, store: Store
) -> None:
    ada, bob = member("ada"), member("bob")
    lab = ada.lab()
    p = ada.project(lab, "Solar oven")
    t_solar = ada.tag(p, "solar")  # same word as the title
    t_ada = ada.tag(p, "kitchen")
    t_bob = bob.tag(p, "kitchen")  # same label from another member
    put(ingest, lab, p, t_solar, t_ada, t_bob)
    put(ingest, ada.retract(t_solar), ada.retract(t_ada))
    assert [h["id"] for h in svc.call("search", {"query": "solar"})] == [p.id.hex()]
    assert [h["id"] for h in svc.call("search", {"query": "kitchen"})] == [p.id.hex()]
    assert check_consistency(store) == []


def test_search_by_label_when_the_tag_arrived_first(svc: Service, ingest: Ingest) -> None:
    ada = member("ada")
    lab = ada.lab()
    p = ada.project(lab, "Oven")
    put(ingest, lab, ada.tag(p, "kitchen"))
    put(ingest, p)
    assert listed(svc, tag="kitchen") == [p.id.hex()]  # the label listing works ...
    assert [h["id"] for h in svc.call("search", {"query": "kitchen"})] == [p.id.hex()]


def test_a_store_from_before_orphan_tags_finds_its_early_tags(tmp_path: Path) -> None:
    """A store made before the orphan_tags index gets it filled once, when opened: a tag
    that came before its project still makes that project a search result."""
    ada = member("ada")
    lab = ada.lab()
    p, q = ada.project(lab, "Oven"), ada.project(lab, "Kiln")
    early = ada.tag(p, "kitchen")
    store = Store(tmp_path / "old")
    ingest = Ingest(store, check_workers=0)
    put(ingest, lab, q, early, ada.tag(q, "kitchen"))
    with store.env.begin(write=True) as txn:  # as an older version left it
        assert txn.stat(store.db["orphan_tags"])["entries"] == 1
        txn.drop(store.db["orphan_tags"], delete=False)
        txn.delete(b"orphan_tags:v1", db=store.db["meta"])
    ingest.close()
    store.close()
    store = Store(tmp_path / "old")
    ingest = Ingest(store, check_workers=0)
    with store.read() as txn:
        assert txn.stat(store.db["orphan_tags"])["entries"] == 1  # the early tag only
    assert check_consistency(store) == []
    put(ingest, p)
    svc = Service(tmp_path / "data", store, ingest)
    assert [h["id"] for h in svc.call("search", {"query": "kitchen"})] == [p.id.hex(), q.id.hex()]
    with store.read() as txn:
        assert txn.stat(store.db["orphan_tags"])["entries"] == 0  # adopted
    assert check_consistency(store) == []
    ingest.close()
    store.close()


# ---- consistency of mixed histories ---------------------------------------------------------


def test_withdrawn_discussed_project_leaves_no_active_entry(ingest: Ingest, store: Store) -> None:
    ada, bob = member("ada"), member("bob")
    lab = ada.lab()
    p = ada.project(lab, "Oven")
    put(ingest, lab, p, bob.comment(p, "bump"))
    put(ingest, ada.retract(p))
    assert check_consistency(store) == []


def test_mixed_history_stays_consistent(ingest: Ingest, store: Store, svc: Service) -> None:
    ada, bob, eve = member("ada"), member("bob"), member("eve")
    lab = ada.lab()
    projects = [ada.project(lab, f"Thing {i}", f"about {i}") for i in range(8)]
    comments = [bob.comment(p, f"c{i}") for i, p in enumerate(projects)]
    replies = [ada.comment(p, "re", parent=c) for p, c in zip(projects, comments, strict=True)]
    tags = [bob.tag(p, f"label-{i}") for i, p in enumerate(projects)]
    quiet = [ada.project(lab, "Quiet one"), ada.project(lab, "Quiet two")]  # no thread
    normal = [lab, ada.profile("Ada"), bob.profile("Bob"), *projects, *comments, *replies, *tags,
              *quiet]  # fmt: skip
    first, second = normal[::2], normal[1::2]
    retractions = [
        bob.retract(comments[0]), bob.retract(tags[1]), eve.retract(projects[2]),
        ada.retract(quiet[0]), ada.retract(quiet[1]), ada.retract(tags[5]),  # not hers
        ada.retract(replies[6]), eve.retract(comments[7]),
    ]  # fmt: skip
    # A retraction travels in the batch before its target (arrives first) or after it.
    ids_first = {o.id for o in first}
    first += [r for r in retractions if r.body["target"] not in ids_first]
    second += [r for r in retractions if r.body["target"] in ids_first]
    put(ingest, *first)
    assert check_consistency(store) == []
    put(ingest, *second)
    assert check_consistency(store) == []
    assert set(listed(svc)) == {p.id.hex() for p in projects}
    labels = {t["label"] for t in svc.call("tags", {})}
    assert labels == {f"label-{i}" for i in (0, 2, 3, 4, 5, 6, 7)}
    assert svc.call("status", {})["counts"]["project"] == len(projects)
    shown = svc.call("show", {"id": projects[6].id.hex()})
    assert [c["id"] for c in shown["comments"]] == [comments[6].id.hex()]
    assert shown["comments"][0]["replies"] == []
    shown = svc.call("show", {"id": projects[0].id.hex()})
    # The withdrawn comment is gone; the reply to it is still there (at the top level).
    assert [c["id"] for c in shown["comments"]] == [replies[0].id.hex()]
    assert svc.call("whoami", {}) is None


# ---- ids in two tiers ---------------------------------------------------------------------


def test_ids_merged_from_the_recent_tree_still_find_every_object(
    svc: Service, ingest: Ingest, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New ids go to ids_new and move to ids in sorted runs: lookups, known ids, retractions,
    tags of older projects and id prefixes work on either side of a merge."""
    monkeypatch.setattr(store_mod, "IDS_MERGE_AT", 30)
    monkeypatch.setattr(store_mod, "IDS_MERGE_CHUNK", 7)  # several runs a merge
    ada, bob = member("ada"), member("bob")
    lab = ada.lab()
    early = [ada.project(lab, f"Early {i}", "solar") for i in range(40)]
    put(ingest, lab, *early)  # > IDS_MERGE_AT: merged into ids
    with store.read() as txn:
        assert txn.stat(store.db["ids_new"])["entries"] == 0
        assert txn.stat(store.db["ids"])["entries"] == 41
    late = [bob.comment(p, "nice") for p in early[:10]] + [bob.tag(early[0], "oven")]
    put(ingest, *late, ada.retract(early[1]))  # targets in ids, new ids in ids_new
    with store.read() as txn:
        assert 0 < txn.stat(store.db["ids_new"])["entries"] < 30
        assert all(store.has(o.id, txn) for o in [lab, *early, *late])
        assert store.is_retracted(txn, early[1].id)
    assert check_consistency(store) == []
    again = ingest.ingest([o.raw for o in [lab, *early, *late]], now=NOW)
    assert again.known == 52 and again.stored == []
    shown = svc.call("show", {"id": early[0].id.hex()[:12]})  # a prefix found in ids
    assert shown["project"]["id"] == early[0].id.hex() and len(shown["comments"]) == 1
    assert [t["labels"] for t in shown["tags"]] == [["oven"]]
    comment = svc.call("show", {"id": late[0].id.hex()[:12]})  # a prefix found in ids_new
    assert comment["kind"] == "comment" and comment["comment"]["id"] == late[0].id.hex()
    assert early[1].id.hex() not in listed(svc)
    more = [ada.project(lab, f"Late {i}", "wind") for i in range(30)]
    put(ingest, *more)  # the second merge: into an ids that already holds the first
    with store.read() as txn:
        assert txn.stat(store.db["ids_new"])["entries"] == 0
        assert txn.stat(store.db["ids"])["entries"] == 41 + len(late) + 1 + 30
    assert check_consistency(store) == []
