"""A lab without a chief on the command line (docs/governance.md, docs/rpc.md "Labs without a
chief"): the lab's members, decisions and log (`lab members|admit|remove|rules|endorse|log|
suspend|unsuspend`, `vouch`, `queue`, `approve`, `hide --lab`, `unhide --lab`), and this
node's own moderation (`hide`, `unhide`, `mute`, `unmute`, `block`, `unblock`, `moderation`).

Every decision is refused by the node before it is signed when it would have no authority
(`not_steward`, `not_member`): one line, non-zero exit, like any other error.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from node.cli.backend import Backend
from node.cli.errors import UsageError
from node.cli.views import _fmt_project_line, _fmt_ref, _short, moderation_mark
from node.service.api import ServiceError
from node.service.queries import MAX_PAGE

# `lab` actions of this module, and those that only read.
LAB_ACTIONS = frozenset({"members", "admit", "remove", "rules", "endorse", "log", "suspend",
                         "unsuspend"})  # fmt: skip
_READS = frozenset({"members", "log", "queue", "moderation"})
VISIBILITY = ("queued", "shown")
LOG_PAGE = 50


def _out(a: argparse.Namespace, data: Any, human: Callable[[Any], str]) -> None:
    if a.json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        text = human(data)
        if text:
            print(text)


def _done(a: argparse.Namespace, decision: Any) -> None:
    """A decision's id (`--json`: `{"id": ...}`, as `post` prints)."""
    _out(a, {"id": decision}, lambda d: str(d["id"]))


def _when(ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts / 1000))


def _fp(m: dict[str, Any] | None) -> str:
    """The first two groups of a fingerprint: enough to tell two members of one name apart."""
    return "-".join(str((m or {}).get("fingerprint") or "").split("-")[:2])


def _name(m: dict[str, Any] | None) -> str:
    if not m:
        return "nobody"
    return str(m.get("name") or _short(m.get("member")))


def _limit(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= n <= MAX_PAGE:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_PAGE}, not {n}")
    return n


def _count(n: int, what: str, many: str) -> str:
    return f"{n} {what if n == 1 else many}"


# ---- lab actions ------------------------------------------------------------------------


def cmd_lab_governance(b: Backend, a: argparse.Namespace) -> None:
    act = a.lab_cmd
    if act == "members":
        _out(a, b.call("lab_members", lab=a.lab), fmt_members)
    elif act in ("admit", "remove"):
        params: dict[str, Any] = {"lab": a.lab, "member": a.member,
                                  "role": "steward" if a.steward else "member"}  # fmt: skip
        if act == "remove" and a.reason:
            params["reason"] = a.reason
        _done(a, b.call("lab_" + act, **params))
    elif act == "rules":
        rules = {k: v for k, v in (("admit_vouches", a.admit_vouches), ("posts", a.posts),
                                   ("replies", a.replies)) if v is not None}  # fmt: skip
        if rules:
            _done(a, b.call("lab_rules", lab=a.lab, **rules))
        else:
            _out(a, b.call("lab_members", lab=a.lab)["rules"], fmt_rules)
    elif act == "endorse":
        _done(a, b.call("endorse", id=a.id))
    elif act == "log":
        _cmd_log(b, a)
    elif act in ("suspend", "unsuspend"):
        params = {"lab": a.lab, "member": a.member}
        if act == "suspend" and a.reason:
            params["reason"] = a.reason
        _done(a, b.call(act, **params))


def _cmd_log(b: Backend, a: argparse.Namespace) -> None:
    log = b.call("lab_log", lab=a.lab, limit=a.limit)
    if a.json:
        _out(a, log, str)
        return
    try:  # what pending proposals still wait for (the log says only "pending")
        proposals = b.call("lab_members", lab=a.lab).get("proposals", [])
    except ServiceError:
        proposals = []
    waiting = {p["id"]: max(0, int(p["needed"]) - int(p["backing"])) for p in proposals}
    _out(a, log, lambda d: fmt_log(d, waiting))


# ---- other commands ---------------------------------------------------------------------


def cmd_vouch(b: Backend, a: argparse.Namespace) -> None:
    _done(a, b.call("vouch", lab=a.lab, member=a.member))


def cmd_queue(b: Backend, a: argparse.Namespace) -> None:
    _out(a, b.call("queue", lab=a.lab, limit=a.limit), fmt_queue)


def cmd_approve(b: Backend, a: argparse.Namespace) -> None:
    _done(a, b.call("approve", id=a.id))


def cmd_hide(b: Backend, a: argparse.Namespace) -> None:
    if a.lab:
        params: dict[str, Any] = {"id": a.id}
        if a.reason:
            params["reason"] = a.reason
        _done(a, b.call("lab_hide", **params))
        return
    if a.reason:  # a local hide is no object: nothing would carry the reason
        raise UsageError("hide: --reason goes with --lab (this node's own hiding keeps none)")
    _local(b, a, "hide", {"id": a.id}, f"hidden on this node: {a.id}")


def cmd_unhide(b: Backend, a: argparse.Namespace) -> None:
    if a.lab:
        _done(a, b.call("lab_unhide", id=a.id))
    else:
        _local(b, a, "unhide", {"id": a.id}, f"shown again on this node: {a.id}")


def _local(b: Backend, a: argparse.Namespace, method: str, params: dict[str, Any],
           said: str) -> None:  # fmt: skip
    result = b.call(method, **params)
    _out(a, result, lambda _: said)


def cmd_mute(b: Backend, a: argparse.Namespace) -> None:
    _local(b, a, "mute", {"member": a.member}, f"muted {a.member} on this node")


def cmd_unmute(b: Backend, a: argparse.Namespace) -> None:
    _local(b, a, "unmute", {"member": a.member}, f"unmuted {a.member} on this node")


def cmd_block(b: Backend, a: argparse.Namespace) -> None:
    _local(b, a, "block", {"peer": a.peer}, f"blocked peer {a.peer}")


def cmd_unblock(b: Backend, a: argparse.Namespace) -> None:
    _local(b, a, "unblock", {"peer": a.peer}, f"unblocked peer {a.peer}")


def cmd_moderation(b: Backend, a: argparse.Namespace) -> None:
    _out(a, b.call("moderation"), fmt_moderation)


GOVERNANCE_COMMANDS: dict[str, Callable[[Backend, argparse.Namespace], int | None]] = {
    "vouch": cmd_vouch, "queue": cmd_queue, "approve": cmd_approve, "hide": cmd_hide,
    "unhide": cmd_unhide, "mute": cmd_mute, "unmute": cmd_unmute, "block": cmd_block,
    "unblock": cmd_unblock, "moderation": cmd_moderation,
}  # fmt: skip


def owns(args: argparse.Namespace) -> bool:
    return args.command in GOVERNANCE_COMMANDS or (
        args.command == "lab" and args.lab_cmd in LAB_ACTIONS)


def writes(args: argparse.Namespace) -> bool:
    """Whether the command writes (reads also work on a read-only data directory)."""
    act = args.lab_cmd if args.command == "lab" else args.command
    if act == "rules":
        return any(getattr(args, k) is not None for k in ("admit_vouches", "posts", "replies"))
    return act not in _READS


def show_hidden(args: argparse.Namespace) -> dict[str, Any]:
    """`--show-hidden` as the parameter of a list or `show` call (none when not given)."""
    return {"show_hidden": True} if getattr(args, "show_hidden", False) else {}


# ---- printing ---------------------------------------------------------------------------


def fmt_rules(r: dict[str, Any]) -> str:
    return (f"posts by non-members: {r['posts']}\nreplies by non-members: {r['replies']}\n"
            f"vouches to admit a newcomer: {r['admit_vouches']}")  # fmt: skip


def _member_line(m: dict[str, Any], role: str, extra: str = "") -> str:
    return f"  {_name(m):<24} {role:<9} {_fp(m)}{extra}"


def fmt_members(d: dict[str, Any]) -> str:
    role = d.get("role")
    lines = [f"lab {_short(d['lab'])}: " + (f"you are a {role}" if role else "you are not a "
                                            "member")]  # fmt: skip
    stewards = {m["member"] for m in d["stewards"]}
    rows = [_member_line(m, "steward") for m in d["stewards"]]
    rows += [_member_line(m, "member") for m in d["members"] if m["member"] not in stewards]
    rows += [_member_line(m, "suspended") for m in d["suspended"]]
    need = d["rules"]["admit_vouches"]
    for n in d["newcomers"]:
        by = ": " + ", ".join(map(_name, n["vouchers"])) if n["vouchers"] else ""
        counted = f"{len(n['vouchers'])} of {_count(need, 'vouch', 'vouches')}"
        rows.append(_member_line(n["member"], "newcomer", f"  ({counted}{by})"))
    lines += rows or ["  nobody yet"]
    r = d["rules"]
    lines.append(f"rules: posts {r['posts']}, replies {r['replies']}, "
                 f"{_count(need, 'vouch', 'vouches')} to admit")  # fmt: skip
    for p in d.get("proposals", []):
        lines.append(f"proposal {_short(p['id'])}: {_act_words(p)} by {_name(p['by'])}, "
                     f"{p['backing']} of {p['needed']} steward(s)")  # fmt: skip
    return "\n".join(lines)


def _act_words(e: dict[str, Any]) -> str:
    """What a decision (a log entry or a proposal) asks, in words."""
    act, subject = e["act"], e.get("subject")
    who = _name(subject) if subject else ""
    role = e.get("role") or "member"
    target = _short(e.get("target")) if e.get("target") else ""
    if act in ("admit", "remove"):
        text = f"{act} {who}" + (" as steward" if role == "steward" else "")
    elif act in ("vouch",):
        text = f"vouch for {who}"
    elif act in ("suspend", "unsuspend"):
        text = f"{act} {who}"
    elif act == "rules":
        rules = e.get("rules") or {}
        text = "rules (" + ", ".join(f"{k} {v}" for k, v in sorted(rules.items())) + ")"
    elif act in ("endorse", "approve", "hide", "unhide"):
        text = f"{act} {target}"
    else:
        text = f"{act} (unknown to this release)"
    if e.get("reason"):
        text += f" (“{e['reason']}”)"
    return text


def _effect_words(e: dict[str, Any], waiting: dict[str, int]) -> str:
    effect = e["effect"]
    if effect == "applied":
        return "applied"
    if effect == "no_authority":
        return "had no authority"
    if effect == "pending":
        n = waiting.get(e["id"])
        if n is not None and e["act"] != "vouch":
            return f"waiting for {n} more steward(s)"
        return "waiting for more vouches" if e["act"] == "vouch" else "waiting"
    if effect == "unknown_act":
        return "not understood by this release"
    return "had no effect"


def fmt_log(d: dict[str, Any], waiting: dict[str, int] | None = None) -> str:
    """The decision log, newest first: when, who, what, and its effect in words."""
    lines = [f"{_when(e['ts'])}  {_name(e.get('by')):<16} {_act_words(e)}: "
             f"{_effect_words(e, waiting or {})}" for e in d["entries"]]  # fmt: skip
    if d.get("next"):
        lines.append(f"(older decisions not shown: --limit up to {MAX_PAGE})")
    return "\n".join(lines) or "no decisions yet"


def fmt_queue(d: dict[str, Any]) -> str:
    lines: list[str] = []
    for v in d["objects"]:
        if v["kind"] == "project":  # the line carries the mark
            lines.append(_fmt_project_line(v))
        else:
            lines.append(f"{_fmt_ref(v)}{moderation_mark(v)}")
    for n in d["newcomers"]:
        vouchers = ", ".join(map(_name, n["vouchers"])) or "nobody yet"
        lines.append(f"newcomer {_name(n['member'])} ({_fp(n['member'])}), vouched for by "
                     f"{vouchers}")  # fmt: skip
    if not lines:
        return "nothing waiting"
    total = int(d.get("total", len(d["objects"])))
    lines.append(f"showing {len(d['objects'])} of {total} waiting posts"
                 + (f" (--limit up to {MAX_PAGE})" if d.get("next") else ""))  # fmt: skip
    return "\n".join(lines)


def fmt_moderation(d: dict[str, Any]) -> str:
    lines = ["muted: " + (", ".join(f"{_name(m)} ({_fp(m)})" for m in d["muted"]) or "nobody"),
             "hidden here: " + (", ".join(map(_short, d["hidden"])) or "nothing"),
             "blocked peers: " + (", ".join(d["blocked"]) or "none"),
             "following the decisions of: " + (", ".join(map(_short, d["decisions_followed"]))
                                                or "no other lab")]  # fmt: skip
    return "\n".join(lines)


# ---- the parser -------------------------------------------------------------------------


def add_governance_commands(add: Callable[[str, str], argparse.ArgumentParser],
                            lab_sub: Any, common: argparse.ArgumentParser) -> None:  # fmt: skip
    """The `lab` actions (on `lab_sub`, the `lab` subparsers) and the top-level commands."""

    def lab_action(name: str, help: str) -> argparse.ArgumentParser:
        s: argparse.ArgumentParser = lab_sub.add_parser(name, parents=[common], help=help,
                                                        description=help)  # fmt: skip
        return s

    s = lab_action("members", "the lab's stewards, members, suspended members and newcomers")
    s.add_argument("lab", help="lab id, id prefix or name")
    for act, verb in (("admit", "admit a member"), ("remove", "remove a member")):
        s = lab_action(act, f"{verb} (a steward's decision)")
        s.add_argument("lab")
        s.add_argument("member", help="member id or a unique known name")
        s.add_argument("--steward", action="store_true",
                       help=f"{act} as a steward: a proposal the lab's stewards back")
        if act == "remove":
            s.add_argument("--reason")
    s = lab_action("rules", "print the lab's rules, or propose new ones (stewards)")
    s.add_argument("lab")
    s.add_argument("--admit-vouches", type=int, metavar="N",
                   help="vouches by members that admit a newcomer")
    s.add_argument("--posts", choices=VISIBILITY, help="non-members' projects")
    s.add_argument("--replies", choices=VISIBILITY, help="non-members' comments, tags...")
    s = lab_action("endorse", "back a steward's proposal (its decision id)")
    s.add_argument("id")
    s = lab_action("log", "the lab's decisions, newest first, with what each did")
    s.add_argument("lab")
    s.add_argument("--limit", type=_limit, default=LOG_PAGE, help=f"1 to {MAX_PAGE}")
    s = lab_action("suspend", "suspend a member (a steward's decision)")
    s.add_argument("lab")
    s.add_argument("member")
    s.add_argument("--reason")
    s = lab_action("unsuspend", "lift a member's suspension")
    s.add_argument("lab")
    s.add_argument("member")

    s = add("vouch", "vouch for a newcomer to a lab you are a member of")
    s.add_argument("lab")
    s.add_argument("member", help="member id or a unique known name")
    s = add("queue", "what waits for a lab's approval: objects and newcomers")
    s.add_argument("lab")
    s.add_argument("--limit", type=_limit, default=LOG_PAGE, help=f"1 to {MAX_PAGE}")
    s = add("approve", "approve an object waiting in a lab's queue (stewards)")
    s.add_argument("id")
    s = add("hide", "hide an object on this node, or with --lab for the whole lab (stewards)")
    s.add_argument("id")
    s.add_argument("--lab", action="store_true", help="the lab's decision, not this node's")
    s.add_argument("--reason", help="why (with --lab: part of the signed decision)")
    s = add("unhide", "show again an object hidden on this node (or with --lab, by the lab)")
    s.add_argument("id")
    s.add_argument("--lab", action="store_true", help="the lab's decision, not this node's")
    for name, what in (("mute", "hide a member's objects on this node"),
                       ("unmute", "show a muted member's objects again")):  # fmt: skip
        s = add(name, what)
        s.add_argument("member", help="member id or a unique known name")
    for name, what in (("block", "refuse a peer's connections, sync and gossip"),
                       ("unblock", "accept a blocked peer again")):  # fmt: skip
        s = add(name, what)
        s.add_argument("peer", help="a libp2p peer id")
    add("moderation", "this node's own moderation: muted members, hidden objects, blocked "
                      "peers, labs whose decisions it follows")  # fmt: skip


def add_show_hidden(s: argparse.ArgumentParser) -> None:
    s.add_argument("--show-hidden", action="store_true",
                   help="also list hidden objects and others' queued ones (marked)")
