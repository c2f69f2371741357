"""`percolab edit`, `history`, `pledge`, `pledges`, `fork` (living projects, docs/rpc.md), and
how they print: a history as a readable diff (a unified diff for the body, old -> new for the
other fields, branches and merges marked)."""

from __future__ import annotations

import argparse
import difflib
import json
import time
from collections.abc import Callable
from typing import Any

from node.cli.backend import Backend
from node.cli.errors import UsageError
from node.service.queries import MAX_PAGE
from protocols.living import DERIVE_HOWS, PLEDGE_TYPES, STAGES

HISTORY_PAGE = 200  # entries `history` prints (the newest; --all for every one)


def _out(a: argparse.Namespace, data: Any, human: Callable[[Any], str]) -> None:
    if a.json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        text = human(data)
        if text:
            print(text)


def _short(hex_id: str | None) -> str:
    return (hex_id or "")[:12]


def _when(ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts / 1000))


def cmd_edit(b: Backend, a: argparse.Namespace) -> None:
    params: dict[str, Any] = {"id": a.id}
    for name in ("title", "summary", "body", "stage", "licence", "note"):
        if getattr(a, name) is not None:
            params[name] = getattr(a, name)
    if a.need is not None or a.no_needs:
        params["needs"] = a.need or []
    if a.coauthor is not None or a.no_coauthors:
        params["coauthors"] = a.coauthor or []
    _out(a, {"id": b.call("edit", **params)}, lambda d: d["id"])


def cmd_history(b: Backend, a: argparse.Namespace) -> None:
    pages = [b.call("history", id=a.id, limit=MAX_PAGE)]
    want = None if a.all else HISTORY_PAGE
    while pages[0]["next"] is not None and (want is None or
                                            sum(len(p["entries"]) for p in pages) < want):
        pages.insert(0, b.call("history", id=a.id, limit=MAX_PAGE, before=pages[0]["next"]))
    result = dict(pages[-1])
    result["entries"] = [e for p in pages for e in p["entries"]]
    result["next"] = pages[0]["next"]
    _out(a, result, fmt_history)


def cmd_pledge(b: Backend, a: argparse.Namespace) -> None:
    pid = b.call("pledge", id=a.id, type=a.type, need=a.need, note=a.note)
    _out(a, {"id": pid}, lambda d: d["id"])


def cmd_pledges(b: Backend, a: argparse.Namespace) -> None:
    if sum(x is not None for x in (a.id, a.lab, a.member)) != 1:
        raise UsageError("pledges: give a project ID, or --lab, or --member (one of them)")
    pledges = b.call("pledges", id=a.id, lab=a.lab, member=a.member, limit=a.limit)
    _out(a, pledges, lambda ps: "\n".join(map(fmt_pledge, ps)) or "no pledges")


def cmd_fork(b: Backend, a: argparse.Namespace) -> None:
    pid = b.call("fork", id=a.id, lab=a.lab, title=a.title, how=a.how, note=a.note)
    _out(a, {"id": pid}, lambda d: d["id"])


# ---- printing ---------------------------------------------------------------------------


def fmt_pledge(p: dict[str, Any]) -> str:
    who = p.get("author_name") or _short(p.get("member") or p["author"])
    line = f"{_short(p['id'])}  {who}: {p['type_label']}"
    if p.get("need"):
        line += f" (need: {p['need']})"
    if p.get("project_title") and (p.get("made") or p.get("received")):
        line += f" on {p['project_title']} ({_short(p['target'])})"
    if p.get("made") is not None:
        line += "  [" + ", ".join(k for k in ("made", "received") if p.get(k)) + "]"
    if p.get("note"):
        line += f" — {p['note']}"
    return line


def fmt_history(h: dict[str, Any]) -> str:
    entries = h["entries"]
    lines = [f"history of {_short(h['project'])}: {h['total']} revision(s), heads "
             + ", ".join(_short(x) for x in h["heads"])]  # fmt: skip
    if h.get("next") is not None:
        lines.append(f"({h['next']} older revision(s) not shown: --all)")
    previous = h["project"] if h.get("next") is None else None
    for e in entries:
        who = e.get("author_name") or _short(e.get("member")) or "nobody"
        head = f"\n{_short(e['id'])}  {_when(e['ts'])}  by {who}"
        if e["effect"] != "applied":
            head += f"  [{e['effect'].replace('_', ' ')}: no effect]"
        lines.append(head)
        sup = e["supersedes"]
        if len(sup) > 1:
            lines.append("  merges " + ", ".join(_short(s) for s in sup))
        elif previous is not None and sup != [previous]:
            lines.append(f"  branch from {_short(sup[0]) if sup else '?'}")
        if e.get("note"):
            lines.append(f"  “{e['note']}”")
        for name, change in e["changes"].items():
            lines += _fmt_change(name, change["old"], change["new"])
        previous = e["id"]
    return "\n".join(lines)


def _fmt_change(name: str, old: Any, new: Any) -> list[str]:
    if name == "body" and isinstance(old, str) and isinstance(new, str):
        diff = difflib.unified_diff(old.splitlines(), new.splitlines(), "body (before)",
                                    "body (after)", lineterm="", n=2)  # fmt: skip
        return ["  " + line for line in diff]
    if isinstance(old, list) and isinstance(new, list):
        out = [f"  {name}:"]
        out += [f"    - {_item(x)}" for x in old if x not in new]
        out += [f"    + {_item(x)}" for x in new if x not in old]
        return out if len(out) > 1 else [f"  {name}: reordered"]
    return [f"  {name}: {_item(old)!s} -> {_item(new)!s}"]


def _item(x: Any) -> str:
    if isinstance(x, dict):  # a derive record
        return f"{x.get('how', '?')} {_short(x.get('project'))}" + (
            f" ({x['note']})" if x.get("note") else "")  # fmt: skip
    if isinstance(x, str) and len(x) == 64:
        return _short(x)
    return repr(x) if isinstance(x, str) else str(x)


def fmt_living_head(p: dict[str, Any], lineage: dict[str, Any], lines: list[str]) -> None:
    """What `show` of a project says before its text: co-authors, licence, revisions,
    lineage."""
    if p.get("coauthors"):
        lines.append("co-authors: " + ", ".join(c.get("name") or _short(c["member"])
                                               for c in p["coauthors"]))  # fmt: skip
    if p.get("licence"):
        known = "" if p.get("licence_known") else " (not a licence id this release knows)"
        lines.append(f"licence: {p['licence']}{known}")
    if p.get("revisions"):
        lines.append(f"revised {p['revisions']} time(s), last {_when(p['revised_ts'])} "
                     f"(percolab history {_short(p['id'])})")  # fmt: skip
    for key, word in (("ancestors", "derives from"), ("descendants", "derived by")):
        for x in lineage.get(key, []):
            where = f" in {x['lab_name']}" if x.get("lab_name") else ""
            lines.append(f"{word}: {x.get('title') or '(not here)'}{where} "
                         f"({_short(x['project'])}, {x['how_label']}, depth {x['depth']})")


def fmt_pledges(d: dict[str, Any], lines: list[str]) -> None:
    """The pledges of a project (`show`): by the need they answer, then the others."""
    pledges = d.get("pledges") or []
    if not pledges:
        return
    lines += ["", f"pledges ({len(pledges)}):"]
    answered: set[str] = set()
    for n in d.get("needs", []):
        if n["pledges"]:
            lines.append(f"  for {n['need']!r}:")
            lines += ["    " + fmt_pledge(x) for x in n["pledges"]]
            answered |= {x["id"] for x in n["pledges"]}
    lines += ["  " + fmt_pledge(x) for x in pledges if x["id"] not in answered]


def add_living_commands(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    s = add("edit", "revise a project you are an author of (only the fields given change)")
    s.add_argument("id")
    s.add_argument("--title")
    s.add_argument("--summary")
    s.add_argument("--body")
    s.add_argument("--stage", choices=STAGES)
    s.add_argument("--need", action="append", help="the whole new list of needs (repeatable)")
    s.add_argument("--no-needs", action="store_true", help="remove every need")
    s.add_argument("--licence", help='an SPDX expression, e.g. CC-BY-SA-4.0, or "all rights '
                   'reserved"; "" states none')  # fmt: skip
    s.add_argument("--coauthor", action="append",
                   help="the whole new list of co-authors: member ids or names (repeatable)")
    s.add_argument("--no-coauthors", action="store_true", help="remove every co-author")
    s.add_argument("--note", help="what changed and why (the revision's message)")
    s = add("history", "a project's revisions with what each changed (a readable diff)")
    s.add_argument("id")
    s.add_argument("--all", action="store_true", help=f"every revision (default: the newest "
                   f"{HISTORY_PAGE})")  # fmt: skip
    s = add("pledge", "offer something to a project (withdraw it with `retract`)")
    s.add_argument("id")
    s.add_argument("--type", required=True, help=", ".join(
        f"{k} ({v})" for k, v in PLEDGE_TYPES.items()))  # fmt: skip
    s.add_argument("--need", help="the project's need it answers (its exact text)")
    s.add_argument("--note")
    s = add("pledges", "pledges on a project, or made and received by a lab or a member")
    s.add_argument("id", nargs="?")
    s.add_argument("--lab")
    s.add_argument("--member", help="member id, id prefix or name")
    s.add_argument("--limit", type=int, default=50, help=f"1 to {MAX_PAGE}")
    s = add("fork", "start a project in a lab from another one (it names its origin)")
    s.add_argument("id")
    s.add_argument("--lab", required=True)
    s.add_argument("--title", help="default: the origin's title")
    s.add_argument("--how", default="fork", help=", ".join(DERIVE_HOWS) + " (default fork)")
    s.add_argument("--note")


LIVING_COMMANDS: dict[str, Callable[[Backend, argparse.Namespace], int | None]] = {
    "edit": cmd_edit, "history": cmd_history, "pledge": cmd_pledge, "pledges": cmd_pledges,
    "fork": cmd_fork,
}  # fmt: skip
