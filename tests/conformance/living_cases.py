"""The living-projects half of the conformance corpus: docs/conformance/living.json.

Two parts (docs/protocol.md §3.3):
- `objects`: project (version 3), revision and pledge bodies at the edges of their schemas,
  as bytes and the verdict a receiver must reach (the format of objects.json);
- `scenarios`: a project, revisions of it and other objects (retractions, a comment, another
  project's revision), and the visible state and history a node must show once it holds all of
  them, in any order. Every author key is its own member (no device certificates).
  The effects are written here by hand, from the rules, and checked against
  protocols/project_history.py when the file is generated and by the suite.
Deterministic: `python -m tests.conformance.living_cases` rewrites the file byte for byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import errors, kinds, objects
from protocols.project_history import HistoryEntry, ProjectHistory, ProjectState, RevisionRecord
from tests.conformance import corpus_files

FORMAT = "percolab-conformance-living/1"
OUT = Path(__file__).resolve().parents[2] / "docs" / "conformance" / "living.json"
NOW_MS = 1_767_225_600_000
T0 = NOW_MS - 86_400_000
MIN = 60_000
LAB = hashlib.sha256(b"percolab/conformance/lab").digest()
OTHER_LAB = hashlib.sha256(b"percolab/conformance/other-lab").digest()
TARGET = hashlib.sha256(b"percolab/conformance/target").digest()
MISSING = hashlib.sha256(b"percolab/conformance/missing-revision").digest()


def key(name: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(b"percolab/conformance/living/" + name.encode()).digest()
    )


ALICE, BOB, CAROL, XAVIER = key("alice"), key("bob"), key("carol"), key("stranger")


def pub(k: Ed25519PrivateKey) -> bytes:
    return objects.public_key_bytes(k)


def t(minutes: int) -> int:
    return T0 + minutes * MIN


def _json(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value


# ---- part 1: schemas ---------------------------------------------------------------------


def _objects() -> list[dict[str, str]]:
    def project(**c: Any) -> dict[str, Any]:
        return {"lab": LAB, "title": "Open stout", "summary": "", "body": "", "stage": "idea",
                "needs": []} | c  # fmt: skip

    def revision(**c: Any) -> dict[str, Any]:
        return {"lab": LAB, "target": TARGET, "supersedes": [TARGET],
                "set": {"stage": "design"}} | c  # fmt: skip

    def pledge(**c: Any) -> dict[str, Any]:
        return {"lab": LAB, "target": TARGET, "type": "build"} | c

    derive = {"project": TARGET, "how": "remix", "note": "a darker roast"}
    cases: list[tuple[str, str, dict[str, Any], type[errors.ObjectError] | None]] = [
        ("project/v3-all-fields", "project", project(licence="CC-BY-SA-4.0",
         coauthors=[pub(BOB)], derives=[derive]), None),
        ("project/licence-expression", "project",
         project(licence="(MIT OR Apache-2.0) AND CERN-OHL-S-2.0"), None),
        ("project/licence-with-exception", "project",
         project(licence="GPL-2.0-or-later WITH Classpath-exception-2.0"), None),
        ("project/licence-unknown-id", "project", project(licence="Beerware-42"), None),
        ("project/licence-ref", "project", project(licence="LicenseRef-our-brewery"), None),
        ("project/licence-all-rights-reserved", "project",
         project(licence="all rights reserved"), None),
        ("project/licence-empty", "project", project(licence=""), None),
        ("project/licence-lowercase-operator", "project", project(licence="MIT or ISC"),
         errors.BadValue),
        ("project/licence-dangling-operator", "project", project(licence="MIT AND"),
         errors.BadValue),
        ("project/licence-65-chars", "project", project(licence="A" * 65), errors.StringTooLong),
        ("project/coauthors-17", "project",
         project(coauthors=[bytes([i]) * 32 for i in range(17)]), errors.TooManyItems),
        ("project/coauthors-duplicate", "project", project(coauthors=[pub(BOB)] * 2),
         errors.BadValue),
        ("project/derive-unknown-how", "project",
         project(derives=[derive | {"how": "brewed"}]), None),
        ("project/derive-extra-key", "project", project(derives=[derive | {"x": 1}]), None),
        ("project/derive-how-uppercase", "project", project(derives=[derive | {"how": "Fork"}]),
         errors.BadValue),
        ("project/derive-same-project-twice", "project", project(derives=[derive, derive]),
         errors.BadValue),
        ("project/derive-no-project", "project", project(derives=[{"how": "fork"}]),
         errors.MissingField),
        ("revision/minimal", "revision", revision(), None),
        ("revision/public-with-note", "revision", revision(lab=None, note="typo"), None),
        ("revision/unknown-field-in-set", "revision",
         revision(set={"stage": "done", "recipe_og": 1064}), None),
        ("revision/only-unknown-fields", "revision", revision(set={"recipe_og": 1064}), None),
        ("revision/empty-set", "revision", revision(set={}), errors.TooManyItems),
        ("revision/set-17-fields", "revision", revision(set={f"f{i:02}": i for i in range(17)}),
         errors.TooManyItems),
        ("revision/set-bad-stage", "revision", revision(set={"stage": "brewing"}),
         errors.BadValue),
        ("revision/set-empty-title", "revision", revision(set={"title": " "}),
         errors.EmptyString),
        ("revision/no-supersedes", "revision", revision(supersedes=[]), errors.TooManyItems),
        ("revision/supersedes-17", "revision",
         revision(supersedes=[bytes([i]) * 32 for i in range(17)]), errors.TooManyItems),
        ("revision/supersedes-duplicate", "revision", revision(supersedes=[TARGET] * 2),
         errors.BadValue),
        ("revision/no-target", "revision", {"lab": LAB, "supersedes": [TARGET],
         "set": {"stage": "done"}}, errors.MissingField),
        ("pledge/minimal", "pledge", pledge(), None),
        ("pledge/need-and-note", "pledge", pledge(need="a fermenter", note="50 l\nsteel"), None),
        ("pledge/unknown-type", "pledge", pledge(type="brew"), None),
        ("pledge/type-with-dash", "pledge", pledge(type="co-fund"), errors.BadValue),
        ("pledge/note-501", "pledge", pledge(note="x" * 501), errors.StringTooLong),
    ]  # fmt: skip
    out = []
    for name, kind, body, err in cases:
        raw = objects.sign(ALICE, kind, NOW_MS - MIN, body).raw
        case = {"name": name, "rule": "§3.3", "hex": raw.hex(),
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


def play(project: objects.SignedObject, objs: Iterable[objects.SignedObject],
         query: bool = False) -> ProjectHistory:  # fmt: skip
    """What a node does with a scenario's objects as they arrive (docs/protocol.md §3.3): the
    project (the scenario's first object) opens the history; a revision of it is added (its
    member: here its author key); a retraction of a held revision by the same author withdraws
    it; any other object held is foreign (if a revision names it, that link is forged).
    `query`: ask for the state after each object."""
    held: dict[bytes, objects.SignedObject] = {}
    h = ProjectHistory(project.id, project.author, project.body["lab"], project.body)

    def revision_of_p(o: objects.SignedObject) -> bool:
        return o.kind == "revision" and o.body["target"] == project.id

    retracted: set[bytes] = set()
    for o in objs:
        held[o.id] = o
        for r in held.values():  # retractions take effect when both are held
            tgt = r.body.get("target") if r.kind == "retraction" else None
            if tgt in held and held[tgt].author == r.author and tgt not in retracted:
                retracted.add(tgt)
                h.remove(tgt)
                h.mark_gone([tgt])
        if revision_of_p(o) and o.id not in retracted:
            h.add(RevisionRecord.of(o, o.author))
        elif not revision_of_p(o) and o.id != project.id:
            h.mark_foreign([o.id])
        if query:  # what a node shows in between (the incremental path)
            h.state()
    return h


def state_json(s: ProjectState) -> dict[str, Any]:
    return {"fields": _json(dict(s.fields)), "authors": sorted(a.hex() for a in s.authors),
            "heads": _json(s.heads), "applied": s.applied, "revised_ts": s.revised_ts}  # fmt: skip


def history_json(entries: list[HistoryEntry]) -> list[dict[str, Any]]:
    return [{"id": e.id.hex(), "ts": e.ts, "member": _json(e.member),
             "supersedes": _json(e.supersedes), "note": e.note, "effect": e.effect,
             "changes": {k: _json(list(v)) for k, v in e.changes.items()}}
            for e in entries]  # fmt: skip


class Scenario:
    def __init__(self, name: str, rule: str, creator: Ed25519PrivateKey = ALICE,
                 **fields: Any) -> None:  # fmt: skip
        self.name, self.rule = name, rule
        body = {"lab": LAB, "title": "Open stout", "summary": "", "body": "", "stage": "idea",
                "needs": ["fermenter"]} | fields  # fmt: skip
        self.project = kinds.create(creator, "project", body, t(0))
        self.objects: list[objects.SignedObject] = [self.project]
        self.notes: list[str] = ["the project"]
        self.effects: dict[bytes, str] = {}
        self.fields: dict[str, Any] = {}

    def rev(self, k: Ed25519PrivateKey, minutes: int, sup: list[objects.SignedObject | bytes],
            effect: str, note: str, lab: bytes | None = LAB, **changes: Any,
            ) -> objects.SignedObject:  # fmt: skip
        links = [s if isinstance(s, bytes) else s.id for s in sup]
        body = {"lab": lab, "target": self.project.id, "supersedes": links, "set": changes,
                "note": note}  # fmt: skip
        obj = kinds.create(k, "revision", body, t(minutes))
        self.add(obj, note)
        self.effects[obj.id] = effect
        return obj

    def add(self, obj: objects.SignedObject, note: str) -> None:
        self.objects.append(obj)
        self.notes.append(note)

    def expect(self, **fields: Any) -> Scenario:
        self.fields = fields
        return self

    def check(self) -> None:
        for order in (self.objects, self.objects[::-1]):
            h = play(self.project, order)
            got = {e.id: e.effect for e in h.history()}
            want = {i: e for i, e in self.effects.items() if e != "gone"}
            assert got == want, f"{self.name}: effects {got} != {want}"
            for name, value in self.fields.items():
                assert h.state().fields[name] == value, f"{self.name}: {name}"

    def render(self) -> dict[str, Any]:
        h = play(self.project, self.objects)
        return {"name": self.name, "rule": self.rule,
                "objects": [{"note": n, "kind": o.kind, "hex": o.raw.hex()}
                            for o, n in zip(self.objects, self.notes, strict=True)],
                "state": state_json(h.state()), "history": history_json(h.history())}  # fmt: skip


def scenarios() -> list[Scenario]:
    out = []
    s = Scenario("revisions/linear", "§3.3 rule 3: the creator edits on top")
    r1 = s.rev(ALICE, 1, [s.project], "applied", "stage", stage="design")
    s.rev(ALICE, 2, [r1], "applied", "body and licence", body="Mash at 67 °C", licence="CC0-1.0")
    out.append(s.expect(stage="design", licence="CC0-1.0"))

    s = Scenario("revisions/concurrent", "§3.3 rule 2-3: per-field last writer in (ts, id)",
                 coauthors=[pub(BOB)])
    s.rev(ALICE, 5, [s.project], "applied", "Alice", stage="prototype", title="Stout")
    s.rev(BOB, 4, [s.project], "applied", "Bob, offline", stage="testing", body="Bob's")
    out.append(s.expect(stage="prototype", title="Stout", body="Bob's"))
    s2 = Scenario("revisions/concurrent-then-merged", "§3.3 heads", coauthors=[pub(BOB)])
    a = s2.rev(ALICE, 5, [s2.project], "applied", "Alice", stage="prototype")
    b = s2.rev(BOB, 4, [s2.project], "applied", "Bob", stage="testing", body="Bob's")
    s2.rev(BOB, 6, [a, b], "applied", "merge", stage="running")
    out.append(s2.expect(stage="running", body="Bob's"))

    s = Scenario("authority/stranger", "§3.3 rule 3: not an author")
    s.rev(XAVIER, 1, [s.project], "not_author", "vandal", title="Buy pills")
    out.append(s.expect(title="Open stout"))

    s = Scenario("authority/coauthor-added-later", "§3.3 rule 3: authors at that point")
    s.rev(CAROL, 1, [s.project], "not_author", "too early", stage="design")
    add = s.rev(ALICE, 2, [s.project], "applied", "adds Carol", coauthors=[pub(CAROL)])
    s.rev(CAROL, 3, [add], "applied", "Carol edits", stage="testing")
    out.append(s.expect(stage="testing", coauthors=[pub(CAROL)]))

    s = Scenario("authority/removed-then-revising", "§3.3 rule 3: removed", coauthors=[pub(BOB)])
    rm = s.rev(ALICE, 2, [s.project], "applied", "removes Bob", coauthors=[])
    s.rev(BOB, 3, [rm], "not_author", "Bob after", stage="paused")
    out.append(s.expect(stage="idea", coauthors=[]))

    s = Scenario("authority/removed-concurrently", "§3.3 rule 4: removal fence",
                 coauthors=[pub(BOB)])
    rm = s.rev(ALICE, 10, [s.project], "applied", "removes Bob", coauthors=[])
    s.rev(BOB, 1, [s.project], "removed_concurrently", "backdated", stage="paused")
    out.append(s.expect(stage="idea"))

    s = Scenario("links/forged", "§3.3 rule 1: a link to an object that is no revision of P")
    comment = kinds.create(BOB, "comment", {"lab": LAB, "target": s.project.id, "parent": None,
                                            "body": "cheers"}, t(1))  # fmt: skip
    s.add(comment, "a comment on the project")
    f = s.rev(ALICE, 2, [s.project, comment], "forged_link", "names a comment", stage="done")
    s.rev(ALICE, 3, [f], "applied", "on top of it", title="Stout 2")
    out.append(s.expect(stage="idea", title="Stout 2"))

    s = Scenario("links/waiting", "§3.3 rule 1: a superseded id not held")
    w = s.rev(ALICE, 2, [MISSING], "waiting", "its parent is missing", stage="done")
    s.rev(ALICE, 3, [w], "waiting", "waits too", title="Later")
    s.rev(ALICE, 1, [s.project], "applied", "stands", summary="Dark")
    out.append(s.expect(stage="idea", summary="Dark"))

    s = Scenario("links/retracted", "§3.3 rule 1: a withdrawn revision's children stand")
    r1 = s.rev(ALICE, 1, [s.project], "gone", "withdrawn", stage="design", body="old")
    s.rev(ALICE, 2, [r1], "applied", "stands", title="Stout")
    s.add(kinds.create(ALICE, "retraction", {"lab": LAB, "target": r1.id}, t(3)), "retracts r1")
    s.add(kinds.create(BOB, "retraction", {"lab": LAB, "target": s.objects[2].id}, t(3)),
          "Bob cannot retract Alice's revision")  # fmt: skip
    out.append(s.expect(stage="idea", body="", title="Stout"))

    s = Scenario("scope/wrong-lab", "§3.3 rule 3: the project's lab")
    s.rev(ALICE, 1, [s.project], "wrong_lab", "other lab", lab=OTHER_LAB, stage="done")
    s.rev(ALICE, 2, [s.project], "wrong_lab", "no lab", lab=None, stage="done")
    out.append(s.expect(stage="idea"))

    s = Scenario("fields/creator-and-unknown", "§3.3 rule 3: the creator is no co-author",
                 coauthors=[pub(ALICE), pub(BOB)])
    s.rev(BOB, 1, [s.project], "applied", "drops Alice (ignored)", coauthors=[pub(BOB)],
          recipe_og=1064)  # fmt: skip
    other = kinds.create(ALICE, "project", {"lab": LAB, "title": "Other", "summary": "",
                         "body": "", "stage": "idea", "needs": []}, t(0))  # fmt: skip
    s.add(other, "another project")
    s.rev(ALICE, 3, [s.objects[1], other], "forged_link", "names another project", stage="done")
    out.append(s.expect(coauthors=[pub(BOB)], stage="idea"))
    return out


def corpus() -> dict[str, Any]:
    return corpus_files.build(FORMAT, NOW_MS, _objects(), _verdict, scenarios())


def render() -> str:
    return corpus_files.to_json(corpus())


def main() -> None:
    corpus_files.write(OUT, render())


if __name__ == "__main__":
    main()
