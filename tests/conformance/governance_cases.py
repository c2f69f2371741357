"""The governance half of the conformance corpus: docs/conformance/governance.json.

Two parts (docs/protocol.md §3.4, docs/governance.md):
- `objects`: `decision` bodies at the edges of the schema (each known act with its fields,
  each needed field missing, each extra field, unknown acts and roles, the rules record, the
  reason), as bytes and the verdict a receiver must reach (the format of objects.json);
- `scenarios`: a lab, its decisions and other objects of the lab, with the authority a node
  must show once it holds all of them, in any order: stewards, members, suspended, hidden,
  approved, rules, newcomers, membership intervals, the decision log and each object's status.
  Every author key is its own member (no device certificates). The effects are written here
  by hand, from the rules, and checked against protocols/lab_authority.py when the file is
  generated and by the suite.
Deterministic: `python -m tests.conformance.governance_cases` rewrites the file byte for byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import errors, kinds, objects
from protocols.governance import ACT_FIELDS, ACTS, decision_body
from protocols.lab_authority import LabAuthority, replay
from protocols.limits import MAX_ADMIT_VOUCHES, MAX_REASON_CHARS, MAX_RULE_ENTRIES, PROPOSAL_TTL_MS
from tests.conformance import corpus_files

FORMAT = "percolab-conformance-governance/1"
OUT = Path(__file__).resolve().parents[2] / "docs" / "conformance" / "governance.json"
NOW_MS = 1_767_225_600_000
T0 = NOW_MS - 40 * 86_400_000  # room for a proposal to expire before now
MIN = 60_000
LAB = hashlib.sha256(b"percolab/conformance/lab").digest()
TARGET = hashlib.sha256(b"percolab/conformance/target").digest()


def key(name: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(b"percolab/conformance/governance/" + name.encode()).digest()
    )


ALICE, BOB, CAROL, DAN, ERIN = (key(n) for n in ("alice", "bob", "carol", "dan", "erin"))


def pub(k: Ed25519PrivateKey) -> bytes:
    return objects.public_key_bytes(k)


A, B, C, D, E = (pub(k) for k in (ALICE, BOB, CAROL, DAN, ERIN))


def t(minutes: int) -> int:
    return T0 + minutes * MIN


# ---- part 1: the schema ------------------------------------------------------------------

VALUES: dict[str, Any] = {"subject": pub(BOB), "target": TARGET, "role": "member",
                          "rules": {"admit_vouches": 3}}  # fmt: skip


def _objects() -> list[dict[str, str]]:
    cases: list[tuple[str, dict[str, Any], type[errors.ObjectError] | None]] = []
    for act, needs in ACTS.items():
        body = {"lab": LAB, "act": act} | {n: VALUES[n] for n in needs}
        cases.append((f"decision/{act}", body, None))
        for n in needs:
            cases.append((f"decision/{act}-without-{n}",
                          {k: v for k, v in body.items() if k != n}, errors.MissingField))
        for n in ACT_FIELDS:
            if n not in needs:
                cases.append((f"decision/{act}-with-{n}", body | {n: VALUES[n]}, errors.BadValue))
    admit = {"lab": LAB, "act": "admit", "subject": pub(BOB), "role": "steward"}
    rules = {"lab": LAB, "act": "rules"}
    cases += [
        ("decision/unknown-act", {"lab": LAB, "act": "elect"}, None),
        ("decision/unknown-act-any-fields", {"lab": LAB, "act": "elect"} | VALUES, None),
        ("decision/unknown-role", admit | {"role": "mentor"}, None),
        ("decision/reason-and-unknown-field", admit | {"reason": "two\nlines", "quorum": 2},
         None),
        ("decision/reason-501", admit | {"reason": "x" * (MAX_REASON_CHARS + 1)},
         errors.StringTooLong),
        ("decision/act-uppercase", admit | {"act": "Admit"}, errors.BadValue),
        ("decision/no-act", {"lab": LAB}, errors.MissingField),
        ("decision/no-lab", {k: v for k, v in admit.items() if k != "lab"}, errors.MissingField),
        ("decision/lab-nil", admit | {"lab": None}, errors.BadFieldType),
        ("decision/subject-31-bytes", admit | {"subject": bytes(31)}, errors.BadFieldType),
        ("decision/role-with-dash", admit | {"role": "co-steward"}, errors.BadValue),
        ("decision/target-not-an-id", {"lab": LAB, "act": "hide", "target": "x"},
         errors.BadFieldType),
        ("rules/all", rules | {"rules": {"admit_vouches": MAX_ADMIT_VOUCHES, "posts": "shown",
                                         "replies": "queued"}}, None),
        ("rules/unknown-rule", rules | {"rules": {"quorum": "thirds"}}, None),
        ("rules/empty", rules | {"rules": {}}, errors.TooManyItems),
        ("rules/too-many", rules | {"rules": {f"r{i:02}": i for i in range(MAX_RULE_ENTRIES + 1)}},
         errors.TooManyItems),
        ("rules/admit-vouches-0", rules | {"rules": {"admit_vouches": 0}}, errors.IntOutOfRange),
        ("rules/admit-vouches-17", rules | {"rules": {"admit_vouches": MAX_ADMIT_VOUCHES + 1}},
         errors.IntOutOfRange),
        ("rules/posts-members", rules | {"rules": {"posts": "members"}}, errors.BadValue),
        ("rules/not-a-map", rules | {"rules": ["posts"]}, errors.BadFieldType),
    ]  # fmt: skip
    out = []
    for name, body, err in cases:
        raw = objects.sign(ALICE, "decision", NOW_MS - MIN, body).raw
        case = {"name": name, "rule": "§3.4", "hex": raw.hex(),
                "verdict": "visible" if err is None else err.layer.value}  # fmt: skip
        if err is not None:
            case["code"] = err.code
        out.append(case)
    return out


def _verdict(raw: bytes) -> tuple[str, str | None]:
    try:
        kinds.validate(objects.decode(raw), NOW_MS)
    except errors.ObjectError as exc:
        return exc.layer.value, exc.code
    return "visible", None


# ---- part 2: scenarios -------------------------------------------------------------------


def member_of(obj: objects.SignedObject) -> bytes:
    return obj.author  # every key is its own member


def play(objs: Iterable[objects.SignedObject]) -> LabAuthority:
    """What a node does with a scenario: the lab (the one object of kind `lab`) and its
    decisions, attributed to their author keys."""
    held = list(objs)
    lab = next(o for o in held if o.kind == "lab")
    return replay(lab, held, member_of)


def _hex(values: Iterable[bytes]) -> list[str]:
    return sorted(v.hex() for v in values)


def state_json(v: LabAuthority) -> dict[str, Any]:
    return {
        "stewards": _hex(v.stewards), "members": _hex(v.members),
        "suspended": _hex(v.suspended), "approved": _hex(v.approved),
        "hidden": {i.hex(): {"by": by.hex(), "reason": r}
                   for i, (by, r) in sorted(v.hidden.items())},
        "rules": {"admit_vouches": v.rules.admit_vouches, "posts": v.rules.posts,
                  "replies": v.rules.replies},
        "newcomers": {m.hex(): _hex(vs) for m, vs in sorted(v.newcomers.items())},
        "intervals": {m.hex(): [list(s) for s in spans]
                      for m, spans in sorted(v.intervals.items())},
    }  # fmt: skip


def log_json(v: LabAuthority) -> list[dict[str, Any]]:
    return [{"id": e.id.hex(), "ts": e.ts, "by": None if e.by is None else e.by.hex(),
             "act": e.act, "effect": e.effect} for e in v.log]  # fmt: skip


def status_json(v: LabAuthority, objs: Iterable[objects.SignedObject]) -> dict[str, str]:
    return {o.id.hex(): v.status(o, member_of(o)) for o in objs}


class Scenario:
    def __init__(self, name: str, rule: str) -> None:
        self.name, self.rule = name, rule
        self.lab = kinds.create(ALICE, "lab", {"name": "Fablab Nord", "description": "",
                                               "place": "", "theme": ""}, t(0))  # fmt: skip
        self.objects: list[objects.SignedObject] = [self.lab]
        self.notes = ["the lab, by Alice"]
        self.effects: dict[bytes, str] = {}
        self.statuses: dict[bytes, str] = {}

    def dec(self, k: Ed25519PrivateKey, minutes: int, act: str, effect: str, note: str,
            ts: int | None = None, **fields: Any) -> objects.SignedObject:  # fmt: skip
        body = decision_body(self.lab.id, act, **fields)
        obj = kinds.create(k, "decision", body, t(minutes) if ts is None else ts)
        self.objects.append(obj)
        self.notes.append(note)
        self.effects[obj.id] = effect
        return obj

    def members_only(self) -> None:
        """The creator's `rules` {posts: queued}, as `lab_create` signs it for a new lab."""
        self.dec(ALICE, 0, "rules", "applied", "members only (a new lab's default)",
                 ts=t(0) + 1, rules={"posts": "queued"})  # fmt: skip

    def post(self, k: Ed25519PrivateKey, minutes: int, status: str, note: str,
             kind: str = "project") -> objects.SignedObject:  # fmt: skip
        body: dict[str, Any]
        if kind == "project":
            body = {"lab": self.lab.id, "title": note, "summary": "", "body": "",
                    "stage": "idea", "needs": []}  # fmt: skip
        else:
            body = {"lab": self.lab.id, "target": self.lab.id, "parent": None, "body": note}
        obj = kinds.create(k, kind, body, t(minutes))
        self.objects.append(obj)
        self.notes.append(note)
        self.statuses[obj.id] = status
        return obj

    def check(self) -> None:
        for order in (self.objects, self.objects[::-1], self.objects + self.objects[1:3]):
            v = play(order)
            got = {e.id: e.effect for e in v.log}
            assert got == self.effects, f"{self.name}: effects {got} != {self.effects}"
            for oid, want in self.statuses.items():
                obj = next(o for o in self.objects if o.id == oid)
                assert v.status(obj, member_of(obj)) == want, f"{self.name}: {want}"

    def render(self) -> dict[str, Any]:
        v = play(self.objects)
        return {"name": self.name, "rule": self.rule,
                "objects": [{"note": n, "kind": o.kind, "hex": o.raw.hex()}
                            for o, n in zip(self.objects, self.notes, strict=True)],
                "state": state_json(v), "log": log_json(v),
                "status": status_json(v, self.objects)}  # fmt: skip


def scenarios() -> list[Scenario]:
    out = []
    s = Scenario("steward/creator-alone", "governance: the creator is the one steward")
    s.members_only()
    s.dec(BOB, 1, "admit", "no_authority", "Bob admits himself", subject=B, role="member")
    s.dec(ALICE, 2, "admit", "applied", "Alice admits Bob", subject=B, role="member")
    s.dec(ALICE, 3, "admit", "no_effect", "again", subject=B, role="member")
    s.post(BOB, 4, "shown", "a member's project")
    s.post(CAROL, 4, "queued", "a newcomer's project")
    s.post(CAROL, 5, "shown", "a newcomer's comment", kind="comment")
    out.append(s)

    s = Scenario("rules/default-open", "governance: a lab with no rules decision is open")
    s.post(CAROL, 1, "shown", "a stranger's project")
    s.post(CAROL, 2, "shown", "a stranger's comment", kind="comment")
    s.dec(ALICE, 3, "rules", "no_effect", "posts shown: already so", rules={"posts": "shown"})
    out.append(s)

    s = Scenario("steward/two-need-both", "governance: proposals, threshold n//2+1")
    s.dec(ALICE, 1, "admit", "applied", "Alice alone makes Bob a steward (1 of 1)",
          subject=B, role="steward")  # fmt: skip
    s.dec(ALICE, 2, "remove", "pending", "Alice proposes removing Bob (1 of 2)",
          subject=B, role="steward")  # fmt: skip
    s.dec(ALICE, 3, "remove", "no_authority", "removing a steward as a member",
          subject=B, role="member")  # fmt: skip
    s.dec(ALICE, 4, "suspend", "no_authority", "suspending a steward", subject=B)
    out.append(s)

    s = Scenario("steward/majority", "governance: 2 of 3 remove a steward, who stays a member")
    s.dec(ALICE, 1, "admit", "applied", "Bob steward", subject=B, role="steward")
    c = s.dec(ALICE, 2, "admit", "applied", "Carol steward (2 of 2)", subject=C, role="steward")
    s.dec(BOB, 3, "endorse", "applied", "Bob endorses", target=c.id)
    rm = s.dec(ALICE, 4, "remove", "applied", "remove Carol as steward", subject=C,
               role="steward")  # fmt: skip
    s.dec(BOB, 5, "endorse", "applied", "2 of 3", target=rm.id)
    s.dec(CAROL, 6, "endorse", "no_authority", "Carol, no longer a steward", target=rm.id)
    s.dec(ALICE, 7, "endorse", "no_effect", "a decided proposal", target=rm.id)
    out.append(s)

    s = Scenario("steward/removed-then-deciding", "governance: a removed signer's later "
                 "decisions have no effect")  # fmt: skip
    s.members_only()
    s.dec(ALICE, 1, "admit", "applied", "Bob steward", subject=B, role="steward")
    rm = s.dec(ALICE, 2, "remove", "applied", "remove Bob as steward", subject=B,
               role="steward")  # fmt: skip
    s.dec(BOB, 3, "endorse", "applied", "Bob agrees (2 of 2)", target=rm.id)
    s.dec(ALICE, 4, "remove", "applied", "then as a member", subject=B, role="member")
    spam = s.post(BOB, 5, "queued", "Bob after his removal")
    s.post(BOB, 2, "shown", "Bob while a member")
    s.dec(BOB, 6, "hide", "no_authority", "Bob hides the lab", target=s.lab.id)
    s.dec(BOB, 7, "approve", "no_authority", "Bob approves himself", target=spam.id)
    out.append(s)

    s = Scenario("steward/backdated", "governance: a removed steward backdates; damage limits")
    s.dec(ALICE, 1, "admit", "applied", "Bob steward", subject=B, role="steward")
    c = s.dec(ALICE, 2, "admit", "applied", "Carol steward", subject=C, role="steward")
    s.dec(BOB, 2, "endorse", "applied", "2 of 2", target=c.id)
    rm = s.dec(ALICE, 10, "remove", "applied", "remove Bob", subject=B, role="steward")
    s.dec(CAROL, 11, "endorse", "applied", "2 of 3", target=rm.id)
    s.dec(BOB, 5, "remove", "pending", "Bob, backdated: remove Carol", subject=C,
          role="steward")  # fmt: skip
    p = s.post(DAN, 3, "shown", "Dan's project (approved back, then hidden, then unhidden)")
    s.dec(BOB, 6, "hide", "applied", "Bob, backdated: hide Dan's project", target=p.id)
    s.dec(BOB, 7, "approve", "applied", "Bob, backdated: approve it", target=p.id)
    s.dec(CAROL, 12, "unhide", "applied", "Carol undoes the hide", target=p.id)
    out.append(s)

    s = Scenario("members/vouches", "governance: admit_vouches distinct current members")
    s.members_only()
    s.dec(ALICE, 1, "admit", "applied", "Bob", subject=B, role="member")
    s.dec(ALICE, 1, "admit", "applied", "Carol", subject=C, role="member")
    s.dec(BOB, 2, "vouch", "applied", "Bob vouches for Dan", subject=D)
    s.dec(BOB, 3, "vouch", "no_effect", "Bob again", subject=D)
    s.dec(DAN, 3, "vouch", "no_authority", "Dan for himself", subject=D)
    s.dec(CAROL, 4, "vouch", "applied", "Carol: 2 vouches, Dan is in", subject=D)
    s.dec(BOB, 5, "vouch", "pending", "Bob vouches for Erin", subject=E)
    s.dec(ALICE, 6, "vouch", "no_effect", "Carol is a member", subject=C)
    s.post(ERIN, 7, "queued", "Erin waits")
    out.append(s)

    s = Scenario("rules/majority-and-queue", "governance: rules by proposal; classification")
    s.members_only()
    s.dec(ALICE, 1, "admit", "applied", "Bob steward", subject=B, role="steward")
    s.dec(ALICE, 2, "admit", "applied", "Carol member", subject=C, role="member")
    s.dec(CAROL, 3, "vouch", "applied", "Carol vouches for Erin", subject=E)
    r = s.dec(ALICE, 4, "rules", "applied", "one vouch, replies queued",
              rules={"admit_vouches": 1, "replies": "queued"})  # fmt: skip
    s.dec(BOB, 5, "endorse", "applied", "2 of 2: Erin admitted", target=r.id)
    s.dec(ALICE, 6, "rules", "no_effect", "nothing new", rules={"replies": "queued"})
    q = s.post(DAN, 7, "queued", "Dan's project")
    s.post(DAN, 7, "queued", "Dan's comment", kind="comment")
    a = s.post(DAN, 8, "shown", "Dan's approved project")
    s.dec(CAROL, 9, "approve", "applied", "Carol approves it", target=a.id)
    s.dec(DAN, 9, "approve", "no_authority", "Dan approves his own", target=q.id)
    out.append(s)

    s = Scenario("moderation/hide-suspend", "governance: hide, unhide, suspend, unsuspend")
    s.dec(ALICE, 1, "admit", "applied", "Bob", subject=B, role="member")
    h = s.post(BOB, 2, "hidden", "Bob's hidden project")
    s.dec(ALICE, 3, "hide", "applied", "spam", target=h.id, reason="spam")
    s.dec(ALICE, 4, "hide", "no_effect", "twice", target=h.id)
    s.dec(ALICE, 5, "suspend", "applied", "suspend Carol", subject=C)
    s.post(CAROL, 6, "hidden", "Carol's comment", kind="comment")
    s.dec(CAROL, 6, "vouch", "no_authority", "Carol, suspended, vouches", subject=D)
    s.dec(ALICE, 7, "unsuspend", "no_effect", "Bob was not suspended", subject=B)
    s.dec(ALICE, 8, "unhide", "no_effect", "not hidden", target=s.lab.id)
    out.append(s)

    s = Scenario("proposals/concurrent", "governance: (ts, id) order decides conflicts")
    s.dec(ALICE, 1, "admit", "applied", "Bob steward", subject=B, role="steward")
    c = s.dec(ALICE, 2, "admit", "applied", "Carol steward", subject=C, role="steward")
    s.dec(BOB, 2, "endorse", "applied", "2 of 2", target=c.id)
    p1 = s.dec(ALICE, 5, "remove", "pending", "Alice: remove Bob", subject=B, role="steward")
    p2 = s.dec(BOB, 5, "remove", "applied", "Bob: remove Alice", subject=A, role="steward")
    s.dec(CAROL, 6, "endorse", "applied", "Carol endorses Bob's first: Alice out", target=p2.id)
    s.dec(CAROL, 7, "endorse", "applied", "then Alice's: Alice is no steward", target=p1.id)
    out.append(s)

    s = Scenario("proposals/expiry", "governance: PROPOSAL_TTL_MS")
    s.members_only()
    s.dec(ALICE, 1, "admit", "applied", "Bob steward", subject=B, role="steward")
    r = s.dec(ALICE, 2, "rules", "pending", "posts shown, never endorsed in time",
              rules={"posts": "shown"})  # fmt: skip
    s.dec(BOB, 0, "endorse", "no_effect", "30 days and 1 ms later", target=r.id,
          ts=r.ts + PROPOSAL_TTL_MS + 1)  # fmt: skip
    s.dec(BOB, 3, "endorse", "pending", "a proposal not held", target=TARGET)
    s.post(DAN, 4, "queued", "Dan's project")
    out.append(s)

    s = Scenario("proposals/steward-change", "governance: a waiting proposal re-checks when "
                 "the stewards change; the last steward stays")  # fmt: skip
    s.dec(ALICE, 1, "admit", "applied", "Bob steward", subject=B, role="steward")
    r = s.dec(ALICE, 3, "rules", "applied", "replies queued (1 of 2, then 1 of 1)",
              rules={"replies": "queued"})  # fmt: skip
    rm = s.dec(BOB, 4, "remove", "applied", "Bob leaves", subject=B, role="steward")
    s.dec(ALICE, 5, "endorse", "applied", "2 of 2: Bob out, Alice's rules apply", target=rm.id)
    s.dec(ALICE, 6, "remove", "no_effect", "the last steward", subject=A, role="steward")
    s.dec(ALICE, 7, "endorse", "no_effect", "a decided proposal", target=r.id)
    s.post(BOB, 8, "shown", "Bob's comment: still a member", kind="comment")
    s.post(DAN, 8, "queued", "Dan's comment", kind="comment")
    out.append(s)

    s = Scenario("acts/unknown-and-early", "governance: unknown acts, roles; before the lab")
    s.dec(ALICE, 1, "elect", "unknown_act", "a later release's act", subject=B)
    s.dec(ALICE, 2, "admit", "unknown_act", "a later release's role", subject=B, role="mentor")
    s.dec(ALICE, 0, "admit", "no_authority", "before the lab", ts=t(0) - 1, subject=C,
          role="member")  # fmt: skip
    out.append(s)
    return out


def corpus() -> dict[str, Any]:
    return corpus_files.build(FORMAT, NOW_MS, _objects(), _verdict, scenarios())


def render() -> str:
    return corpus_files.to_json(corpus())


def main() -> None:
    corpus_files.write(OUT, render())


if __name__ == "__main__":
    main()
