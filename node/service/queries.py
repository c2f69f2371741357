"""Read side of the store: pages of projects, threads, tags, search, as plain views.

Views are the dicts documented in docs/rpc.md (ids as hex). Every function takes an open read
transaction and touches only the index range it needs: a page costs O(page), never O(store).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from node.service import governance, lab_names, living_views, moderation
from node.service.living import Living
from node.service.living import of_store as living_of_store
from node.service.members import Members, attribution_fields, of_store
from node.store.read import U64, prefix_items
from node.store.store import Store
from protocols.objects import SignedObject, decode_checked, object_id

MAX_PAGE = 200
DEFAULT_PAGE = 50
# Labs an ambiguous lab name lists in its error (each with its short id).
MAX_NAME_CANDIDATES = 5
SHORT_ID_CHARS = 12
# by_target kinds that count as activity on a project (and its "updated" time).
_ACTIVITY_KINDS = (b"comment", b"tag", b"pledge")


class QueryError(ValueError):
    code = "bad_request"


class NotFound(QueryError):
    code = "not_found"


class Ambiguous(QueryError):
    code = "ambiguous"


def _hex(b: bytes | None) -> str | None:
    return b.hex() if isinstance(b, bytes) else None


def load_seq(store: Store, txn: Any, seq: bytes, oid: bytes | None = None) -> SignedObject | None:
    """`store.get_seq` for views: a live, shown object by sequence key. Stored bytes passed
    `decode`, the kind's schema and the signature at ingest, so they are only unpacked here
    (`decode_checked`: half the cost of `decode`, which re-packs them to check the canonical
    form; a page decodes ~100 objects)."""
    raw = txn.get(seq, db=store.db["objects"])
    if not raw or txn.get(seq, db=store.db["unindexed"]) is not None:
        return None
    return decode_checked(raw, oid if oid is not None else object_id(raw))


def load(store: Store, txn: Any, oid: bytes) -> SignedObject | None:
    """`store.get` for views: a live, shown object by id (see `load_seq`)."""
    seq = store.seq_of(txn, oid)
    return load_seq(store, txn, seq, oid) if seq is not None else None


class ReadState(Protocol):
    """What the calling member has read (node/service/seats.py ReadMarks)."""

    def unread(self, project: bytes, activity: int) -> bool: ...

    def lab_unread(self, lab: bytes, moderation: moderation.Moderation | None = None) -> int: ...


class Views:
    """Turns stored objects into views; caches names for the life of one read, and keeps the
    signed bytes of every object it made a view of (`raws`, by hex id: the HTTP API's "raw"
    without reading each object again)."""

    def __init__(
        self, store: Store, txn: Any, follows: set[bytes] | None = None,
        members: Members | None = None, living: Living | None = None,
        reads: ReadState | None = None, viewer: bytes | None = None, show_hidden: bool = False,
    ) -> None:  # fmt: skip
        self.store, self.txn = store, txn
        self.reads = reads  # None: views carry no `unread` (pushes, HTTP)
        self.follows = follows or set()
        self.members = members if members is not None else of_store(store)
        # Project histories (the current fields of revised projects): node/service/living.py.
        self.living = living if living is not None else living_of_store(store, self.members)
        self._names: dict[bytes, str | None] = {}
        self._member_names: dict[bytes, str | None] = {}
        self.raws: dict[str, bytes] = {}
        # Moderation (node/service/governance.py): for whom, and whether lists keep what is
        # hidden or queued (`show_hidden`).
        self.viewer, self.show_hidden = viewer, show_hidden
        gov = governance.of_store(store, self.members)
        self.moderation = moderation.Moderation(gov, viewer, show_hidden)

    def listed(self, o: SignedObject) -> bool:
        """Whether lists show `o` to this viewer (moderation.Moderation.listed)."""
        return self.moderation.listed(o)

    def get(self, oid: bytes) -> SignedObject | None:
        return load(self.store, self.txn, oid)

    def get_seq(self, seq: bytes) -> SignedObject | None:
        return load_seq(self.store, self.txn, seq)

    def author_name(self, author: bytes) -> str | None:
        if author not in self._names:
            seq = self.txn.get(author, db=self.store.db["profiles"])
            prof = self.get_seq(seq) if seq else None
            self._names[author] = prof.body["name"] if prof else None
        return self._names[author]

    def member_profile(self, member: bytes) -> SignedObject | None:
        """The member's latest profile signed by any of its keys (roots and devices) and
        attributed to it: the profiles index, one lookup per key."""
        best: SignedObject | None = None
        for info in self.members.member_keys(member):
            seq = self.txn.get(info.key, db=self.store.db["profiles"])
            prof = self.get_seq(seq) if seq else None
            if prof is None or (best is not None and (prof.ts, prof.id) <= (best.ts, best.id)):
                continue
            a = self.members.attribute(prof)
            if a.member == member and a.status in ("member", "disputed"):
                best = prof
        return best

    def member_name(self, member: bytes) -> str | None:
        if member not in self._member_names:
            prof = self.member_profile(member)
            self._member_names[member] = prof.body["name"] if prof is not None else None
        return self._member_names[member]

    def lab_name(self, lab: bytes) -> str | None:
        if lab not in self._names:
            obj = self.get(lab)
            self._names[lab] = obj.body["name"] if obj and obj.kind == "lab" else None
        return self._names[lab]

    def view(self, o: SignedObject) -> dict[str, Any]:
        oid = o.id.hex()
        a = self.members.attribute(o)
        # The name is the attributed member's; an object speaking for nobody shows none.
        v: dict[str, Any] = {
            "id": oid,
            "kind": o.kind,
            "author": o.author.hex(),
            "author_name": self.member_name(a.member) if a.member is not None else None,
            "ts": o.ts,
        }
        for key, value in o.body.items():
            if type(value) is bytes:
                v[key] = value.hex()
            elif type(value) is list or type(value) is dict:
                v[key] = living_views.plain(value)  # ids inside (a revision's supersedes)
            else:
                v[key] = value
        if "member" in v:  # an identity object's body field: the member it is about
            v["subject"] = v["member"]
        v |= attribution_fields(a)
        v |= moderation.Moderation.fields(self.moderation.verdict(o, a.member))
        if o.kind == "lab":
            v["followed"] = o.id in self.follows
            total = self.store.count(self.txn, lab=o.id)
            v["projects"] = self.moderation.project_count(o.id, total)  # listed ones
            if self.reads is not None:
                v["unread"] = self.reads.lab_unread(o.id, self.moderation) if v["followed"] else 0
        elif o.kind == "project":
            v["lab_name"] = self.lab_name(o.body["lab"])
            labels, comments, activity, revisions, pledges, updated = self._project_scan(o)
            v["tags"], v["comments"], v["activity"] = labels, comments, activity
            if self.reads is not None:
                v["unread"] = self.reads.unread(o.id, activity)
            living_views.decorate_project(self, o, v, revisions, pledges, updated)
        elif o.kind == "pledge" or o.kind == "revision":
            living_views.decorate_other(o, v)
        self.raws[oid] = o.raw
        return v

    def project_stats(self, project: SignedObject) -> tuple[list[str], int, int]:
        """(`labels_of`, *`thread_stats`) of a project in one range of the by_target index,
        decoding only its tags (not its comments)."""
        return self._project_scan(project)[:3]

    def _project_scan(self, project: SignedObject) -> tuple[list[str], int, int, int, int, int]:
        """`project_stats`, then whether live revisions target it (1 or 0: their own
        index), the live pledges on it, and the time of the newest of its revisions and
        pledges (any lab). One range of the by_target index and one seek in revisions."""
        lab = project.body["lab"]
        labels: dict[str, None] = {}
        comments, activity, revisions, pledges, updated = 0, project.ts, 0, 0, project.ts
        may_hide = self.moderation.may_hide  # per scope, else no decoding: all are listed
        for key, value in prefix_items(self.txn, self.store.db["by_target"], project.id):
            kind, _, scope = value.partition(b"\0")
            if kind in _ACTIVITY_KINDS and may_hide(scope) and not self._listed_seq(key[-8:]):
                continue
            if kind == b"comment":
                comments += 1
            elif kind == b"tag":
                tag = self.get_seq(key[-8:])
                if tag is not None:
                    labels.update(dict.fromkeys(tag.body["labels"]))
            elif kind == b"pledge":
                pledges += 1
                updated = max(updated, U64.unpack(key[32:40])[0])
            else:
                continue
            if scope == lab:
                activity = max(activity, U64.unpack(key[32:40])[0])
        newest, of_lab = living_views.newest_revisions(self, project)  # their own index
        if newest is not None:
            revisions = 1
            updated = max(updated, newest)
            activity = max(activity, of_lab or 0)
        return list(labels), comments, activity, revisions, pledges, updated

    def _listed_seq(self, seq: bytes) -> bool:
        o = self.get_seq(seq)
        return o is not None and self.listed(o)

    def thread_stats(self, project: SignedObject) -> tuple[int, int]:
        """(live comments, activity): the time of the newest comment or tag of the
        project's own lab on it, or its own time. One range of the by_target index."""
        lab = project.body["lab"]
        comments, activity = 0, project.ts
        for key, value in prefix_items(self.txn, self.store.db["by_target"], project.id):
            kind, _, scope = bytes(value).partition(b"\0")
            if kind == b"comment":
                comments += 1
            if kind in _ACTIVITY_KINDS and scope == lab:
                activity = max(activity, U64.unpack(key[32:40])[0])
        of_lab = living_views.newest_revisions(self, project)[1]
        return comments, max(activity, of_lab or 0)

    def labels_of(self, target: bytes) -> list[str]:
        labels: dict[str, None] = {}
        for o in self.about(target, (b"tag",)):
            labels.update(dict.fromkeys(o.body["labels"]))
        return list(labels)

    def about(self, target: bytes, kinds: tuple[bytes, ...] | None = None) -> Iterator[SignedObject]:  # noqa: E501
        """Live comments, tags (and other kinds) whose target is `target`, oldest first;
        only those of `kinds` when given (the index says each one's kind: a project's
        thousands of revisions are not read for its comments)."""
        for key, value in prefix_items(self.txn, self.store.db["by_target"], target):
            if kinds is not None and value.partition(b"\0")[0] not in kinds:
                continue
            o = self.get_seq(key[-8:])
            if o is not None and self.listed(o):
                yield o

    def thread(self, target: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(tags, threaded comments) of an object."""
        tags: list[dict[str, Any]] = []
        comments: list[dict[str, Any]] = []
        for o in self.about(target, (b"tag", b"comment")):
            if o.kind == "tag":
                tags.append(self.view(o))
            elif o.kind == "comment":
                comments.append(self.view(o) | {"replies": []})
        by_id = {c["id"]: c for c in comments}
        roots: list[dict[str, Any]] = []
        for c in comments:
            parent = by_id.get(c["parent"]) if c["parent"] else None
            (parent["replies"] if parent is not None else roots).append(c)
        return tags, roots


def resolve_id(store: Store, txn: Any, ref: str) -> bytes:
    """A full hex id or a unique hex prefix (>= 8 chars) -> 32-byte id of a known object."""
    ref = ref.strip().lower()
    try:
        raw = bytes.fromhex(ref if len(ref) % 2 == 0 else ref[:-1])
    except ValueError:
        raise QueryError(f"{ref!r} is not a hex object id") from None
    if len(ref) == 64:
        if not store.has(raw, txn):
            raise NotFound(f"no object {ref[:16]}… is known here")
        return raw
    if len(ref) < 8:
        raise QueryError("an id prefix needs at least 8 hex characters")
    matches = []
    for key in store.ids_with_prefix(txn, raw):
        if key.hex().startswith(ref):
            matches.append(key)
            if len(matches) > 1:
                raise Ambiguous(f"id prefix {ref} matches several objects")
    if not matches:
        raise NotFound(f"no object starts with {ref}")
    return matches[0]


def resolve_lab(store: Store, txn: Any, ref: str, *, must_exist: bool = True) -> bytes:
    """A lab by name, by id or by id prefix. A name matching one lab exactly but for case
    ("fablab nord" finds "Fablab Nord") wins; else one lab whose name looks like it
    (protocols/names.py: "Fab1ab Nord" finds "Fablab Nord"). Two labs of that name, or none
    of that exact name and several that look like it, are Ambiguous: the error lists them by
    short id."""
    exact, alike = lab_names.candidates(store, txn, ref.strip())
    named = exact or alike
    if len(named) == 1:
        return named[0].id
    if named:
        listed = ", ".join(
            f"{lab.id.hex()[:SHORT_ID_CHARS]} ({lab.name}"
            + (f", {lab.place})" if lab.place else ")")
            for lab in sorted(named, key=lambda lab: lab.id)[:MAX_NAME_CANDIDATES]
        )
        extra = len(named) - MAX_NAME_CANDIDATES
        more = f" and {extra} more" if extra > 0 else ""
        how = "are named" if exact else "have names that look like"
        raise Ambiguous(f"{len(named)} labs {how} {ref.strip()!r}: {listed}{more}; "
                        "name one by its id")  # fmt: skip
    try:
        oid = resolve_id(store, txn, ref)
    except QueryError:
        full = ref.strip().lower()
        if not must_exist and len(full) == 64 and all(c in "0123456789abcdef" for c in full):
            return bytes.fromhex(full)  # following a lab before it arrives here
        raise NotFound(f"no lab named or numbered {ref!r}") from None
    o = load(store, txn, oid)
    if o is None or o.kind != "lab":
        raise NotFound(f"{ref} is not a lab")
    return oid
