"""The `percolab` command line.

Data commands go through the running node for the data directory when there is one (so a
post is published at once), else they open the store directly. Errors are one line on stderr
and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from node.backend import Backend, DataDirBusy, open_backend
from node.config import ConfigError, resolve_data_dir
from node.identity import IdentityError
from node.service import ServiceError
from node.store import StoreError
from protocols.exportfile import MAGIC, ExportFileError, decode_export, encode_export
from protocols.rpc import MAX_RPC_FRAME

log = logging.getLogger(__name__)
# One import_objects call takes at most IMPORT_CHUNK objects and IMPORT_CHUNK_BYTES of signed
# bytes: a chunk of large objects still fits one RPC frame to a running node (2000 objects a
# call, with no byte bound, overflowed MAX_RPC_FRAME once objects averaged 8 KiB), and a call
# stays large enough for the ingest pipeline's batching.
IMPORT_CHUNK = 8000
IMPORT_CHUNK_BYTES = MAX_RPC_FRAME // 2


class CliError(Exception):
    pass


def _out(args: argparse.Namespace, data: Any, human: Callable[[Any], str] | None = None) -> None:
    if getattr(args, "json", False) or human is None:
        print(json.dumps(data, ensure_ascii=False, indent=None if args.json else 2))
    else:
        text = human(data)
        if text:
            print(text)


def _short(hex_id: str | None) -> str:
    return (hex_id or "")[:12]


def _fmt_project_line(p: dict[str, Any]) -> str:
    tags = " ".join("#" + t for t in p.get("tags", []))
    who = p.get("author_name") or _short(p["author"])
    return f"{_short(p['id'])}  {p['title']}  [{p['stage']}] by {who}  ({p['comments']} comments) {tags}".rstrip()  # noqa: E501


def _fmt_show(d: dict[str, Any]) -> str:
    p = d["project"]
    lines = [
        f"{p['title']}  [{p['stage']}]",
        f"id {p['id']}",
        f"lab {p.get('lab_name') or _short(p['lab'])}, by {p.get('author_name') or _short(p['author'])}",  # noqa: E501
    ]
    if p.get("tags"):
        lines.append("tags: " + " ".join("#" + t for t in p["tags"]))
    if p.get("needs"):
        lines.append("needs: " + ", ".join(p["needs"]))
    for part in (p.get("summary"), p.get("body")):
        if part:
            lines += ["", part]

    def walk(cs: list[dict[str, Any]], depth: int) -> None:
        for c in cs:
            who = c.get("author_name") or _short(c["author"])
            lines.append(f"{'  ' * depth}- {who} ({_short(c['id'])}): {c['body']}")
            walk(c.get("replies", []), depth + 1)

    if d["comments"]:
        lines += ["", "comments:"]
        walk(d["comments"], 1)
    return "\n".join(lines)


def cmd_init(b: Backend, a: argparse.Namespace) -> None:
    who = b.call("init", name=a.name, about=a.about or "")
    _out(a, who, lambda w: f"identity created: {w['name']} ({w['fingerprint']})")


def cmd_lab(b: Backend, a: argparse.Namespace) -> None:
    if a.lab_cmd == "create":
        lid = b.call("lab_create", name=a.name, description=a.description or "",
                     place=a.place or "", theme=a.theme or "")  # fmt: skip
        _out(a, {"id": lid}, lambda d: d["id"])
    elif a.lab_cmd == "list":
        _out(a, b.call("lab_list"), lambda labs: "\n".join(
            f"{'*' if lab['followed'] else ' '} {_short(lab['id'])}  {lab['name']}  "
            f"({lab['projects']} projects)" for lab in labs) or "no labs known yet")  # fmt: skip
    else:
        method = "lab_follow" if a.lab_cmd == "follow" else "lab_unfollow"
        _out(a, b.call(method, lab=a.lab), lambda _: f"{a.lab_cmd}ed {a.lab}")


def cmd_post(b: Backend, a: argparse.Namespace) -> None:
    pid = b.call("post", lab=a.lab, title=a.title, summary=a.summary or "", body=a.body or "",
                 stage=a.stage, needs=a.need or [], tags=a.tag or [])  # fmt: skip
    _out(a, {"id": pid}, lambda d: d["id"])


def cmd_comment(b: Backend, a: argparse.Namespace) -> None:
    cid = b.call("comment", target=a.id, body=a.body, parent=a.parent)
    _out(a, {"id": cid}, lambda d: d["id"])


def cmd_tag(b: Backend, a: argparse.Namespace) -> None:
    _out(a, {"id": b.call("tag", target=a.id, labels=a.labels)}, lambda d: d["id"])


def cmd_retract(b: Backend, a: argparse.Namespace) -> None:
    _out(a, {"id": b.call("retract", id=a.id)}, lambda d: d["id"])


def cmd_list(b: Backend, a: argparse.Namespace) -> None:
    page = b.call("projects", lab=a.lab, tag=a.tag, author=a.author, limit=a.limit,
                  order=a.order)  # fmt: skip
    _out(a, page, lambda p: "\n".join(map(_fmt_project_line, p["items"])) or "no projects")


def cmd_show(b: Backend, a: argparse.Namespace) -> None:
    _out(a, b.call("show", id=a.id), _fmt_show)


def cmd_search(b: Backend, a: argparse.Namespace) -> None:
    hits = b.call("search", query=a.query, limit=a.limit)
    _out(a, hits, lambda h: "\n".join(map(_fmt_project_line, h)) or "no matches")


def cmd_export(b: Backend, a: argparse.Namespace) -> None:
    """Page by page (each page one call, so a large store fits the RPC frame), into a
    `.part` file renamed at the end: a failed export leaves no truncated file behind."""
    path = Path(a.file)
    part = path.with_name(path.name + ".part")
    count, size, after = 0, 0, 0
    try:
        with part.open("wb") as f:
            f.write(MAGIC)
            while after is not None:
                page = b.call("export", lab=a.lab, after=after)
                data = encode_export(page["objects"])[len(MAGIC) :]
                f.write(data)
                count, size, after = count + len(page["objects"]), size + len(data), page["next"]
        part.replace(path)
    except OSError as exc:
        raise CliError(f"cannot write {a.file}: {exc.strerror}") from exc
    finally:
        part.unlink(missing_ok=True)
    _out(a, {"objects": count, "bytes": len(MAGIC) + size, "file": a.file},
         lambda d: f"exported {d['objects']} objects to {d['file']}")  # fmt: skip


def cmd_import(b: Backend, a: argparse.Namespace) -> None:
    try:
        objects = decode_export(Path(a.file).read_bytes())
    except OSError as exc:
        raise CliError(f"cannot read {a.file}: {exc.strerror}") from exc
    except ExportFileError as exc:
        raise CliError(f"{a.file}: {exc}") from exc
    total: dict[str, Any] = {"accepted": 0, "known": 0, "rejected": [], "unindexed": []}
    chunks = list(_import_chunks(objects))
    replies = b.call_each("import_objects", [{"objects": chunk} for _, chunk in chunks])
    for (start, _), r in zip(chunks, replies, strict=True):
        total["accepted"] += r["accepted"]
        total["known"] += r["known"]
        for name in ("rejected", "unindexed"):
            total[name] += [x | {"index": x["index"] + start} for x in r.get(name, [])]
    _out(a, total, lambda t: f"imported {t['accepted']} new, {t['known']} already known, "
         f"{len(t['rejected'])} rejected" + "".join(
             f"\n  #{x['index']}: {x['code']}: {x['reason']}" for x in t["rejected"][:20])
         + (f"\n{len(t['unindexed'])} stored but not shown here (an unknown kind or version, "
            "or broken rules): " + ", ".join(sorted({x["code"] for x in t["unindexed"]}))
            if t["unindexed"] else ""))  # fmt: skip


def _import_chunks(objects: list[bytes]) -> Iterator[tuple[int, list[bytes]]]:
    """(index of the first object, objects) per import call, in file order."""
    start, size = 0, 0
    for i, raw in enumerate(objects):
        if i > start and (i - start >= IMPORT_CHUNK or size + len(raw) > IMPORT_CHUNK_BYTES):
            yield start, objects[start:i]
            start, size = i, 0
        size += len(raw)
    if start < len(objects):
        yield start, objects[start:]


def cmd_status(b: Backend, a: argparse.Namespace) -> None:
    _out(a, b.call("status"), None)


def cmd_peers(b: Backend, a: argparse.Namespace) -> None:
    _out(a, b.call("peers"), lambda ps: "\n".join(p["peer_id"] for p in ps) or "no peers")


def cmd_connect(b: Backend, a: argparse.Namespace) -> None:
    _out(a, b.call("connect", addr=a.addr), lambda _: f"connected to {a.addr}")


DATA_COMMANDS: dict[str, Callable[[Backend, argparse.Namespace], None]] = {
    "init": cmd_init, "lab": cmd_lab, "post": cmd_post, "comment": cmd_comment,
    "tag": cmd_tag, "retract": cmd_retract, "list": cmd_list, "show": cmd_show,
    "search": cmd_search, "export": cmd_export, "import": cmd_import, "status": cmd_status,
    "peers": cmd_peers, "connect": cmd_connect,
}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default=argparse.SUPPRESS,
                        help="data directory (default: $PERCOLAB_HOME or the user data dir)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print JSON")  # fmt: skip
    p = argparse.ArgumentParser(prog="percolab", parents=[common],
                                description="Percolab: labs sharing projects, peer to peer.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=help, description=help)

    s = add("init", "create your identity and publish your profile")
    s.add_argument("--name", required=True)
    s.add_argument("--about")
    lab = add("lab", "create, list, follow and unfollow labs")
    lab_sub = lab.add_subparsers(dest="lab_cmd", metavar="ACTION", required=True)
    s = lab_sub.add_parser("create", parents=[common], help="create a lab (you follow it)")
    s.add_argument("name")
    s.add_argument("--description")
    s.add_argument("--place")
    s.add_argument("--theme")
    lab_sub.add_parser("list", parents=[common], help="labs known here, followed first")
    for action in ("follow", "unfollow"):
        s = lab_sub.add_parser(action, parents=[common], help=f"{action} a lab (id or name)")
        s.add_argument("lab")
    s = add("post", "post a project in a lab; prints its id")
    s.add_argument("--lab", required=True, help="lab id, id prefix or name")
    s.add_argument("--title", required=True)
    s.add_argument("--summary")
    s.add_argument("--body")
    s.add_argument("--stage", default="idea")
    s.add_argument("--need", action="append", help="something the project needs (repeatable)")
    s.add_argument("--tag", action="append", help="a tag label (repeatable)")
    s = add("comment", "comment on an object (a project, or reply with --parent)")
    s.add_argument("id")
    s.add_argument("--body", required=True)
    s.add_argument("--parent", help="the comment you reply to")
    s = add("tag", "tag any object with one or more labels")
    s.add_argument("id")
    s.add_argument("labels", nargs="+")
    s = add("retract", "withdraw one of your own objects")
    s.add_argument("id")
    s = add("list", "list projects, newest first")
    s.add_argument("--lab")
    s.add_argument("--tag")
    s.add_argument("--author", help="author public key (hex)")
    s.add_argument("--limit", type=int, default=50)
    s.add_argument("--order", choices=("newest", "active"), default="newest")
    s = add("show", "a project with its tags and threaded comments")
    s.add_argument("id")
    s = add("search", "search project titles, summaries and tags")
    s.add_argument("query")
    s.add_argument("--limit", type=int, default=50)
    s = add("export", "write signed objects to a file (byte-exact)")
    s.add_argument("file")
    s.add_argument("--lab")
    s = add("import", "read signed objects from an export file")
    s.add_argument("file")
    add("status", "node and store status (JSON)")
    add("peers", "connected peers (needs a running node)")
    s = add("connect", "dial a peer now (needs a running node)")
    s.add_argument("addr", help="multiaddr ending in /p2p/PEER_ID")
    add_runtime_commands(add)
    return p


def add_runtime_commands(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """`node`, `tui` and `demo`: long-running commands (see node.launch)."""
    from node.launch import add_arguments

    add_arguments(add)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.json = getattr(args, "json", False)
    try:
        data_dir = resolve_data_dir(getattr(args, "data_dir", None))
        command = args.command or "app"
        if command in DATA_COMMANDS:
            with open_backend(data_dir) as backend:
                DATA_COMMANDS[command](backend, args)
            return 0
        from node.launch import run_command

        return run_command(command, data_dir, args)
    except ServiceError as exc:
        print(f"percolab: error: {exc.message}", file=sys.stderr)
        return 1
    except (CliError, ConfigError, IdentityError, StoreError, DataDirBusy) as exc:
        print(f"percolab: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
