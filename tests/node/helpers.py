"""Object factories and the store consistency checker shared by the node tests."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.store.read import U64, u64
from node.store.store import Store
from protocols import errors, kinds
from protocols.objects import SignedObject, decode, object_id
from protocols.search import words_of

T0 = 1_700_000_000_000
NOW = T0 + 10**9  # "now" for ingest: every generated ts is in its past


def key_from(seed: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest())


_CLOCK = itertools.count(T0 + 1)


@dataclass
class Member:
    """Signs objects; timestamps increase across all members (one shared clock)."""

    key: Ed25519PrivateKey

    def make(self, kind: str, body: dict[str, Any], ts: int | None = None) -> SignedObject:
        return kinds.create(self.key, kind, body, next(_CLOCK) if ts is None else ts)

    def lab(self, name: str = "Fablab") -> SignedObject:
        return self.make("lab", {"name": name, "description": "", "place": "", "theme": ""})

    def project(self, lab: SignedObject, title: str, summary: str = "", **kw: Any) -> SignedObject:
        body = {"lab": lab.id, "title": title, "summary": summary, "body": "", "stage": "idea",
                "needs": []} | kw  # fmt: skip
        return self.make("project", body)

    def comment(self, target: SignedObject, text: str, parent: SignedObject | None = None):
        lab = target.body.get("lab") if target.kind != "lab" else target.id
        return self.make(
            "comment",
            {
                "lab": lab,
                "target": target.id,
                "parent": parent.id if parent else None,
                "body": text,
            },
        )

    def tag(self, target: SignedObject, *labels: str) -> SignedObject:
        lab = target.body.get("lab") if target.kind != "lab" else target.id
        return self.make("tag", {"lab": lab, "target": target.id, "labels": list(labels)})

    def retract(self, target: SignedObject) -> SignedObject:
        lab = target.body.get("lab") if target.kind != "lab" else target.id
        return self.make("retraction", {"lab": lab, "target": target.id})

    def profile(self, name: str) -> SignedObject:
        return self.make("profile", {"name": name, "about": ""})


def member(seed: str) -> Member:
    return Member(key_from(seed))


# ---- consistency ---------------------------------------------------------------------------

INDEXES = ("by_kind", "by_author", "by_lab", "by_target", "sync", "words", "tagwords", "active",
           "revisions", "derives", "decisions")


def _expand_word_blocks(blocks: dict[bytes, bytes]) -> tuple[dict[bytes, bytes], list[str]]:
    """The word blocks (node/store/word_index.py) as one entry `word + 0 + seq` per project, and
    the problems of the layout: a block with seqs above its key, out of order, or reaching
    into the range of the block before it."""
    entries: dict[bytes, bytes] = {}
    problems: list[str] = []
    prev_word, prev_last = b"", b""
    for key in sorted(blocks):
        word, last = key[:-8], key[-8:]
        seqs = [blocks[key][i : i + 8] for i in range(0, len(blocks[key]), 8)]
        if not seqs or seqs != sorted(set(seqs)) or seqs[-1] > last:
            problems.append(f"words: stale block {key.hex()} (empty, unsorted or above its key)")
        if word == prev_word and seqs and seqs[0] <= prev_last:
            problems.append(f"words: stale block {key.hex()} (overlaps the block before it)")
        for seq in seqs:
            entries[word + seq] = b""
        prev_word, prev_last = word, last
    return entries, problems


def check_consistency(store: Store) -> list[str]:
    """Every index entry points at a stored live object, and every stored live object has
    all its index entries (and counters agree). Returns the problems found (empty = good)."""
    problems: list[str] = []
    db = store.db
    with store.read() as txn:
        objs: dict[bytes, bytes] = dict(txn.cursor(db=db["objects"]))
        ids: dict[bytes, bytes] = dict(txn.cursor(db=db["ids"]))
        ids_new: dict[bytes, bytes] = dict(txn.cursor(db=db["ids_new"]))
        problems += [f"id {k.hex()[:12]} in both ids and ids_new" for k in ids.keys() & ids_new]
        ids |= ids_new
        tomb: dict[bytes, bytes] = dict(txn.cursor(db=db["tomb"]))
        actual = {name: dict(txn.cursor(db=db[name])) for name in INDEXES}
        actual["words"], block_problems = _expand_word_blocks(actual["words"])
        problems += block_problems
        labels_db = {k.decode(): U64.unpack(v)[0] for k, v in txn.cursor(db=db["labels"])}
        by_label = set(dict(txn.cursor(db=db["by_label"])))
        label_target = dict(txn.cursor(db=db["label_target"]))
        orphan_tags = dict(txn.cursor(db=db["orphan_tags"]))
        meta = dict(txn.cursor(db=db["meta"]))
        unindexed = {k: v.decode() for k, v in txn.cursor(db=db["unindexed"])}

    live: dict[bytes, SignedObject] = {}
    for seq, raw in objs.items():
        if raw:
            obj = decode(raw)
            live[seq] = obj
            if ids.get(obj.id) != seq:
                problems.append(f"object seq {U64.unpack(seq)[0]} has no ids entry")
    seqs_with_id = set()
    for oid, seq in ids.items():
        seqs_with_id.add(seq)
        if seq not in objs:
            problems.append(f"ids {oid.hex()[:12]} points at no object")
        elif objs[seq]:
            if object_id(objs[seq]) != oid:
                problems.append(f"ids {oid.hex()[:12]} points at another object")
        elif oid not in tomb:
            problems.append(f"{oid.hex()[:12]} was withdrawn without a tombstone")
    for seq in objs:
        if seq not in seqs_with_id:
            problems.append(f"object seq {U64.unpack(seq)[0]} is not in ids")
    for oid, rid in tomb.items():
        if oid in ids and objs.get(ids[oid]):
            problems.append(f"{oid.hex()[:12]} has a tombstone but is live")
        if rid not in ids:
            problems.append(f"tombstone of {oid.hex()[:12]} names an unknown retraction")

    def seq_of(oid: bytes) -> int:
        return U64.unpack(ids[oid])[0]

    def indexed(seq: bytes, o: SignedObject) -> bool:
        """A retraction whose target was live and not the author's own is stored unindexed."""
        if o.kind != "retraction":
            return True
        target = o.body["target"]
        if target not in ids or seq_of(target) > U64.unpack(seq)[0]:
            return True  # arrived first: pending, indexed
        rid = tomb.get(target)
        if rid is None:
            return False
        return rid == o.id or seq_of(rid) < U64.unpack(seq)[0]

    expected: dict[str, dict[bytes, bytes]] = {name: {} for name in INDEXES}
    counts: dict[str, int] = {}
    tags_per_label_target: dict[bytes, int] = {}
    live_tags: list[tuple[bytes, SignedObject]] = []
    projects: dict[bytes, SignedObject] = {}
    problems += [f"unindexed mark on seq {U64.unpack(k)[0]}, not live" for k in unindexed.keys()
                 - live.keys()]  # fmt: skip
    for seq, o in live.items():
        code = unindexed.get(seq)
        if code is not None:  # opaque or hidden: a reconciliation key and a counter only
            expected["sync"][kinds.scope_of(o.body) + u64(o.ts) + o.id] = b""
            name = "count:~" + errors.layer_of(code).value
            counts[name] = counts.get(name, 0) + 1
            continue
        if not indexed(seq, o):  # reconciled all the same
            expected["sync"][kinds.scope_of(o.body) + u64(o.ts) + o.id] = b""
            continue
        spec = kinds.kind_spec(o.kind)
        ts, kind, scope = u64(o.ts), o.kind.encode() + b"\0", spec.scope(o.body)
        expected["by_kind"][kind + ts + seq] = b""
        expected["by_author"][o.author + ts + seq] = b""
        expected["sync"][scope + ts + o.id] = b""
        if spec.lab_field is not None:
            expected["by_lab"][scope + kind + ts + seq] = b""
        target = o.body.get(spec.target_field) if spec.target_field else None
        if isinstance(target, bytes):
            if o.kind == "revision":  # a project's revisions: their own range (issue 23)
                expected["revisions"][target + ts + seq] = scope
            else:
                expected["by_target"][target + ts + seq] = kind + scope
            if o.kind in ("comment", "tag", "revision", "pledge"):  # the activity log
                expected["active"][scope + ts + target + seq] = b""
        if o.kind == "decision":  # a lab's decisions in replay order (issue 24)
            expected["decisions"][o.body["lab"] + ts + o.id] = seq
        if o.kind in ("project", "revision"):  # what it derives from, and its new words
            named = o.body.get("derives") if o.kind == "project" else o.body["set"].get("derives")
            for d in named or ():
                expected["derives"][d["project"] + seq] = b""
        if o.kind == "revision":
            changes = o.body["set"]
            for name in ("title", "summary"):
                if isinstance(changes.get(name), str):
                    for w in words_of(changes[name]):
                        expected["words"][w.encode() + b"\0" + seq] = b""
        for name in ("count:*", "count:" + o.kind):
            counts[name] = counts.get(name, 0) + 1
        if o.kind == "project":
            projects[o.id] = o
            expected["active"][scope + ts + o.id + seq] = b""
            counts[f"lab:{scope.hex()}"] = counts.get(f"lab:{scope.hex()}", 0) + 1
            for w in words_of(o.body["title"]) | words_of(o.body["summary"]):
                expected["words"][w.encode() + b"\0" + seq] = b""
        if o.kind == "tag" and isinstance(target, bytes):
            live_tags.append((seq, o))
            for label in o.body["labels"]:
                key = label.encode() + b"\0" + target
                tags_per_label_target[key] = tags_per_label_target.get(key, 0) + 1

    # A tag's labels are search words of the live project it tags, whatever came first.
    for seq, o in live_tags:
        target = o.body["target"]
        if target in projects:
            for label in o.body["labels"]:
                expected["tagwords"][label.encode() + b"\0" + ids[target] + seq] = b""
    # orphan_tags: live tags whose target is no live project; those whose target is not
    # stored at all must be there (a tag on a since-withdrawn project may be or not).
    orphans = set(orphan_tags)
    maybe = {o.body["target"] + seq for seq, o in live_tags if o.body["target"] not in projects}
    must = {o.body["target"] + seq for seq, o in live_tags if o.body["target"] not in ids}
    problems += [f"orphan_tags: stale entry {k.hex()}" for k in orphans - maybe]
    problems += [f"orphan_tags: missing entry {k.hex()}" for k in must - orphans]
    label_counts: dict[str, int] = {}
    for key in tags_per_label_target:
        label = key[:-33].decode()
        label_counts[label] = label_counts.get(label, 0) + 1
    rows = {k: U64.unpack(v[:8])[0] for k, v in label_target.items()}
    if rows != tags_per_label_target:
        problems.append(f"label_target rows {len(rows)} != live (label, target) pairs "
                        f"{len(tags_per_label_target)}")  # fmt: skip
    exp_by_label = {k[:-32] + label_target[k][8:] + k[-32:] for k in label_target}
    problems += [f"by_label: missing entry {k.hex()}" for k in exp_by_label - by_label]
    problems += [f"by_label: stale entry {k.hex()}" for k in by_label - exp_by_label]
    for name in INDEXES:
        for key in actual[name].keys() - expected[name].keys():
            problems.append(f"{name}: stale entry {key.hex()} (no live object)")
        for key in expected[name].keys() - actual[name].keys():
            problems.append(f"{name}: missing entry {key.hex()}")
        for key in actual[name].keys() & expected[name].keys():
            if actual[name][key] != expected[name][key]:
                problems.append(f"{name}: wrong value at {key.hex()}")
    if labels_db != label_counts:
        problems.append(f"label counts {labels_db} != live tags' labels {label_counts}")
    stored_counts = {
        k.decode(): U64.unpack(v)[0] for k, v in meta.items()
        if k.startswith((b"count:", b"lab:")) and U64.unpack(v)[0] != 0
    }  # fmt: skip
    if stored_counts != counts:
        problems.append(f"counters {stored_counts} != live objects {counts}")
    return problems
