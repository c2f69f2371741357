"""The index entries of one object, added or removed: the part of `Store`'s writes that knows
what each kind indexes (node/store/store.py has the layout and the batch; this mixin is the
per-object work inside a batch's write transaction)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from node.store import word_index
from node.store.read import U64, StoreReader, prefix_keys, u64
from node.store.sync_index import BucketDeltas
from node.store.word_index import PROJECT_KIND_BYTES, WordBlocks, project_words
from protocols import kinds
from protocols.objects import SignedObject, decode


class IndexWriter(StoreReader):
    """The per-object index work of `Store` (its subclass), which keeps the batch state
    declared here and flushes it."""

    _deferred: defaultdict[str, list[Any]]
    _sync_deltas: BucketDeltas
    _words: WordBlocks
    _orphans_any: bool

    def _flush(self, txn: Any) -> None:
        """Write the batch's deferred entries (`Store._flush`)."""
        raise NotImplementedError

    def _index(
        self, txn: Any, o: SignedObject, spec: kinds.KindSpec, seq: bytes, add: bool
    ) -> None:
        entries, words, tseq = self._entries(txn, o, spec, seq, add)
        if add:
            deferred = self._deferred
            for db, key, value in entries:
                deferred[db].append((key, value) if value else key)
            if words:
                self._words.add(words, seq)
            self._sync_deltas.note(entries[2][1], True)
        else:
            self._flush(txn)
            for db, key, _ in entries:
                if txn.delete(key, db=self.db[db]) and db == "sync":
                    self._sync_deltas.note(key, False)
            for w in words:
                word_index.remove(txn, self.db["words"], w + b"\0", seq)
            if o.kind == "project":
                self._unword_tags(txn, o.id, seq)
            elif o.kind == "tag" and isinstance(target := o.body.get("target"), bytes):
                txn.delete(target + seq, db=self.db["orphan_tags"])  # if it was one
            elif o.kind == "profile" and txn.get(o.author, db=self.db["profiles"]) == seq:
                self._repoint_profile(txn, o.author)
        if o.kind == "profile" and add:
            old = txn.get(o.author, db=self.db["profiles"])
            if old is None or self._ts_of(txn, old) <= o.ts:
                txn.put(o.author, seq, db=self.db["profiles"])
        elif o.kind == "project" and add:
            self._adopt_tags(txn, o.id, seq)
        elif o.kind == "tag" and add and tseq is None:
            target = o.body.get("target")
            if isinstance(target, bytes):  # its project may come later: _adopt_tags
                txn.put(target + seq, b"", db=self.db["orphan_tags"])
                self._orphans_any = True

    def _entries(
        self, txn: Any, o: SignedObject, spec: kinds.KindSpec, seq: bytes, add: bool
    ) -> tuple[list[tuple[str, bytes, bytes]], set[bytes], bytes | None]:
        """The index entries of one object: (db, key, value) triples (the third is always
        the ``sync`` key), a project's search words, and for a tag its live project's seq."""
        ts = U64.pack(o.ts)
        kind = _kind_key(o.kind)
        scope = spec.scope(o.body)
        entries = [
            ("by_kind", kind + ts + seq, b""),
            ("by_author", o.author + ts + seq, b""),
            ("sync", scope + ts + o.id, b""),
        ]
        if spec.lab_field is not None:
            entries.append(("by_lab", scope + kind + ts + seq, b""))
        if o.kind == "decision":  # a lab's decisions in replay order (node/service/governance)
            entries.append(("decisions", _decision_key(o), seq))
        target = o.body.get(spec.target_field) if spec.target_field else None
        if isinstance(target, bytes):
            if o.kind == "revision":  # a project's revisions have their own range
                entries.append(("revisions", target + ts + seq, scope))
            else:
                entries.append(("by_target", target + ts + seq, kind + scope))
        words: set[bytes] = set()
        tseq = None
        if o.kind == "project":
            entries.append(("active", scope + ts + o.id + seq, b""))
            words = project_words(o.body["title"], o.body["summary"])
            entries += _derives_entries(o.body.get("derives"), seq)
        elif o.kind == "revision" and isinstance(target, bytes):
            # A revision is activity of its project; its new title and summary words lead
            # search to the project (which is shown only if its current text matches), and
            # the projects its `derives` names find it as a descendant (node/service).
            entries.append(("active", scope + ts + target + seq, b""))
            changes = o.body["set"]
            title, summary = changes.get("title"), changes.get("summary")
            words = project_words(title if isinstance(title, str) else "",
                                  summary if isinstance(summary, str) else "")  # fmt: skip
            entries += _derives_entries(changes.get("derives"), seq)
        elif o.kind == "pledge" and isinstance(target, bytes):
            entries.append(("active", scope + ts + target + seq, b""))
        elif o.kind in ("comment", "tag") and isinstance(target, bytes):
            # Append-only activity log: "most active" needs no read-modify-write per comment.
            entries.append(("active", scope + ts + target + seq, b""))
            if o.kind == "tag":
                # Labels are search words of the project they tag, while both are live (a
                # project that comes later adopts them: _adopt_tags).
                tseq = self._project_seq(txn, target)
                for label in o.body["labels"]:
                    entries += self._label_target(txn, label, target, o.ts, add)
                    if tseq is not None:
                        entries.append(("tagwords", label.encode() + b"\0" + tseq + seq, b""))
        return entries, words, tseq

    def _project_seq(self, txn: Any, oid: bytes) -> bytes | None:
        """The sequence of `oid` if it is a live project stored here (this batch included)."""
        seq = self.seq_of(txn, oid)
        if seq is None:
            return None
        raw = txn.get(seq, db=self.db["objects"])
        # Canonical bytes: 0x96, v=1, then kind as fixstr: "project" is a7 70 72 6f 6a 65 63 74.
        return bytes(seq) if raw is not None and raw[2:10] == PROJECT_KIND_BYTES else None

    def _label_target(
        self, txn: Any, label: str, target: bytes, ts: int, add: bool
    ) -> list[tuple[str, bytes, bytes]]:
        """Count tag objects per (label, target); the by_label entry and the label's count
        of tagged objects change only when the first tag comes or the last one goes."""
        key = label.encode() + b"\0" + target
        raw = txn.get(key, db=self.db["label_target"])
        n, first = (U64.unpack(raw[:8])[0], raw[8:]) if raw else (0, u64(ts))
        n += 1 if add else -1
        if n > 0:
            txn.put(key, u64(n) + first, db=self.db["label_target"])
        else:
            txn.delete(key, db=self.db["label_target"])
        if (add and n == 1) or (not add and n == 0):
            self._bump_label(txn, label, 1 if add else -1)
            return [("by_label", label.encode() + b"\0" + first + target, b"")]
        return []

    def _adopt_tags(self, txn: Any, pid: bytes, seq: bytes) -> None:
        """Tags that arrived before their project (sync fetches in any order): their labels
        become search words of it now. Looked up in orphan_tags, not by_target: a by_target
        lookup per project cost ~7% of write_batch at 1M stored (a random B-tree descent)."""
        if not self._orphans_any:
            return
        orphans = self.db["orphan_tags"]
        for key in list(prefix_keys(txn, orphans, pid)):  # deleted while we go
            txn.delete(key, db=orphans)
            tag_seq = key[32:]
            tag = self.get_seq(txn, tag_seq)
            if tag is not None:
                for label in tag.body["labels"]:
                    self._deferred["tagwords"].append(label.encode() + b"\0" + seq + tag_seq)

    def _unword_tags(self, txn: Any, pid: bytes, seq: bytes) -> None:
        """A withdrawn project's tags stop making it a search result."""
        for tag, tag_seq in self._tags_on(txn, pid):
            for label in tag.body["labels"]:
                txn.delete(label.encode() + b"\0" + seq + tag_seq, db=self.db["tagwords"])

    def _tags_on(self, txn: Any, target: bytes) -> list[tuple[SignedObject, bytes]]:
        """Live tags of `target` in the database (not this batch's deferred entries)."""
        out = []
        cur = txn.cursor(db=self.db["by_target"])
        if cur.set_range(target):
            for key, value in cur:
                if not key.startswith(target):
                    break
                if value.startswith(b"tag\0"):
                    tag = self.get_seq(txn, key[-8:])
                    if tag is not None:
                        out.append((tag, bytes(key[-8:])))
        return out

    def _ensure_derives(self) -> None:
        """Fill `derives` for a store made before it existed (once): projects stored by an
        earlier release may carry the field (it was kept, unread). Revisions stored then were
        opaque: the review indexes them, entries included."""
        marker = b"derives:v1"
        with self.read() as txn:
            if txn.get(marker, db=self.db["meta"]) is not None:
                return
        self.require_writable("to index what projects derive from")
        with self.env.begin(write=True) as txn:
            objects = self.db["objects"]
            for key in list(prefix_keys(txn, self.db["by_kind"], _kind_key("project"))):
                seq = bytes(key[-8:])
                raw = txn.get(seq, db=objects)
                if not raw or b"derives" not in raw:
                    continue
                for db, k, _ in _derives_entries(decode(raw).body.get("derives"), seq):
                    txn.put(k, b"", db=self.db[db])
            txn.put(marker, b"1", db=self.db["meta"])

    def _ensure_decisions(self) -> None:
        """Fill `decisions` for a store made before it existed (once): decisions stored by a
        release that did not index them yet (opaque ones are indexed by the review)."""
        marker = b"decisions:v1"
        with self.read() as txn:
            if txn.get(marker, db=self.db["meta"]) is not None:
                return
        self.require_writable("to index the labs' decisions")
        with self.env.begin(write=True) as txn:
            objects = self.db["objects"]
            for key in list(prefix_keys(txn, self.db["by_kind"], _kind_key("decision"))):
                seq = bytes(key[-8:])
                raw = txn.get(seq, db=objects)
                if raw:
                    txn.put(_decision_key(decode(raw)), seq, db=self.db["decisions"])
            txn.put(marker, b"1", db=self.db["meta"])

    def _ensure_orphan_tags(self) -> None:
        """Fill orphan_tags for a store made before it existed (once): every live tag whose
        target is not a live project."""
        marker = b"orphan_tags:v1"
        with self.read() as txn:
            if txn.get(marker, db=self.db["meta"]) is not None:
                return
        self.require_writable("to list its tags that came before their project")
        with self.env.begin(write=True) as txn:
            for key in list(prefix_keys(txn, self.db["by_kind"], _kind_key("tag"))):
                tag_seq = bytes(key[-8:])
                tag = self.get_seq(txn, tag_seq)
                target = tag.body.get("target") if tag is not None else None
                if isinstance(target, bytes) and self._project_seq(txn, target) is None:
                    txn.put(target + tag_seq, b"", db=self.db["orphan_tags"])
            txn.put(marker, b"1", db=self.db["meta"])

    def _repoint_profile(self, txn: Any, author: bytes) -> None:
        """The author's current profile went (withdrawn or hidden): the newest one left."""
        for key in prefix_keys(txn, self.db["by_author"], author, reverse=True):
            raw = txn.get(key[-8:], db=self.db["objects"])
            if raw and raw[2:10] == _PROFILE_KIND_BYTES:
                txn.put(author, key[-8:], db=self.db["profiles"])
                return
        txn.delete(author, db=self.db["profiles"])

    def _ts_of(self, txn: Any, seq: bytes) -> int:
        raw = txn.get(seq, db=self.db["objects"])
        return decode(raw).ts if raw else -1

    def _bump_label(self, txn: Any, label: str, delta: int) -> None:
        key = label.encode()
        raw = txn.get(key, db=self.db["labels"])
        n = (U64.unpack(raw)[0] if raw else 0) + delta
        if n > 0:
            txn.put(key, u64(n), db=self.db["labels"])
        else:
            txn.delete(key, db=self.db["labels"])


def _derives_entries(derives: Any, seq: bytes) -> list[tuple[str, bytes, bytes]]:
    """`derives` entries (origin id + seq of the object naming it) of a project's or a
    revision's `derives` list (checked by the kind's schema: records with a 32-byte id)."""
    if not isinstance(derives, list):
        return []
    return [("derives", d["project"] + seq, b"") for d in derives
            if isinstance(d, dict) and isinstance(d.get("project"), bytes)]  # fmt: skip


def _decision_key(o: SignedObject) -> bytes:
    """lab(32) + ts(8) + id(32): a decision's key in `decisions` (its lab is checked by the
    kind's schema: a 32-byte id)."""
    return bytes(o.body["lab"]) + U64.pack(o.ts) + o.id


# Canonical bytes: 0x96, v=1, then the kind as fixstr: "profile" is a7 70 72 6f 66 69 6c 65.
_PROFILE_KIND_BYTES = b"\xa7profile"
_KIND_KEYS: dict[str, bytes] = {}


def _kind_key(kind: str) -> bytes:
    """`kind + 0`, the kind part of index keys (cached: kinds are few)."""
    key = _KIND_KEYS.get(kind)
    if key is None:
        key = _KIND_KEYS[kind] = kind.encode() + b"\0"
    return key
