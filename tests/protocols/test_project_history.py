"""protocols/project_history.py: the replay of a project's revisions (docs/protocol.md §3.3).

Unit tests of each rule, then a property test: any set of revisions delivered in any order,
with duplicates and some retracted, gives the same state() and history() as a naive reference
replay of the same set, written here from the rules alone."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import kinds, objects
from protocols import project_dag as dag
from protocols.living import project_fields
from protocols.project_history import (
    APPLIED,
    FORGED_LINK,
    NOT_AUTHOR,
    REMOVED_CONCURRENTLY,
    WAITING,
    WRONG_LAB,
    HistoryEntry,
    ProjectHistory,
    ProjectState,
    RevisionRecord,
)


def oid(name: str) -> bytes:
    return hashlib.sha256(b"test/project-history/" + name.encode()).digest()


P, LAB, OTHER_LAB = oid("project"), oid("lab"), oid("other-lab")
ALICE, BOB, CAROL, DAVE, STRANGER = (oid(n) for n in ("alice", "bob", "carol", "dave", "x"))
BASE = {"title": "Solar dryer", "summary": "", "body": "", "stage": "idea", "needs": []}


def rev(name: str, ts: int, member: bytes | None, sup: tuple[bytes, ...] = (P,),
        lab: bytes | None = LAB, note: str = "", **changes: Any) -> RevisionRecord:  # fmt: skip
    return RevisionRecord(oid(name), ts, member, lab, P, sup, changes, note)


def history(*recs: RevisionRecord, base: Mapping[str, Any] = BASE,
            creator: bytes | None = ALICE) -> ProjectHistory:  # fmt: skip
    h = ProjectHistory(P, creator, LAB, base)
    for r in recs:
        h.add(r)
    return h


def effects(h: ProjectHistory) -> dict[bytes, str]:
    return {e.id: e.effect for e in h.history()}


# ---- rule 3: authority and per-field last-writer-wins -----------------------------------


def test_no_revisions_is_the_project() -> None:
    s = history().state()
    assert s.fields == project_fields(BASE) and s.fields["licence"] == ""
    assert s.heads == (P,) and s.applied == 0 and s.revised_ts is None
    assert s.creator == ALICE and s.authors == {ALICE}


def test_the_creator_revises_on_top() -> None:
    r1 = rev("r1", 10, ALICE, stage="design", title="Solar dryer v2")
    r2 = rev("r2", 20, ALICE, (r1.id,), body="Plans", stage="prototype")
    h = history(r1, r2)
    s = h.state()
    assert s.fields["stage"] == "prototype" and s.fields["title"] == "Solar dryer v2"
    assert s.fields["body"] == "Plans" and s.heads == (r2.id,) and s.applied == 2
    assert s.revised_ts == 20
    entries = h.history()
    assert [e.id for e in entries] == [r1.id, r2.id]
    assert entries[1].changes == {"body": ("", "Plans"), "stage": ("design", "prototype")}


def test_concurrent_revisions_merge_per_field_in_ts_order() -> None:
    bob = rev("bob", 30, BOB, stage="testing", body="Bob's")
    alice = rev("alice", 20, ALICE, stage="prototype", title="Dryer")
    h = history(bob, alice, base=BASE | {"coauthors": [BOB]})
    s = h.state()
    # replay order alice (ts 20) then bob (ts 30): bob's stage wins, alice's title stays
    assert s.fields["stage"] == "testing" and s.fields["title"] == "Dryer"
    assert s.fields["body"] == "Bob's" and s.heads == tuple(sorted([bob.id, alice.id]))
    merge = rev("merge", 40, ALICE, s.heads, stage="done")
    h.add(merge)
    assert h.state().heads == (merge.id,) and h.state().fields["stage"] == "done"


def test_equal_ts_break_ties_by_id() -> None:
    a, b = rev("a", 10, ALICE, stage="design"), rev("b", 10, ALICE, stage="testing")
    first, last = sorted([a, b], key=lambda r: r.id)
    h = history(a, b)
    assert [e.id for e in h.history()] == [first.id, last.id]
    assert h.state().fields["stage"] == last.changes["stage"]


def test_a_stranger_has_no_effect() -> None:
    r = rev("x", 10, STRANGER, stage="done")
    none = rev("none", 11, None, stage="paused")
    h = history(r, none)
    assert h.state().fields["stage"] == "idea" and h.state().applied == 0
    assert effects(h) == {r.id: NOT_AUTHOR, none.id: NOT_AUTHOR}
    assert h.state().heads == (P,)
    assert h.history()[0].changes == {"stage": ("idea", "done")}  # what it proposed


def test_wrong_lab_has_no_effect() -> None:
    h = history(rev("w", 10, ALICE, lab=OTHER_LAB, stage="done"), rev("n", 11, ALICE, lab=None,
                                                                      stage="done"))  # fmt: skip
    assert set(effects(h).values()) == {WRONG_LAB} and h.state().fields["stage"] == "idea"


def test_a_coauthor_added_later_can_revise() -> None:
    early = rev("early", 10, BOB, stage="design")  # before being added: no effect
    add = rev("add", 20, ALICE, (P,), coauthors=[BOB])
    late = rev("late", 30, BOB, (add.id,), stage="testing")
    h = history(late, early, add)
    assert effects(h) == {early.id: NOT_AUTHOR, add.id: APPLIED, late.id: APPLIED}
    assert h.state().fields["stage"] == "testing" and h.state().authors == {ALICE, BOB}


def test_a_coauthor_revises_and_adds_another() -> None:
    r1 = rev("r1", 10, BOB, coauthors=[BOB, CAROL])
    r2 = rev("r2", 20, CAROL, (r1.id,), title="Carol's title")
    h = history(r1, r2, base=BASE | {"coauthors": [BOB]})
    assert h.state().fields["title"] == "Carol's title" and h.state().authors == {
        ALICE, BOB, CAROL}  # fmt: skip


def test_the_creator_is_never_a_coauthor_and_cannot_be_removed() -> None:
    h = history(base=BASE | {"coauthors": [ALICE, BOB]})
    assert h.state().fields["coauthors"] == [BOB]
    r1 = rev("r1", 10, BOB, coauthors=[BOB])  # "removes" nobody: Alice is not in the list
    r2 = rev("r2", 20, ALICE, (r1.id,), stage="design", coauthors=[ALICE])
    h.add(r1)
    h.add(r2)
    s = h.state()
    assert s.fields["coauthors"] == [] and s.authors == {ALICE} and s.fields["stage"] == "design"
    assert h.history()[1].changes["coauthors"] == ([BOB], [])


def test_an_unattributed_project_has_only_its_coauthors() -> None:
    r = rev("r", 10, BOB, stage="design")
    h = history(r, base=BASE | {"coauthors": [BOB]}, creator=None)
    assert h.state().authors == {BOB} and h.state().fields["stage"] == "design"


# ---- rule 4: removal fence ---------------------------------------------------------------


def test_a_removed_coauthor_revising_after_the_removal_has_no_effect() -> None:
    remove = rev("remove", 20, ALICE, coauthors=[])
    after = rev("after", 30, BOB, (remove.id,), stage="done")
    h = history(remove, after, base=BASE | {"coauthors": [BOB]})
    assert effects(h) == {remove.id: APPLIED, after.id: NOT_AUTHOR}
    assert h.state().fields["stage"] == "idea" and h.state().authors == {ALICE}


@pytest.mark.parametrize("bob_ts", [10, 25, 99])
def test_a_removed_coauthor_cannot_edit_beside_the_removal(bob_ts: int) -> None:
    """Backdated (ts before the removal) or not, a revision concurrent with the removal of its
    member has no effect, and neither does what it did to the co-authors."""
    base = BASE | {"coauthors": [BOB]}
    remove = rev("remove", 20, ALICE, coauthors=[])
    beside = rev("beside", bob_ts, BOB, stage="done", coauthors=[BOB, DAVE])
    h = history(beside, remove, base=base)
    assert effects(h) == {remove.id: APPLIED, beside.id: REMOVED_CONCURRENTLY}
    s = h.state()
    assert s.fields["stage"] == "idea" and s.authors == {ALICE} and s.heads == (remove.id,)
    # Dave, added only by the fenced revision, is no author either
    dave = rev("dave", 200, DAVE, (remove.id, beside.id), stage="paused")
    h.add(dave)
    assert effects(h)[dave.id] == NOT_AUTHOR


def test_a_removal_delivered_on_top_fences_what_came_before() -> None:
    """The removal is the newest revision and every link is met, yet it cannot take the fast
    path: it fences Bob's concurrent edit, which was already applied."""
    beside = rev("beside", 10, BOB, stage="done")
    h = history(beside, base=BASE | {"coauthors": [BOB]})
    assert h.state().fields["stage"] == "done"
    h.add(rev("remove", 20, ALICE, coauthors=[]))
    assert effects(h)[beside.id] == REMOVED_CONCURRENTLY and h.state().fields["stage"] == "idea"
    late = rev("late", 30, BOB, (beside.id,), title="Late")  # on top, by a removed member
    h.add(late)
    assert effects(h)[late.id] == REMOVED_CONCURRENTLY and h.state().fields["title"] == BASE[
        "title"]  # fmt: skip


def test_an_edit_before_the_removal_stands() -> None:
    edit = rev("edit", 10, BOB, stage="design")
    remove = rev("remove", 20, ALICE, (edit.id,), coauthors=[])
    h = history(remove, edit, base=BASE | {"coauthors": [BOB]})
    assert effects(h) == {edit.id: APPLIED, remove.id: APPLIED}
    assert h.state().fields["stage"] == "design"


def test_a_removed_and_readded_coauthor_can_revise_again() -> None:
    remove = rev("remove", 20, ALICE, coauthors=[])
    readd = rev("readd", 30, ALICE, (remove.id,), coauthors=[BOB])
    edit = rev("edit", 40, BOB, (readd.id,), stage="running")
    h = history(edit, readd, remove, base=BASE | {"coauthors": [BOB]})
    assert set(effects(h).values()) == {APPLIED} and h.state().fields["stage"] == "running"


def test_a_readded_coauthor_editing_on_top_stays_on_the_fast_path() -> None:
    remove = rev("remove", 20, ALICE, coauthors=[])
    readd = rev("readd", 30, ALICE, (remove.id,), coauthors=[BOB])
    h = history(remove, readd, base=BASE | {"coauthors": [BOB]})
    h.state()
    alice = rev("alice", 40, ALICE, (readd.id,), title="Alice")
    h.add(alice)
    bob = rev("bob", 50, BOB, (alice.id,), stage="running")
    h.add(bob)
    assert not h._dirty and h.state().fields["stage"] == "running"
    beside = rev("beside", 60, BOB, (P,), stage="paused")  # newest, but beside the removal
    h.add(beside)
    assert h._dirty and effects(h)[beside.id] == REMOVED_CONCURRENTLY


def test_fencing_cascades_until_stable() -> None:
    """Carol removes Bob while Bob, concurrently, removes Dave: Bob's revision is fenced, so
    Dave was never removed and Dave's edit beside it stands."""
    base = BASE | {"coauthors": [BOB, CAROL, DAVE]}
    carol = rev("carol", 30, CAROL, coauthors=[CAROL, DAVE])
    bob = rev("bob", 20, BOB, coauthors=[BOB, CAROL])
    dave = rev("dave", 25, DAVE, stage="testing")
    h = history(carol, bob, dave, base=base)
    assert effects(h) == {bob.id: REMOVED_CONCURRENTLY, dave.id: REMOVED_CONCURRENTLY,
                          carol.id: APPLIED}  # fmt: skip
    # Dave's edit was fenced in the first pass (Bob's removal applied then): the fenced set only
    # grows, so it stays without effect; the state is the same on every node.
    assert h.state().authors == {ALICE, CAROL, DAVE}


# ---- rule 1: links ------------------------------------------------------------------------


def test_a_forged_link_has_no_effect_but_its_children_stand() -> None:
    comment = oid("a comment of another project")
    forged = rev("forged", 10, ALICE, (P, comment), stage="done")
    child = rev("child", 20, ALICE, (forged.id,), title="Child")
    h = history(forged, child)
    assert h.unresolved() == {comment} and effects(h)[forged.id] == WAITING
    h.mark_foreign([comment])
    assert effects(h) == {forged.id: FORGED_LINK, child.id: APPLIED}
    assert h.state().fields["stage"] == "idea" and h.state().fields["title"] == "Child"
    assert h.unresolved() == set()


def test_waiting_on_a_missing_parent() -> None:
    r1 = rev("r1", 10, ALICE, stage="design")
    r2 = rev("r2", 20, ALICE, (r1.id,), stage="testing")
    r3 = rev("r3", 30, ALICE, (r2.id,), title="Three")
    h = history(r3, r2)
    assert h.unresolved() == {r1.id} and h.state().fields == project_fields(BASE)
    assert [(e.id, e.effect) for e in h.history()] == [(r2.id, WAITING), (r3.id, WAITING)]
    h.add(r1)
    assert h.unresolved() == set() and h.state().fields["stage"] == "testing"
    assert h.state().fields["title"] == "Three" and h.state().applied == 3


def test_a_retracted_revision_loses_its_effect_and_its_children_stand() -> None:
    r1 = rev("r1", 10, ALICE, stage="design", body="one")
    r2 = rev("r2", 20, ALICE, (r1.id,), stage="testing")
    h = history(r1, r2)
    h.remove(r1.id)
    s = h.state()
    assert s.fields["stage"] == "testing" and s.fields["body"] == "" and s.applied == 1
    h.add(r1)  # a withdrawn id never comes back
    assert h.state() == s and len(h) == 1


def test_a_retraction_known_before_the_revision() -> None:
    r1 = rev("r1", 10, ALICE, stage="design")
    r2 = rev("r2", 20, ALICE, (r1.id,), title="Two")
    h = history()
    h.mark_gone([r1.id])
    h.add(r2)
    h.add(r1)
    assert h.state().fields["stage"] == "idea" and h.state().fields["title"] == "Two"
    assert h.unresolved() == set()


def test_add_is_idempotent_and_checks_the_target() -> None:
    r1 = rev("r1", 10, ALICE, stage="design")
    h = history(r1, r1)
    h.add(r1)
    assert len(h) == 1 and h.state().applied == 1
    with pytest.raises(ValueError):
        h.add(RevisionRecord(oid("other"), 1, ALICE, LAB, oid("another project"), (P,), {}))


def test_unknown_fields_of_a_record_are_ignored() -> None:
    h = history(RevisionRecord(oid("r"), 10, ALICE, LAB, P, (P,), {"stage": "design", "x": 1}))
    assert "x" not in h.state().fields and h.history()[0].changes == {"stage": ("idea", "design")}


def test_record_of_a_signed_revision() -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes(32))
    body = {"lab": LAB, "target": P, "supersedes": [P], "note": "typo",
            "set": {"title": "Solar dryer!", "colour": "red"}}  # fmt: skip
    obj = kinds.create(key, "revision", body, 1_767_225_600_000)
    rec = RevisionRecord.of(objects.decode(obj.raw), ALICE)
    assert rec == RevisionRecord(obj.id, obj.ts, ALICE, LAB, P, (P,), {"title": "Solar dryer!"},
                                 "typo")  # fmt: skip


# ---- rule 5: the fast path gives what the full replay gives --------------------------------


def test_fast_path_appends_without_a_full_replay() -> None:
    h = history(base=BASE | {"coauthors": [BOB]})
    heads = h.state().heads
    for i in range(50):
        r = rev(f"r{i}", 10 + i, (ALICE, BOB, STRANGER)[i % 3], heads, body=f"v{i}",
                coauthors=[BOB, CAROL])  # fmt: skip
        h.add(r)
        assert not h._dirty, i  # appended in place
        heads = h.state().heads
    replayed = ProjectHistory(P, ALICE, LAB, BASE | {"coauthors": [BOB]})
    for e in reversed(h.history()):
        replayed.add(RevisionRecord(e.id, e.ts, e.member, LAB, P, e.supersedes,
                                    {k: v[1] for k, v in e.changes.items()}, e.note))  # fmt: skip
    assert replayed.state() == h.state() and replayed.history() == h.history()


def test_a_removal_or_an_old_timestamp_takes_the_full_replay() -> None:
    h = history(rev("r1", 10, ALICE, stage="design"), base=BASE | {"coauthors": [BOB]})
    h.state()
    h.add(rev("old", 5, BOB, stage="testing"))
    assert h._dirty
    h.state()
    h.add(rev("removal", 50, ALICE, tuple(h.state().heads), coauthors=[]))
    assert h._dirty and h.state().authors == {ALICE}


# ---- the property: any delivery of the same set gives the same project -----------------


MEMBERS = (ALICE, BOB, BOB, CAROL, CAROL, DAVE, STRANGER, None)
PEOPLE = [ALICE, BOB, CAROL, DAVE]
STAGE_VALUES = ("idea", "design", "testing")


Replay = tuple[ProjectState, list[HistoryEntry]]


def reference(base: Mapping[str, Any], creator: bytes | None, recs: dict[bytes, RevisionRecord],
              gone: set[bytes], foreign: set[bytes]) -> Replay:  # fmt: skip
    """The rules of docs/protocol.md §3.3, as plainly as possible."""

    def unplaceable(rid: bytes, seen: frozenset[bytes] = frozenset()) -> bool:
        if rid in seen:
            return True
        for link in recs[rid].supersedes:
            if link in recs:
                if unplaceable(link, seen | {rid}):
                    return True
            elif link != P and link not in gone and link not in foreign:
                return True
        return False

    waiting = {r for r in recs if unplaceable(r)}
    placed = [r for r in recs if r not in waiting]
    order: list[bytes] = []
    while len(order) < len(placed):
        ready = [r for r in placed if r not in order
                 and all(p in order for p in recs[r].supersedes if p in recs)]  # fmt: skip
        order.append(min(ready, key=lambda r: (recs[r].ts, r)))

    def ancestors(rid: bytes) -> set[bytes]:
        out: set[bytes] = set()
        for link in recs[rid].supersedes:
            if link in recs:
                out |= {link} | ancestors(link)
        return out

    def norm(name: str, value: Any) -> Any:
        if name == "coauthors":
            return [m for m in value if m != creator]
        return value

    start = dict(project_fields(base))
    start["coauthors"] = norm("coauthors", start["coauthors"])
    fenced: set[bytes] = set()
    while True:
        fields = dict(start)
        entries: list[HistoryEntry] = []
        removals: list[tuple[bytes, set[bytes]]] = []
        for rid in order:
            r = recs[rid]
            authors = set(fields["coauthors"]) | ({creator} if creator else set())
            if r.lab != LAB:
                effect = WRONG_LAB
            elif any(link in foreign and link not in recs for link in r.supersedes):
                effect = FORGED_LINK
            elif rid in fenced:
                effect = REMOVED_CONCURRENTLY
            elif r.member not in authors:
                effect = NOT_AUTHOR
            else:
                effect = APPLIED
            changes = {k: (fields[k], norm(k, v)) for k, v in r.changes.items()}
            entries.append(HistoryEntry(rid, r.ts, r.member, r.supersedes, changes, r.note,
                                        effect))  # fmt: skip
            if effect == APPLIED:
                if "coauthors" in changes:
                    out = set(fields["coauthors"]) - set(changes["coauthors"][1])
                    if out:
                        removals.append((rid, out))
                fields.update({k: new for k, (_, new) in changes.items()})
        new_fenced = {
            y for x, out in removals for y in order
            if recs[y].member in out and y != x
            and y not in ancestors(x) and x not in ancestors(y)
        }  # fmt: skip
        if new_fenced <= fenced:
            break
        fenced |= new_fenced
    applied = [e for e in entries if e.effect == APPLIED]
    heads = [e.id for e in applied if not any(e.id in ancestors(o.id) for o in applied)]
    for rid in sorted(waiting, key=lambda r: (recs[r].ts, r)):
        r = recs[rid]
        changes = {k: (fields[k], norm(k, v)) for k, v in r.changes.items()}
        entries.append(HistoryEntry(rid, r.ts, r.member, r.supersedes, changes, r.note, WAITING))
    everyone = frozenset(fields["coauthors"]) | ({creator} if creator else frozenset())
    state = ProjectState(fields, creator, everyone, tuple(sorted(heads)) or (P,), len(applied),
                         max((e.ts for e in applied), default=None))  # fmt: skip
    return state, entries


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 14))
    recs: list[RevisionRecord] = []
    foreign_ids = [oid(f"foreign{i}") for i in range(2)]
    missing_ids = [oid(f"missing{i}") for i in range(2)]
    for i in range(n):
        pool = [P] + [r.id for r in recs]
        links = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
        if draw(st.integers(0, 9)) == 0:
            links.append(draw(st.sampled_from(foreign_ids + missing_ids)))
        change = draw(st.sampled_from(["stage", "title", "coauthors", "two"]))
        options: dict[str, dict[str, Any]] = {
            "stage": {"stage": draw(st.sampled_from(STAGE_VALUES))},
            "title": {"title": f"t{i}"},
            "coauthors": {"coauthors": draw(st.lists(st.sampled_from(PEOPLE), max_size=3,
                                                     unique=True))},
            "two": {"stage": draw(st.sampled_from(STAGE_VALUES)), "body": f"b{i}"},
        }
        changes = options[change]
        lab = LAB if draw(st.integers(0, 9)) else OTHER_LAB
        ts = 2 * i + draw(st.integers(-3, 1))  # mostly increasing; ties and backdating
        recs.append(RevisionRecord(oid(f"s{i}"), ts,
                                   draw(st.sampled_from(MEMBERS)), lab, P, tuple(links),
                                   changes, f"n{i}"))  # fmt: skip
    ids = [r.id for r in recs]
    withheld = set(draw(st.lists(st.sampled_from(ids), max_size=2, unique=True)))
    retracted = set(draw(st.lists(st.sampled_from(ids), max_size=3, unique=True)))
    coauthors = draw(st.lists(st.sampled_from([ALICE, BOB, CAROL]), max_size=2, unique=True))
    return {"recs": recs, "withheld": withheld, "retracted": retracted, "foreign": foreign_ids,
            "base": BASE | {"coauthors": coauthors}}  # fmt: skip


Draw = Callable[[st.SearchStrategy[Any]], Any]


def deliveries(draw: Draw, sc: dict[str, Any]) -> list[tuple[str, Any]]:
    """The scenario's objects as one node might receive them: shuffled, or mostly in the
    order they were made (the fast path's case), with duplicates, the retractions and the
    foreign ids anywhere, and queries in between."""
    adds: list[tuple[str, Any]] = []
    for r in sc["recs"]:
        if r.id not in sc["withheld"]:
            adds += [("add", r)] * draw(st.integers(1, 2))
    others: list[tuple[str, Any]] = [("gone", rid) for rid in sc["retracted"]]
    others.append(("foreign", sc["foreign"]))
    if draw(st.booleans()):
        ops = list(draw(st.permutations(adds + others)))
    else:
        ops = adds
        for op in others:
            ops.insert(draw(st.integers(0, len(ops))), op)
    out: list[tuple[str, Any]] = []
    for op in ops:
        out.append(op)
        if draw(st.booleans()):
            out.append(("state", None))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_delivery_order_gives_the_reference_replay(data: st.DataObject) -> None:
    sc = data.draw(scenarios())
    held = {r.id: r for r in sc["recs"]
            if r.id not in sc["withheld"] and r.id not in sc["retracted"]}  # fmt: skip
    want = reference(sc["base"], ALICE, held, set(sc["retracted"]), set(sc["foreign"]))
    for _ in range(2):  # two nodes, two orders
        h = ProjectHistory(P, ALICE, LAB, sc["base"])
        for op, arg in deliveries(data.draw, sc):
            if op == "add":
                h.add(arg)
            elif op == "gone":
                h.remove(arg)
                h.mark_gone([arg])
            elif op == "foreign":
                h.mark_foreign(arg)
            else:
                h.state()
                h.history()
        assert h.state() == want[0]
        assert h.history() == want[1]
        total = len(want[1])
        assert h.history_len() == total
        start = data.draw(st.integers(0, total))
        end = data.draw(st.integers(start, total))
        assert h.history_slice(start, end) == want[1][start:end]  # a page, built alone


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_sorted_sweep_places_like_kahn(data: st.DataObject) -> None:
    """dag.place takes the (ts, id) order when it is topological: the same as Kahn's."""
    sc = data.draw(scenarios())
    held = {r.id: r for r in sc["recs"]
            if r.id not in sc["withheld"] and r.id not in sc["retracted"]}  # fmt: skip
    linked: dict[bytes, list[bytes]] = {}
    for r in held.values():
        for link in r.supersedes:
            linked.setdefault(link, []).append(r.id)
    args = (P, held, linked, set(sc["retracted"]), set(sc["foreign"]))
    assert dag.place(*args) == dag.kahn(*args)


@given(st.lists(st.tuples(st.integers(0, 5), st.binary(min_size=1, max_size=3)), max_size=40))
def test_by_key_sorts_by_ts_then_id(keys: list[tuple[int, bytes]]) -> None:
    recs = {i: RevisionRecord(i, ts, None, LAB, P, (P,), {}) for ts, i in keys}
    assert [r.id for r in dag.by_key(recs)] == sorted(recs, key=lambda i: (recs[i].ts, i))
