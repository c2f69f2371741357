"""The lab's authority view (protocols/lab_authority.py, docs/governance.md): unit cases of the
replay rule, and the property that it is a function of the set of decisions (any permutation
and duplication, concurrent conflicting decisions included)."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import kinds, objects
from protocols.governance import decision_body
from protocols.lab_authority import EFFECTS, LabAuthority, Rules, replay
from protocols.limits import PROPOSAL_TTL_MS
from protocols.objects import SignedObject

KEYS = [Ed25519PrivateKey.from_private_bytes(bytes([i + 1]) * 32) for i in range(6)]
ALICE, BOB, CAROL, DAN, ERIN, XAVIER = KEYS
PUBS = [objects.public_key_bytes(k) for k in KEYS]
A, B, C, D, E, X = PUBS
T0 = 1_767_225_600_000
MIN = 60_000
LAB = kinds.create(ALICE, "lab", {"name": "Fablab", "description": "", "place": "", "theme": ""},
                   T0)  # fmt: skip


def t(minutes: int) -> int:
    return T0 + minutes * MIN


def dec(k: Ed25519PrivateKey, minutes: int, act: str, **fields: Any) -> SignedObject:
    return kinds.create(k, "decision", decision_body(LAB.id, act, **fields), t(minutes))


def author(obj: SignedObject) -> bytes | None:
    """Each key is its own member (no devices); Xavier's objects speak for nobody."""
    return None if obj.author == X else obj.author


def view(*ds: SignedObject) -> LabAuthority:
    return replay(LAB, ds, author)


def effects(v: LabAuthority) -> dict[bytes, str]:
    return {e.id: e.effect for e in v.log}


def post(k: Ed25519PrivateKey, minutes: int, kind: str = "project") -> SignedObject:
    body: dict[str, Any]
    if kind == "project":
        body = {"lab": LAB.id, "title": "Dryer", "summary": "", "body": "", "stage": "idea",
                "needs": []}  # fmt: skip
    else:
        body = {"lab": LAB.id, "target": LAB.id, "parent": None, "body": "hi"}
    return kinds.create(k, kind, body, t(minutes))


def two_stewards() -> list[SignedObject]:
    return [dec(ALICE, 1, "admit", subject=B, role="steward")]


# ---- unit cases ------------------------------------------------------------------------------


def test_the_creator_is_the_one_steward() -> None:
    v = view()
    assert v.stewards == {A} and v.members == {A} and v.rules == Rules()
    assert v.intervals == {A: ((T0, None),)} and v.log == ()


def test_one_steward_acts_alone_then_two_need_both() -> None:
    admit_bob = two_stewards()[0]
    v = view(admit_bob)
    assert v.stewards == {A, B} and effects(v)[admit_bob.id] == "applied"
    add_carol = dec(ALICE, 2, "admit", subject=C, role="steward")
    v = view(admit_bob, add_carol)
    assert v.stewards == {A, B} and effects(v)[add_carol.id] == "pending"
    ok = dec(BOB, 3, "endorse", target=add_carol.id)
    v = view(admit_bob, add_carol, ok)
    assert v.stewards == {A, B, C} and effects(v)[add_carol.id] == "applied"
    assert effects(v)[ok.id] == "applied"


def test_a_single_steward_cannot_remove_the_other() -> None:
    rm = dec(ALICE, 2, "remove", subject=B, role="steward")
    as_member = dec(ALICE, 3, "remove", subject=B, role="member")
    suspend = dec(ALICE, 4, "suspend", subject=B)
    v = view(*two_stewards(), rm, as_member, suspend)
    assert v.stewards == {A, B} and v.suspended == frozenset()
    assert [e.effect for e in v.log[1:]] == ["pending", "no_authority", "no_authority"]


def test_the_last_steward_cannot_leave() -> None:
    rm = dec(ALICE, 1, "remove", subject=A, role="steward")
    v = view(rm)
    assert v.stewards == {A} and effects(v)[rm.id] == "no_effect"


def test_a_majority_removes_a_steward_who_stays_a_member() -> None:
    ds = [dec(ALICE, 1, "admit", subject=B, role="steward")]
    add_c = dec(ALICE, 2, "admit", subject=C, role="steward")
    ds += [add_c, dec(BOB, 3, "endorse", target=add_c.id)]
    rm = dec(ALICE, 4, "remove", subject=C, role="steward")
    ds += [rm]
    assert view(*ds).stewards == {A, B, C}
    ds += [dec(BOB, 5, "endorse", target=rm.id)]  # 2 of 3
    v = view(*ds)
    assert v.stewards == {A, B} and C in v.members and effects(v)[rm.id] == "applied"


def test_a_removed_stewards_later_decisions_have_no_effect() -> None:
    ds = two_stewards()
    rm = dec(ALICE, 2, "remove", subject=B, role="steward")
    ds += [rm, dec(BOB, 3, "endorse", target=rm.id)]
    kick = dec(ALICE, 4, "remove", subject=B, role="member")
    late = [dec(BOB, 5, "hide", target=LAB.id), dec(BOB, 6, "admit", subject=C, role="member"),
            dec(BOB, 7, "vouch", subject=D), dec(BOB, 8, "approve", target=LAB.id)]  # fmt: skip
    v = view(*ds, kick, *late)
    assert v.stewards == {A} and v.members == {A} and v.hidden == {} and v.approved == set()
    assert v.intervals[B] == ((t(1), t(4)),)
    assert [effects(v)[d.id] for d in late] == ["no_authority"] * 4
    assert effects(v)[rm.id] == "applied"


def test_a_removed_stewards_backdated_decision_cannot_outvote() -> None:
    """Bob, removed at minute 10, signs decisions claiming minute 5: they apply (the order
    is the claim) and stay in the log; a proposal needs stewards current at each check."""
    ds = two_stewards()
    add_c = dec(ALICE, 2, "admit", subject=C, role="steward")
    ds += [add_c, dec(BOB, 2, "endorse", target=add_c.id)]
    rm_b = dec(ALICE, 9, "remove", subject=B, role="steward")
    ds += [rm_b, dec(CAROL, 10, "endorse", target=rm_b.id)]
    # Backdated: Bob proposes removing Carol at minute 5; nobody else endorses it.
    back = dec(BOB, 5, "remove", subject=C, role="steward")
    hide = dec(BOB, 6, "hide", target=LAB.id, reason="backdated")
    v = view(*ds, back, hide)
    assert v.stewards == {A, C}
    assert effects(v)[back.id] == "pending" and effects(v)[hide.id] == "applied"
    undo = dec(ALICE, 11, "unhide", target=LAB.id)
    assert view(*ds, back, hide, undo).hidden == {}


def test_vouch_threshold_and_rules_change_by_majority() -> None:
    v1 = dec(ALICE, 1, "admit", subject=B, role="member")
    v2 = dec(ALICE, 1, "admit", subject=C, role="member")
    bob_vouch = dec(BOB, 2, "vouch", subject=D)
    v = view(v1, v2, bob_vouch)
    assert D not in v.members and v.newcomers == {D: {B}}
    assert effects(v)[bob_vouch.id] == "pending"
    again = dec(BOB, 3, "vouch", subject=D)
    carol_vouch = dec(CAROL, 4, "vouch", subject=D)
    v = view(v1, v2, bob_vouch, again, carol_vouch)
    assert D in v.members and v.newcomers == {}
    assert [effects(v)[x.id] for x in (bob_vouch, again, carol_vouch)] == [
        "applied", "no_effect", "applied"]  # fmt: skip
    # Rules to one vouch (one steward: alone); Erin's newcomer waits no more.
    erin = dec(BOB, 5, "vouch", subject=E)
    rules = dec(ALICE, 6, "rules", rules={"admit_vouches": 1, "posts": "shown"})
    v = view(v1, v2, erin, rules)
    assert E in v.members and v.rules == Rules(1, "shown", "shown")
    assert effects(v)[erin.id] == "applied" and effects(v)[rules.id] == "applied"
    same = dec(ALICE, 7, "rules", rules={"posts": "shown", "later": 1})
    assert effects(view(v1, v2, erin, rules, same))[same.id] == "no_effect"


def test_rules_need_a_majority_of_stewards() -> None:
    ds = two_stewards()
    rules = dec(ALICE, 2, "rules", rules={"replies": "queued"})
    assert view(*ds, rules).rules == Rules()
    v = view(*ds, rules, dec(BOB, 3, "endorse", target=rules.id))
    assert v.rules == Rules(replies="queued")


def test_a_stewards_vouch_admits_and_strangers_have_no_authority() -> None:
    ds = [dec(ALICE, 1, "vouch", subject=B), dec(BOB, 2, "vouch", subject=C),
          dec(CAROL, 3, "vouch", subject=D), dec(XAVIER, 4, "admit", subject=E, role="member")]
    v = view(*ds)
    assert v.members == {A, B} and v.newcomers == {C: {B}}
    assert [e.effect for e in v.log] == ["applied", "pending", "no_authority", "no_authority"]


def test_queue_approve_and_classification() -> None:
    admit_b = dec(ALICE, 1, "admit", subject=B, role="member")
    stranger_post = post(CAROL, 2)
    stranger_reply = post(CAROL, 2, "comment")
    # No rules decision: the lab is open (a lab from before governance).
    assert view(admit_b).status(stranger_post, C) == "shown"
    closed = dec(ALICE, 1, "rules", rules={"posts": "queued"})  # lab_create's default
    v = view(admit_b, closed)
    assert v.status(stranger_post, C) == "queued" and v.status(stranger_reply, C) == "shown"
    assert v.status(post(BOB, 2), B) == "shown" and v.status(LAB, A) == "shown"
    assert v.status(stranger_post, None) == "queued"
    approve = dec(BOB, 3, "approve", target=stranger_post.id)
    v = view(admit_b, closed, approve)
    assert v.status(stranger_post, C) == "shown" and v.approved == {stranger_post.id}
    # A member removed later: what they posted while a member stays shown.
    rm = dec(ALICE, 5, "remove", subject=B, role="member")
    v = view(admit_b, closed, rm)
    assert v.status(post(BOB, 2), B) == "shown" and v.status(post(BOB, 6), B) == "queued"
    assert v.status(dec(CAROL, 7, "frobnicate"), C) == "shown"


def test_hide_and_suspension() -> None:
    admit_b = dec(ALICE, 1, "admit", subject=B, role="member")
    p = post(BOB, 2)
    hide = dec(ALICE, 3, "hide", target=p.id, reason="spam")
    v = view(admit_b, hide)
    assert v.hidden == {p.id: (A, "spam")} and v.status(p, B) == "hidden"
    twice = dec(ALICE, 4, "hide", target=p.id)
    assert [e.effect for e in view(admit_b, hide, twice).log] == ["applied"] * 2 + ["no_effect"]
    sus = dec(ALICE, 4, "suspend", subject=B)
    vouch = dec(BOB, 5, "vouch", subject=C)
    v = view(admit_b, sus, vouch)
    assert v.suspended == {B} and v.status(post(BOB, 6), B) == "hidden"
    assert effects(v)[vouch.id] == "no_authority"
    lift = dec(ALICE, 6, "unsuspend", subject=B)
    v = view(admit_b, sus, lift, dec(ALICE, 7, "unsuspend", subject=B))
    assert v.suspended == set() and [e.effect for e in v.log[1:]] == [
        "applied", "applied", "no_effect"]  # fmt: skip


def test_unknown_acts_and_roles_are_listed_and_ignored() -> None:
    ds = [dec(ALICE, 1, "elect", subject=B), dec(ALICE, 2, "admit", subject=B, role="mentor"),
          dec(XAVIER, 3, "frobnicate")]
    v = view(*ds)
    assert v.members == {A} and [e.effect for e in v.log] == ["unknown_act"] * 3
    assert [e.by for e in v.log] == [A, A, None]


def test_proposals_expire() -> None:
    ds = two_stewards()
    rules = dec(ALICE, 2, "rules", rules={"posts": "queued"})
    late = kinds.create(BOB, "decision", decision_body(LAB.id, "endorse", target=rules.id),
                        rules.ts + PROPOSAL_TTL_MS + 1)  # fmt: skip
    v = view(*ds, rules, late)
    assert v.rules == Rules() and effects(v)[rules.id] == "pending"
    assert effects(v)[late.id] == "no_effect"


def test_a_proposal_waiting_when_stewards_change_takes_effect() -> None:
    """Three stewards; Alice proposes a rules change, Bob's endorsement makes 2 of 3... but
    first Carol is removed by Alice and Bob: then 2 of 2 hold the rules change too."""
    ds = two_stewards()
    add_c = dec(ALICE, 2, "admit", subject=C, role="steward")
    ds += [add_c, dec(BOB, 3, "endorse", target=add_c.id)]
    rules = dec(ALICE, 4, "rules", rules={"posts": "queued"})  # 1 of 3: pending
    rm_c = dec(BOB, 5, "remove", subject=C, role="steward")
    ds += [rules, rm_c, dec(ALICE, 6, "endorse", target=rm_c.id)]  # 2 of 3: Carol out
    v = view(*ds)
    assert v.stewards == {A, B} and v.rules == Rules() and effects(v)[rules.id] == "pending"
    # Dan admitted as steward by Alice alone? No: 1 of 2. With a one-steward lab, though,
    # Alice's waiting proposals all take effect when Bob leaves.
    rm_b = dec(ALICE, 7, "remove", subject=B, role="steward")
    ds += [rm_b, dec(BOB, 8, "endorse", target=rm_b.id)]
    v = view(*ds)
    assert v.stewards == {A} and v.rules.posts == "queued"


def test_endorsement_in_the_same_millisecond_placed_first() -> None:
    ds = two_stewards()
    rules = dec(ALICE, 2, "rules", rules={"posts": "queued"})
    for i in range(40):  # an endorsement whose id sorts before the proposal's (same ts)
        e = kinds.create(BOB, "decision", decision_body(LAB.id, "endorse", target=rules.id,
                         reason=str(i)), rules.ts)  # fmt: skip
        if e.id < rules.id:
            break
    assert e.id < rules.id
    v = view(*ds, rules, e)
    assert v.rules.posts == "queued" and effects(v)[e.id] == "applied"
    orphan = dec(BOB, 3, "endorse", target=bytes(32))
    assert effects(view(*ds, orphan))[orphan.id] == "pending"


def test_decisions_before_the_lab_or_of_another_lab() -> None:
    early = kinds.create(ALICE, "decision", decision_body(LAB.id, "vouch", subject=B), T0 - 1)
    other = kinds.create(ALICE, "decision", decision_body(bytes(32), "vouch", subject=B), t(1))
    v = view(early, other, post(ALICE, 1))
    assert v.members == {A} and [(e.id, e.effect) for e in v.log] == [(early.id, "no_authority")]


# ---- property: a function of the set ---------------------------------------------------------

_who = st.integers(0, len(KEYS) - 1)
_min = st.integers(1, 6)
OPS = st.one_of(
    st.tuples(st.sampled_from(["admit", "remove"]), _who, _min, _who,
              st.sampled_from(["member", "steward", "mentor"])),
    st.tuples(st.sampled_from(["vouch", "suspend", "unsuspend"]), _who, _min, _who),
    st.tuples(st.just("rules"), _who, _min, st.integers(1, 3),
              st.sampled_from(["shown", "queued"])),
    st.tuples(st.sampled_from(["endorse", "approve", "hide", "unhide"]), _who, _min,
              st.integers(0, 1000)),
    st.tuples(st.just("other"), _who, _min),
)  # fmt: skip


def build(ops: list[tuple[Any, ...]]) -> list[SignedObject]:
    """Decisions from ops: targets pick earlier decisions (so endorsements meet proposals),
    timestamps collide often (concurrent, conflicting decisions)."""
    out: list[SignedObject] = []
    for i, op in enumerate(ops):
        act, k, minutes = op[0], KEYS[op[1]], op[2]
        fields: dict[str, Any] = {"reason": str(i)}  # distinct ids for equal ops
        if act in ("admit", "remove"):
            fields |= {"subject": PUBS[op[3]], "role": op[4]}
        elif act in ("vouch", "suspend", "unsuspend"):
            fields["subject"] = PUBS[op[3]]
        elif act == "rules":
            fields["rules"] = {"admit_vouches": op[3], "posts": op[4]}
        elif act != "other":
            fields["target"] = out[op[3] % len(out)].id if out else LAB.id
        out.append(dec(k, minutes, "elect" if act == "other" else act, **fields))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(OPS, min_size=1, max_size=24), st.randoms(use_true_random=False))
def test_any_order_and_duplicates_give_the_same_authority(ops: list[tuple[Any, ...]],
                                                          rnd: Any) -> None:  # fmt: skip
    ds = build(ops)
    want = view(*ds)
    assert {e.effect for e in want.log} <= set(EFFECTS)
    assert want.stewards and want.stewards <= want.members
    assert not want.stewards & want.suspended
    for _ in range(3):
        shuffled = ds + rnd.sample(ds, k=min(len(ds), 3))
        rnd.shuffle(shuffled)
        assert view(*shuffled) == want
