"""RPC methods of labs without a chief (docs/rpc.md, "Labs without a chief"): the lab's
members, log and queue, and the decisions a member signs (admit, remove, vouch, rules,
endorse, approve, hide, unhide, suspend, unsuspend). Mixed into `Service`
(node/service/api.py).

A decision the caller has no authority for would be valid and stored everywhere, with no
effect (docs/governance.md): it is refused before signing (`not_steward`, `not_member`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from node.ingest.pipeline import now_ms
from node.service import governance_views as gviews
from node.service import queries
from node.service.errors import ServiceError
from node.service.governance import Governance, LabState
from node.service.living_ops import _member_ref
from node.store.store import Store
from protocols import kinds
from protocols.governance import DECISION_KIND, MEMBER, QUEUED, ROLES, SHOWN, decision_body
from protocols.lab_authority import LabAuthority
from protocols.limits import MAX_ADMIT_VOUCHES, MIN_ADMIT_VOUCHES
from protocols.objects import SignedObject

log = logging.getLogger(__name__)


def _opt(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is not None and not isinstance(value, str):
        raise ServiceError("bad_request", f"parameter {name!r} must be a string")
    return value


def _need(params: Mapping[str, Any], name: str) -> str:
    value = _opt(params, name)
    if not value:
        raise ServiceError("bad_request", f"missing parameter {name!r}")
    return value


def _flag(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name, False)
    if not isinstance(value, bool):
        raise ServiceError("bad_request", f"parameter {name!r} must be true or false")
    return value


def _limit(params: Mapping[str, Any], default: int, most: int) -> int:
    limit = params.get("limit", default)
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise ServiceError("bad_request", "parameter 'limit' must be an integer")
    return max(1, min(limit, most))


def _visibility(params: Mapping[str, Any], name: str) -> str | None:
    value = _opt(params, name)
    if value is not None and value not in (QUEUED, SHOWN):
        raise ServiceError("bad_request", f"{name} must be 'queued' or 'shown'")
    return value


class GovernanceMethods:
    """Mixed into `Service`, which provides these attributes and helpers."""

    store: Store
    governance: Governance

    if TYPE_CHECKING:  # Service's own (no definitions here: they would shadow the mixins')

        def _resolve(self, ref: str) -> SignedObject: ...

        def _views(self, txn: Any, show_hidden: bool = False) -> queries.Views: ...

        def create(self, kind: str, body: Mapping[str, Any]) -> SignedObject: ...

        def _my_member(self) -> bytes: ...

        def identity(self) -> dict[str, Any] | None: ...

        def _lab(self, params: Mapping[str, Any], must_exist: bool = True) -> bytes: ...


    # ---- helpers ------------------------------------------------------------------------

    def _viewer(self) -> bytes | None:
        """The calling member, for moderation (their own queued posts show to them)."""
        who = self.identity()
        return bytes.fromhex(who["member"]) if who is not None else None

    def _lab_state(self, lab: bytes) -> LabState:
        state = self.governance.state(lab)
        if state is None:
            raise ServiceError("not_found", f"lab {lab.hex()[:16]}… is not here")
        return state

    def _subject_param(self, params: Mapping[str, Any]) -> bytes:
        ref = _need(params, "member")
        with self.store.read() as txn:
            return _member_ref(self._views(txn), ref)

    def _role_param(self, params: Mapping[str, Any]) -> str:
        role = _opt(params, "role") or MEMBER
        if role not in ROLES:
            raise ServiceError("bad_request", "role must be 'member' or 'steward'")
        return role

    def _require(self, a: LabAuthority, me: bytes, steward: bool) -> None:
        """Refuse before signing a decision that would have no effect for want of authority."""
        if steward and (me not in a.stewards or me in a.suspended):
            raise ServiceError("not_steward", "only a steward of the lab can decide this")
        if me not in a.members or me in a.suspended:
            what = "suspended in" if me in a.suspended else "not a member of"
            raise ServiceError("not_member", f"you are {what} this lab")

    def _decide(self, lab: bytes, act: str, *, steward: bool = True,
                **fields: Any) -> str:  # fmt: skip
        me = self._my_member()
        self._require(self._lab_state(lab).authority, me, steward)
        reason = fields.pop("reason", None)
        body = decision_body(lab, act, reason=reason or None, **fields)
        kinds.validate_body(kinds.DECISION, body)
        decision = self.create(DECISION_KIND, body)
        log.info("decision %s %s in lab %s", act, decision.id_hex[:12], lab.hex()[:12])
        return decision.id_hex

    def _object_in_lab(self, params: Mapping[str, Any]) -> tuple[SignedObject, bytes]:
        """The object `id` and the lab deciding on it: `lab` when given (a lab whose hidden
        set other nodes may follow, `decisions_follow`), else the object's own lab
        (`bad_request` for one in no lab)."""
        obj = self._resolve(_need(params, "id"))
        if params.get("lab"):
            return obj, self._lab(params)
        lab = obj.id if obj.kind == "lab" else kinds.scope_of(obj.body)
        if lab == kinds.PUBLIC_SCOPE:
            raise ServiceError("bad_request", f"{obj.id_hex[:12]} is in no lab: hide it on "
                               "this node instead (`hide`)")  # fmt: skip
        return obj, lab

    def _lab_created(self, lab: SignedObject, posts: str) -> None:
        """`lab_create`'s second step: a new lab is members-only unless asked open, by its
        creator's `rules` decision (docs/governance.md §5). It must sort after the lab (the
        creator is steward from the lab's place): a later millisecond."""
        if posts == SHOWN:
            return
        while now_ms() <= lab.ts:
            time.sleep(0.001)
        self.create(DECISION_KIND, decision_body(lab.id, "rules", rules={"posts": QUEUED}))

    def _lab_views(self, views: queries.Views, labs: list[dict[str, Any]]) -> None:
        gviews.decorate_labs(views, self.governance, labs, views.viewer)

    # ---- read -----------------------------------------------------------------------------

    def m_lab_members(self, params: Mapping[str, Any]) -> dict[str, Any]:
        state = self._lab_state(self._lab(params))
        with self.store.read() as txn:
            views = self._views(txn)
            return gviews.lab_members(views, state, self.governance, views.viewer, now_ms())

    def m_lab_log(self, params: Mapping[str, Any]) -> dict[str, Any]:
        state = self._lab_state(self._lab(params))
        limit = _limit(params, gviews.DEFAULT_PAGE, gviews.MAX_LOG_PAGE)
        with self.store.read() as txn:
            try:
                return gviews.lab_log(self._views(txn), state, limit, _opt(params, "cursor"))
            except ValueError as exc:
                raise ServiceError("bad_request", f"bad cursor: {exc}") from exc

    def m_queue(self, params: Mapping[str, Any]) -> dict[str, Any]:
        state = self._lab_state(self._lab(params))
        limit = _limit(params, gviews.DEFAULT_PAGE, gviews.MAX_QUEUE_PAGE)
        with self.store.read() as txn:
            try:
                return gviews.queue(self._views(txn, show_hidden=True), state, self.governance,
                                    limit, _opt(params, "cursor"))  # fmt: skip
            except ValueError as exc:
                raise ServiceError("bad_request", f"bad cursor: {exc}") from exc

    # ---- decisions ------------------------------------------------------------------------

    def m_lab_admit(self, params: Mapping[str, Any]) -> str:
        lab, member, role = self._lab(params), self._subject_param(params), self._role_param(params)
        return self._decide(lab, "admit", subject=member, role=role)

    def m_lab_remove(self, params: Mapping[str, Any]) -> str:
        lab, member, role = self._lab(params), self._subject_param(params), self._role_param(params)
        a = self._lab_state(lab).authority
        if role == MEMBER and member in a.stewards:
            raise ServiceError("bad_request", "a steward is removed as steward first (role "
                               "'steward': a proposal the stewards endorse)")  # fmt: skip
        return self._decide(lab, "remove", subject=member, role=role,
                            reason=_opt(params, "reason"))  # fmt: skip

    def m_vouch(self, params: Mapping[str, Any]) -> str:
        lab, member = self._lab(params), self._subject_param(params)
        return self._decide(lab, "vouch", steward=False, subject=member)

    def m_lab_rules(self, params: Mapping[str, Any]) -> str:
        lab = self._lab(params)
        rules: dict[str, Any] = {}
        vouches = params.get("admit_vouches")
        if vouches is not None:
            ok = isinstance(vouches, int) and not isinstance(vouches, bool)
            if not ok or not MIN_ADMIT_VOUCHES <= vouches <= MAX_ADMIT_VOUCHES:
                raise ServiceError("bad_request", "admit_vouches must be an integer from "
                                   f"{MIN_ADMIT_VOUCHES} to {MAX_ADMIT_VOUCHES}")  # fmt: skip
            rules["admit_vouches"] = vouches
        for name in ("posts", "replies"):
            value = _visibility(params, name)
            if value is not None:
                rules[name] = value
        if not rules:
            raise ServiceError("bad_request", "name a rule: admit_vouches, posts or replies")
        return self._decide(lab, "rules", rules=rules)

    def m_endorse(self, params: Mapping[str, Any]) -> str:
        proposal = self._resolve(_need(params, "id"))
        if proposal.kind != DECISION_KIND or not gviews.is_proposal(proposal.body):
            raise ServiceError("bad_request", f"{proposal.id_hex[:12]} is no proposal (admit "
                               "or remove of a steward, rules)")  # fmt: skip
        return self._decide(proposal.body["lab"], "endorse", target=proposal.id)

    def m_approve(self, params: Mapping[str, Any]) -> str:
        obj, lab = self._object_in_lab(params)
        return self._decide(lab, "approve", steward=False, target=obj.id)

    def m_lab_hide(self, params: Mapping[str, Any]) -> str:
        obj, lab = self._object_in_lab(params)
        return self._decide(lab, "hide", target=obj.id, reason=_opt(params, "reason"))

    def m_lab_unhide(self, params: Mapping[str, Any]) -> str:
        obj, lab = self._object_in_lab(params)
        return self._decide(lab, "unhide", target=obj.id)

    def m_suspend(self, params: Mapping[str, Any]) -> str:
        lab, member = self._lab(params), self._subject_param(params)
        return self._decide(lab, "suspend", subject=member, reason=_opt(params, "reason"))

    def m_unsuspend(self, params: Mapping[str, Any]) -> str:
        lab, member = self._lab(params), self._subject_param(params)
        return self._decide(lab, "unsuspend", subject=member)

    def show_hidden(self, params: Mapping[str, Any]) -> bool:
        """The `show_hidden` parameter of lists (`projects`, `project`, `search`, `show`)."""
        return _flag(params, "show_hidden")
