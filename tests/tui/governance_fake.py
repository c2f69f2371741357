"""FakeNode with the RPCs of "Labs without a chief" (docs/rpc.md, /tmp/gov2 design) in their
documented shapes: lab views with `role`, `queued`, `short_id`, `name_clash`; `lab_members`,
`lab_log` (paged), `queue`; the decisions (`vouch`, `lab_admit`, `lab_remove`, `suspend`,
`unsuspend`, `endorse`, `approve`, `lab_hide`, `lab_rules`) and the local `hide` / `mute`;
`moderation` on object views and `show_hidden` on `projects` / `project`. Every call is
recorded (``calls``) so that tests check what the TUI sent. The TUI is what is tested."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.tui.fake_node import FakeError, FakeNode, _id

ALICE, BOB, CAROL, DAN, ERIN = ("a" * 64, "b" * 64, "c" * 64, "d" * 64, "e" * 64)
NAMES = {ALICE: "Alice", BOB: "Bob", CAROL: "Carol", DAN: "Dan", ERIN: "Erin"}
DECISIONS = ("vouch", "lab_admit", "lab_remove", "suspend", "unsuspend", "lab_rules")


def m(member: str) -> dict[str, str]:
    """An M of the governance RPCs."""
    return {"member": member, "name": NAMES.get(member, member[:8]),
            "fingerprint": f"{member[:4]}-{member[4:8]}-x"}  # fmt: skip


class GovLab:
    """One lab's authority as the fake keeps it."""

    def __init__(self, stewards: list[str], members: list[str]) -> None:
        self.stewards = list(stewards)
        self.members = list(members)
        self.suspended: list[str] = []
        self.newcomers: dict[str, list[str]] = {}
        self.rules = {"admit_vouches": 2, "posts": "queued", "replies": "shown"}
        self.proposals: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []  # oldest first
        self.approved: set[str] = set()
        self.hidden: dict[str, str] = {}  # object id -> reason

    def role(self, who: str) -> str | None:
        return "steward" if who in self.stewards else "member" if who in self.members else None


class GovNode(FakeNode):
    def __init__(self, socket_path: Path) -> None:
        super().__init__(socket_path)
        self.names.update(NAMES)
        self.gov: dict[str, GovLab] = {}
        self.clash: set[str] = set()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.local_hidden: set[str] = set()
        self.muted: set[str] = set()

    def sent(self, method: str) -> list[dict[str, Any]]:
        return [p for name, p in self.calls if name == method]

    def add_gov_lab(self, name: str, *, stewards: list[str], members: list[str]) -> str:
        lid = self.add_lab(name)
        self.gov[lid] = GovLab(stewards, [*stewards, *members])
        return lid

    def log_entry(self, lab: str, act: str, by: str, effect: str = "applied", *,
                  subject: str | None = None, target: str | None = None,
                  reason: str = "", role: str = "member") -> str:  # fmt: skip
        did = _id(act)
        self.gov[lab].log.append({
            "id": did, "ts": self.tick(), "by": m(by), "act": act, "effect": effect,
            "subject": m(subject) if subject else None, "target": target, "role": role,
            "rules": None, "reason": reason or None})  # fmt: skip
        return did

    # -- moderation of views --------------------------------------------------------------

    def status(self, view: dict[str, Any], lab: str | None) -> dict[str, Any]:
        oid, member = str(view["id"]), str(view.get("member") or view.get("author"))
        gov = self.gov.get(lab or "")
        if oid in self.local_hidden or member in self.muted:
            return {**view, "moderation": "hidden", "hidden_by": "node", "hidden_reason": None}
        if gov is None:
            return {**view, "moderation": "shown"}
        if oid in gov.hidden:
            return {**view, "moderation": "hidden", "hidden_by": gov.stewards[0],
                    "hidden_reason": gov.hidden[oid]}  # fmt: skip
        queued = (view.get("kind") == "project" and gov.rules["posts"] == "queued"
                  and gov.role(member) is None and oid not in gov.approved)  # fmt: skip
        return {**view, "moderation": "queued" if queued else "shown"}

    def visible(self, view: dict[str, Any], show_hidden: bool) -> bool:
        status = view["moderation"]
        mine = self.me is not None and view.get("member", view.get("author")) == self.me["author"]
        return show_hidden or status == "shown" or (status == "queued" and mine)

    def _queued_objects(self, lab: str) -> list[dict[str, Any]]:
        views = [self.status(p, lab) for p in self.projects.values() if p["lab"] == lab]
        return [v for v in views if v["moderation"] == "queued"]

    def _lab_view(self, lab: dict[str, Any]) -> dict[str, Any]:
        view = super()._lab_view(lab)
        gov = self.gov.get(lab["id"])
        role = gov.role(self._author()[0]) if gov is not None else None
        queued = len(self._queued_objects(lab["id"])) + len(gov.newcomers) if gov else 0
        return {**view, "role": role, "queued": queued if role else None,
                "short_id": lab["id"][:8], "name_clash": lab["id"] in self.clash}  # fmt: skip

    # -- RPC ------------------------------------------------------------------------------

    def handle(self, method: str, p: dict[str, Any], writer: Any) -> Any:
        self.calls.append((method, dict(p)))
        show_hidden = bool(p.pop("show_hidden", False))
        if method == "show" and p.get("id") in self.labs:
            return {"kind": "lab", "lab": self._lab_view(self.labs[p["id"]])}
        if method == "projects":
            result = self._projects(p)
            views = [self.status(x, x["lab"]) for x in result["items"]]
            result["items"] = [v for v in views if self.visible(v, show_hidden)]
            return result
        if method == "project":
            result = super().handle(method, p, writer)
            lab = result["project"]["lab"]
            result["project"] = self.status(result["project"], lab)  # shown, with its mark
            result["comments"] = [self.status(c, lab) for c in result["comments"]
                                  if show_hidden or self.status(c, lab)["moderation"]
                                  == "shown"]  # fmt: skip
            return result
        if method == "lab_create":
            lid = super().handle(method, p, writer)
            self.gov[lid] = GovLab([self._author()[0]], [self._author()[0]])
            self.gov[lid].rules["posts"] = p.get("posts", "queued")
            return lid
        handler = getattr(self, f"_g_{method}", None)
        if handler is not None:
            return handler(p)
        return super().handle(method, p, writer)

    def _lab(self, p: dict[str, Any]) -> tuple[str, GovLab]:
        lid = self._lab_id(p["lab"])
        return lid, self.gov[lid]

    def _g_lab_members(self, p: dict[str, Any]) -> dict[str, Any]:
        lid, gov = self._lab(p)
        return {"lab": lid, "stewards": [m(x) for x in gov.stewards],
                "members": [m(x) for x in gov.members],  # stewards included, as the node
                "suspended": [m(x) for x in gov.suspended],
                "newcomers": [{"member": m(x), "vouchers": [m(v) for v in vs]}
                              for x, vs in gov.newcomers.items()],
                "rules": dict(gov.rules), "role": gov.role(self._author()[0]),
                "proposals": list(gov.proposals)}  # fmt: skip

    def _g_lab_log(self, p: dict[str, Any]) -> dict[str, Any]:
        _, gov = self._lab(p)
        entries = list(reversed(gov.log))
        start, limit = int(p.get("cursor") or 0), int(p.get("limit", 50))
        nxt = str(start + limit) if start + limit < len(entries) else None
        return {"entries": entries[start : start + limit], "next": nxt}

    def _g_queue(self, p: dict[str, Any]) -> dict[str, Any]:
        lid, gov = self._lab(p)
        objects = self._queued_objects(lid)
        start, limit = int(p.get("cursor") or 0), int(p.get("limit", 50))
        nxt = str(start + limit) if start + limit < len(objects) else None
        return {"objects": objects[start : start + limit],
                "newcomers": [{"member": m(x), "vouchers": [m(v) for v in vs]}
                              for x, vs in gov.newcomers.items()],
                "total": len(objects), "next": nxt}  # fmt: skip

    def _decide(self, p: dict[str, Any], act: str, steward: bool = True) -> tuple[str, GovLab]:
        lid, gov = self._lab(p)
        role = gov.role(self._author()[0])
        if role is None:
            raise FakeError("not_member", "you are not a member of this lab")
        if steward and role != "steward":
            raise FakeError("not_steward", "only a steward can do this")
        return lid, gov

    def _g_vouch(self, p: dict[str, Any]) -> str:
        lid, gov = self._decide(p, "vouch", steward=False)
        who = p["member"]
        if gov.role(self._author()[0]) == "steward":
            gov.newcomers.pop(who, None)
            gov.members.append(who)
        else:
            gov.newcomers.setdefault(who, []).append(self._author()[0])
        return self.log_entry(lid, "vouch", self._author()[0], subject=who)

    def _g_lab_admit(self, p: dict[str, Any]) -> str:
        lid, gov = self._decide(p, "admit")
        gov.newcomers.pop(p["member"], None)
        if p.get("role") == "steward":
            gov.proposals.append({"id": _id("proposal"), "act": "admit",
                                  "by": m(self._author()[0]), "subject": m(p["member"]),
                                  "rules": None, "backing": 1, "needed": 2})  # fmt: skip
        else:
            gov.members.append(p["member"])
        return self.log_entry(lid, "admit", self._author()[0], subject=p["member"],
                              role=p.get("role", "member"))  # fmt: skip

    def _g_lab_remove(self, p: dict[str, Any]) -> str:
        lid, gov = self._decide(p, "remove")
        if p["member"] in gov.members and p.get("role", "member") == "member":
            gov.members.remove(p["member"])
        return self.log_entry(lid, "remove", self._author()[0], subject=p["member"],
                              reason=p.get("reason") or "")  # fmt: skip

    def _g_suspend(self, p: dict[str, Any]) -> str:
        lid, gov = self._decide(p, "suspend")
        gov.suspended.append(p["member"])
        return self.log_entry(lid, "suspend", self._author()[0], subject=p["member"],
                              reason=p.get("reason") or "")  # fmt: skip

    def _g_unsuspend(self, p: dict[str, Any]) -> str:
        lid, gov = self._decide(p, "unsuspend")
        gov.suspended.remove(p["member"])
        return self.log_entry(lid, "unsuspend", self._author()[0], subject=p["member"])

    def _g_lab_rules(self, p: dict[str, Any]) -> str:
        lid, gov = self._decide(p, "rules")
        changes = {k: p[k] for k in ("admit_vouches", "posts", "replies") if k in p}
        gov.rules.update(changes)
        return self.log_entry(lid, "rules", self._author()[0])

    def _gov_of(self, oid: str) -> tuple[str, GovLab]:
        pid = self._resolve(oid, self.projects) if any(k.startswith(oid) for k in
                                                        self.projects) else None  # fmt: skip
        if pid is None:
            pid = self.comments[self._resolve(oid, self.comments)]["target"]
        lid = self.projects[pid]["lab"]
        return lid, self.gov[lid]

    def _g_endorse(self, p: dict[str, Any]) -> str:
        for gov in self.gov.values():
            for proposal in gov.proposals:
                if proposal["id"] == p["id"]:
                    proposal["backing"] += 1
                    return _id("endorse")
        raise FakeError("not_found", "no such proposal")

    def _g_approve(self, p: dict[str, Any]) -> str:
        lid, gov = self._gov_of(p["id"])
        if gov.role(self._author()[0]) is None:
            raise FakeError("not_member", "you are not a member of this lab")
        gov.approved.add(p["id"])
        return self.log_entry(lid, "approve", self._author()[0], target=p["id"])

    def _g_lab_hide(self, p: dict[str, Any]) -> str:
        lid, gov = self._gov_of(p["id"])
        if gov.role(self._author()[0]) != "steward":
            raise FakeError("not_steward", "only a steward can hide for the lab")
        gov.hidden[p["id"]] = p.get("reason") or ""
        return self.log_entry(lid, "hide", self._author()[0], target=p["id"],
                              reason=p.get("reason") or "")  # fmt: skip

    def _g_hide(self, p: dict[str, Any]) -> bool:
        self.local_hidden.add(p["id"])
        return True

    def _g_mute(self, p: dict[str, Any]) -> bool:
        self.muted.add(p["member"])
        return True
