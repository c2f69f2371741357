"""RPC methods of living projects (docs/rpc.md): `edit`, `history`, `pledge`, `pledges`,
`fork`, `lineage`. Mixed into `Service` (node/service/api.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from node.service import living_views, queries
from node.service.errors import ServiceError
from node.service.living import Living
from node.service.members import Members
from node.store.store import Store
from protocols.limits import MAX_SUPERSEDES
from protocols.living import PROJECT_FIELDS
from protocols.objects import SignedObject

# The fields `edit` takes, in the order a revision's `set` lists them.
EDITABLE = ("title", "summary", "body", "stage", "needs", "licence", "coauthors")
_TEXT_FIELDS = ("title", "summary", "body", "stage", "licence")
# Members a name may match before `edit` calls it ambiguous (the error lists them).
MAX_NAME_MATCHES = 5
MIN_PREFIX_HEX = 8


def _opt_str(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is not None and not isinstance(value, str):
        raise ServiceError("bad_request", f"parameter {name!r} must be a string")
    return value


def _opt_strs(params: Mapping[str, Any], name: str) -> list[str] | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ServiceError("bad_request", f"parameter {name!r} must be a list of strings")
    return list(value)


def _limit(params: Mapping[str, Any], default: int, most: int) -> int:
    value = params.get("limit", default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
        raise ServiceError("bad_request", f"limit must be an integer from 1 to {most}")
    return value


class LivingMethods:
    """Mixed into `Service`, which provides these attributes and helpers."""

    store: Store
    members: Members
    living: Living

    if TYPE_CHECKING:  # Service's own (no definitions here: they would shadow the mixins')

        def _resolve(self, ref: str) -> SignedObject: ...

        def _views(self, txn: Any) -> queries.Views: ...

        def create(self, kind: str, body: Mapping[str, Any]) -> SignedObject: ...

        def _my_member(self) -> bytes: ...

        def _lab(self, params: Mapping[str, Any], must_exist: bool = True) -> bytes: ...

        def follows(self) -> set[bytes]: ...

        def follow(self, lab: bytes, on: bool) -> None: ...

    def _project(self, params: Mapping[str, Any]) -> SignedObject:
        ref = params.get("id")
        if not isinstance(ref, str):
            raise ServiceError("bad_request", "missing parameter 'id'")
        obj = self._resolve(ref)
        if obj.kind != "project":
            raise ServiceError("not_found", f"{ref} is a {obj.kind}, not a project")
        return obj

    # ---- edit ---------------------------------------------------------------------------

    def m_edit(self, params: Mapping[str, Any]) -> str:
        """A revision of the project setting the given fields that differ from its current
        state, superseding its current heads; `not_author` unless this member is an author of
        the project now, `no_change` when nothing differs."""
        project = self._project(params)
        me = self._my_member()
        with self.store.read() as txn:
            views = self._views(txn)
            fields, state = living_views.current(views, project)
            authors = living_views.authors(views, project)
            heads = list(state.heads) if state is not None else [project.id]
            creator = self.members.attribute(project).member
            wanted = self._wanted(views, params, creator)
        if me not in authors:
            raise ServiceError("not_author", "only the project's author and its co-authors can "
                               "revise it (`percolab pledge` or a comment reach them)")  # fmt: skip
        changes = {k: v for k, v in wanted.items() if v != fields.get(k)}
        if not changes:
            raise ServiceError("no_change", "nothing to change: the project already says that")
        for name, value in changes.items():
            PROJECT_FIELDS[name].check(f"project.{name}", value)
        body: dict[str, Any] = {"lab": project.body["lab"], "target": project.id,
                                "supersedes": heads[:MAX_SUPERSEDES], "set": changes}  # fmt: skip
        note = _opt_str(params, "note")
        if note:
            body["note"] = note
        return self.create("revision", body).id_hex

    def _wanted(
        self, views: queries.Views, params: Mapping[str, Any], creator: bytes | None
    ) -> dict[str, Any]:
        wanted: dict[str, Any] = {}
        for name in _TEXT_FIELDS:
            value = _opt_str(params, name)
            if value is not None:
                wanted[name] = value
        needs = _opt_strs(params, "needs")
        if needs is not None:
            wanted["needs"] = needs
        refs = _opt_strs(params, "coauthors")
        if refs is not None:
            ids = [_member_ref(views, r) for r in refs]
            # The creator is always an author and never listed (docs/protocol.md).
            wanted["coauthors"] = [m for m in dict.fromkeys(ids) if m != creator]
        return wanted

    # ---- history, lineage ---------------------------------------------------------------

    def m_history(self, params: Mapping[str, Any]) -> dict[str, Any]:
        project = self._project(params)
        limit = _limit(params, living_views.DEFAULT_HISTORY_PAGE, living_views.MAX_HISTORY_PAGE)
        before = params.get("before")
        if before is not None and (not isinstance(before, int) or isinstance(before, bool)
                                   or before < 0):  # fmt: skip
            raise ServiceError("bad_request", "before must be a non-negative integer")
        with self.store.read() as txn:
            return living_views.history_page(self._views(txn), project, limit, before)

    def m_lineage(self, params: Mapping[str, Any]) -> dict[str, Any]:
        project = self._project(params)
        with self.store.read() as txn:
            return living_views.lineage(self._views(txn), project)

    # ---- pledges ------------------------------------------------------------------------

    def m_pledge(self, params: Mapping[str, Any]) -> str:
        project = self._project(params)
        kind = _opt_str(params, "type")
        if not kind:
            raise ServiceError("bad_request", "missing parameter 'type' (use, build, lend, "
                               "give, fund, teach, host)")  # fmt: skip
        body: dict[str, Any] = {"lab": project.body["lab"], "target": project.id, "type": kind}
        need = _opt_str(params, "need")
        if need:
            with self.store.read() as txn:
                needs = living_views.current(self._views(txn), project)[0]["needs"]
            if need not in needs:
                listed = ", ".join(repr(n) for n in needs) or "none"
                raise ServiceError("unknown_need", f"{need!r} is not a need of this project "
                                   f"(its needs: {listed})")  # fmt: skip
            body["need"] = need
        note = _opt_str(params, "note")
        if note:
            body["note"] = note
        return self.create("pledge", body).id_hex

    def m_pledges(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The pledges on a project (`id`), or made and received by a lab or a member."""
        given = [k for k in ("id", "lab", "member") if params.get(k) is not None]
        if len(given) != 1:
            raise ServiceError("bad_request", "give exactly one of 'id', 'lab' or 'member'")
        limit = _limit(params, queries.DEFAULT_PAGE, queries.MAX_PAGE)
        if given == ["id"]:
            project = self._project(params)
            with self.store.read() as txn:
                return living_views.pledges_of(self._views(txn), project)[-limit:][::-1]
        lab = self._lab(params) if given == ["lab"] else None
        with self.store.read() as txn:
            views = self._views(txn)
            member = None
            if lab is None:
                ref = params["member"]
                if not isinstance(ref, str):
                    raise ServiceError("bad_request", "parameter 'member' must be a string")
                member = _member_ref(views, ref)
            return living_views.pledges_around(views, limit, lab=lab, member=member)

    # ---- fork ---------------------------------------------------------------------------

    def m_fork(self, params: Mapping[str, Any]) -> str:
        """A new project in `lab` with the origin's current fields, deriving from it; signed
        by this member (its creator: the origin's co-authors are not copied)."""
        origin = self._project(params)
        lab = self._lab(params)
        how = _opt_str(params, "how") or "fork"
        note = _opt_str(params, "note") or ""
        with self.store.read() as txn:
            fields = living_views.current(self._views(txn), origin)[0]
        title = _opt_str(params, "title") or fields["title"]
        derive: dict[str, Any] = {"project": origin.id, "how": how}
        if note:
            derive["note"] = note
        body = {"lab": lab, "title": title, "summary": fields["summary"], "body": fields["body"],
                "stage": fields["stage"], "needs": list(fields["needs"]), "derives": [derive]}
        if fields["licence"]:
            body["licence"] = fields["licence"]
        project = self.create("project", body)
        if lab not in self.follows():
            self.follow(lab, True)
        return project.id_hex


def _member_ref(views: queries.Views, ref: str) -> bytes:
    """A member by id (64 hex), unique id prefix (8+ hex) or profile name (exact but for
    case): co-authors are named like labs."""
    text = ref.strip()
    low = text.lower()
    if len(low) == 64:
        try:
            return bytes.fromhex(low)
        except ValueError:
            pass
    named: dict[bytes, str] = {}
    by_prefix: set[bytes] = set()
    hexy = len(low) >= MIN_PREFIX_HEX and all(c in "0123456789abcdef" for c in low)
    for _author, seq in views.txn.cursor(db=views.store.db["profiles"]):
        prof = views.get_seq(seq)
        if prof is None:
            continue
        member = views.members.attribute(prof).member
        if member is None:
            continue
        if hexy and member.hex().startswith(low):
            by_prefix.add(member)
        if prof.body["name"].casefold() == text.casefold():
            named[member] = prof.body["name"]
    found = by_prefix or set(named)
    if len(found) == 1:
        return found.pop()
    if not found:
        raise ServiceError("not_found", f"no member named or numbered {ref!r} is known here")
    listed = ", ".join(m.hex()[:12] for m in sorted(found)[:MAX_NAME_MATCHES])
    raise ServiceError("ambiguous", f"{len(found)} members match {ref!r}: {listed}; name one "
                       "by its id")  # fmt: skip

