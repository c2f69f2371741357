"""How commands print what they read, as text for people (`--json` prints the data itself):
one line per project in lists, and `show` of any kind (a project with its thread, a lab with
its projects, a comment within its thread, anything else with its target)."""

from __future__ import annotations

from typing import Any

from node.cli.living_cmds import fmt_living_head, fmt_pledges


def _short(hex_id: str | None) -> str:
    return (hex_id or "")[:12]


def _fmt_project_line(p: dict[str, Any]) -> str:
    tags = " ".join("#" + t for t in p.get("tags", []))
    who = _who(p)
    line = f"{_short(p['id'])}  {p['title']}  [{p['stage']}] by {who}  ({p['comments']} comments) {tags}".rstrip()  # noqa: E501
    return line + moderation_mark(p)


def moderation_mark(v: dict[str, Any]) -> str:
    """"" for a shown object; else why it is not shown to everyone (docs/governance.md)."""
    state = v.get("moderation") or "shown"
    if state == "queued":
        return "  [queued: waiting for the lab's approval]"
    if state == "hidden":
        by, reason = v.get("hidden_by"), v.get("hidden_reason") or ""
        if by in (None, "node"):  # the node's own words say no more than this
            where = "hidden on this node"
            reason = "" if reason == where else reason
        else:
            where = f"hidden by the lab (steward {_short(by)})"
        return f"  [{where}{': ' + reason if reason else ''}]"
    return ""


def _who(v: dict[str, Any]) -> str:
    who = str(v.get("author_name") or _short(v.get("member") or v["author"]))
    mark = v.get("attribution")
    if mark in ("unattributed", "disputed", "pending"):  # docs/identity.md §6
        who += f" ({mark})"
    return who


def _fmt_comments(lines: list[str], cs: list[dict[str, Any]], depth: int,
                  mark: str | None = None) -> None:  # fmt: skip
    """Threaded comments, indented by depth; the comment `mark` (an id) flagged with >."""
    for c in cs:
        flag = "> " if c["id"] == mark else "- "
        lines.append(f"{'  ' * depth}{flag}{_who(c)} ({_short(c['id'])}): {c['body']}"
                     + moderation_mark(c))
        _fmt_comments(lines, c.get("replies", []), depth + 1, mark)


def _fmt_ref(v: dict[str, Any] | None) -> str:
    """One line naming an object a comment or tag is about."""
    if v is None:
        return "an object not here (not arrived yet, or withdrawn)"
    if v["kind"] == "project":
        return f"project {v['title']} ({_short(v['id'])})"
    if v["kind"] == "lab":
        return f"lab {v['name']} ({_short(v['id'])})"
    if v["kind"] == "comment":
        return f"comment by {_who(v)} ({_short(v['id'])}): {v['body']}"
    return f"{v['kind']} {_short(v['id'])} by {_who(v)}"


def lab_name(lab: dict[str, Any]) -> str:
    """A lab's name, with its short id when another known lab has a like name."""
    name = str(lab.get("name") or "")
    return f"{name} ({lab.get('short_id') or lab['id'][:8]})" if lab.get("name_clash") else name


def _fmt_project(p: dict[str, Any], lines: list[str],
                 lineage: dict[str, Any] | None = None) -> None:  # fmt: skip
    lines += [
        f"{p['title']}  [{p['stage']}]",
        f"id {p['id']}",
        f"lab {p.get('lab_name') or _short(p['lab'])}, by {_who(p)}",
    ]
    if moderation_mark(p):
        lines.append(moderation_mark(p).strip(" []"))
    if p.get("tags"):
        lines.append("tags: " + " ".join("#" + t for t in p["tags"]))
    if p.get("needs"):
        lines.append("needs: " + ", ".join(p["needs"]))
    fmt_living_head(p, lineage or {}, lines)
    for part in (p.get("summary"), p.get("body")):
        if part:
            lines += ["", part]


def _fmt_lab(d: dict[str, Any], lab: dict[str, Any], lines: list[str]) -> None:
    where = ", ".join(x for x in (lab.get("place"), lab.get("theme")) if x)
    lines += [f"lab {lab_name(lab)}" + (f"  ({where})" if where else ""), f"id {lab['id']}",
              f"by {_who(lab)}" + (", followed" if lab.get("followed") else "")]  # fmt: skip
    if lab.get("role"):
        lines.append(f"you are a {lab['role']}" + (f"; {lab['queued']} waiting in its queue "
                     f"(percolab queue {_short(lab['id'])})" if lab.get("queued") else ""))
    if lab.get("description"):
        lines += ["", lab["description"]]
    lines += ["", f"projects ({lab['projects']}):"]
    lines += ["  " + _fmt_project_line(p) for p in d.get("projects", [])] or ["  none yet"]
    if d.get("more_projects"):
        lines.append(f"  ... all of them: percolab list --lab {_short(lab['id'])}")


def _fmt_show(d: dict[str, Any]) -> str:
    """`show` of any kind (pages.show): the object, then what places it."""
    kind = d["kind"]
    v = d[kind] if kind in d else d["object"]
    lines: list[str] = []
    if kind == "project":
        _fmt_project(v, lines, d.get("lineage"))
        fmt_pledges(d, lines)
    elif kind == "lab":
        _fmt_lab(d, v, lines)
    elif kind == "comment":
        lines += [f"comment by {_who(v)}", f"id {v['id']}", f"on {_fmt_ref(d.get('target'))}"]
        if d.get("thread"):
            lines += ["", "thread:"]
            _fmt_comments(lines, d["thread"], 1, mark=v["id"])
        else:
            lines += ["", v["body"]]
    elif kind == "tag":
        lines += [" ".join("#" + t for t in v.get("labels", [])), f"id {v['id']}",
                  f"by {_who(v)}, on {_fmt_ref(d.get('target'))}"]  # fmt: skip
    else:  # profile, retraction, an extension kind: its fields as they are
        lines += [f"{kind} by {_who(v)}", f"id {v['id']}"]
        if "target" in d:
            lines.append(f"on {_fmt_ref(d['target'])}")
        skip = {"id", "kind", "author", "author_name", "ts", "lab", "target"}
        lines += [f"{k}: {val}" for k, val in v.items() if k not in skip and val not in ("", None)]
    if d.get("tags") and kind != "project":
        labels = {t for tag in d["tags"] for t in tag.get("labels", [])}
        lines.append("tagged: " + " ".join("#" + t for t in sorted(labels)))
    if d.get("comments") and kind != "comment":
        lines += ["", "comments:"]
        _fmt_comments(lines, d["comments"], 1)
    return "\n".join(lines)


