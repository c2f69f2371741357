"""The `percolab` command line.

Data commands go through the running node for the data directory when there is one (so a
post is published at once), else they open the store directly.

Every run goes through one error boundary (`main`): our errors become one line on stderr and
an exit status from EXIT_*; anything unexpected becomes one line naming a crash report (the
traceback, in the data directory or the temp directory), never a traceback on the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

import lmdb

from node.cli import governance_cmds as gov
from node.cli import pair_cmds
from node.cli.backend import Backend, DataDirBusy, DataDirError, open_backend
from node.cli.device_cmds import (
    add_device_commands,
    cmd_device,
    cmd_identity_rotate,
    cmd_recovery,
)
from node.cli.device_cmds import writes as device_writes
from node.cli.errors import (
    EXIT_ERROR,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    CliError,
    UsageError,
    _error,
    _os_error,
    write_crash_report,
)
from node.cli.identity_cmds import (
    add_identity_commands,
    new_key_params,
    run_identity,
    show_key_notices,
)
from node.cli.living_cmds import LIVING_COMMANDS, add_living_commands
from node.cli.member_cmds import add_member_commands, as_member, cmd_members, members_writes
from node.cli.views import _fmt_project_line, _fmt_show, _short, lab_name
from node.config import ConfigError, resolve_data_dir
from node.identity import IdentityError, holds_identity
from node.keys.passphrase import set_passphrase_file
from node.service.api import ServiceError
from node.service.queries import MAX_PAGE
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

# Commands that work on a data directory holding no identity (they create one, or a node).
NO_IDENTITY_COMMANDS = frozenset({"init", "node", "app", "demo", "identity"})
# Commands that only read the store: they also work on a read-only data directory.
READ_COMMANDS = frozenset({"list", "show", "search", "export", "status", "peers", "history",
                           "pledges"})  # fmt: skip
READ_LAB_ACTIONS = frozenset({"list"})
# Argument names that are file paths: any bytes the OS allows; every other string must be
# UTF-8 text (it ends up in a signed object, or compared with one).
PATH_ARGS = frozenset({"file", "passphrase_file", "backup_passphrase_file"})
STDIO = "-"  # `export -` / `import -`: stdout / stdin


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: usage problems raise UsageError (the boundary prints
    one line), instead of printing the usage block and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


class _Version(argparse.Action):
    """`--version`, looked up only when asked (package metadata costs a few ms)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> NoReturn:  # fmt: skip
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("percolab")
        except PackageNotFoundError:  # run from a source tree that was never installed
            v = "unknown (not installed)"
        print(f"percolab {v}")
        parser.exit()


def _page_limit(text: str) -> int:
    """--limit: 1 to MAX_PAGE (0 or a negative number used to be taken as 1)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= n <= MAX_PAGE:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_PAGE}, not {n}")
    return n


def _out(args: argparse.Namespace, data: Any, human: Callable[[Any], str] | None = None) -> None:
    if getattr(args, "json", False) or human is None:
        print(json.dumps(data, ensure_ascii=False, indent=None if args.json else 2))
    else:
        text = human(data)
        if text:
            print(text)


def cmd_init(b: Backend, a: argparse.Namespace) -> None:
    key = new_key_params(resolve_data_dir(getattr(a, "data_dir", None)), a.unencrypted_key)
    if a.device_name:
        key["device_name"] = a.device_name
    who = b.call("init", name=a.name, about=a.about or "", **key)
    _out(a, who, lambda w: f"identity created: {w['name']} ({w['fingerprint']})")


def cmd_lab(b: Backend, a: argparse.Namespace) -> None:
    if a.lab_cmd in gov.LAB_ACTIONS:  # members, decisions, log (governance_cmds.py)
        gov.cmd_lab_governance(b, a)
    elif a.lab_cmd == "create":
        lid = b.call("lab_create", name=a.name, description=a.description or "",
                     place=a.place or "", theme=a.theme or "",
                     **({"posts": "shown"} if a.open else {}))  # fmt: skip
        _out(a, {"id": lid}, lambda d: d["id"])
    elif a.lab_cmd == "list":
        _out(a, b.call("lab_list"), lambda labs: "\n".join(
            f"{'*' if lab['followed'] else ' '} {_short(lab['id'])}  {lab_name(lab)}  "
            f"({lab['projects']} projects)" for lab in labs) or "no labs known yet")  # fmt: skip
    else:
        method = "lab_follow" if a.lab_cmd == "follow" else "lab_unfollow"
        _out(a, b.call(method, lab=a.lab), lambda _: f"{a.lab_cmd}ed {a.lab}")


def cmd_post(b: Backend, a: argparse.Namespace) -> None:
    pid = b.call("post", lab=a.lab, title=a.title, summary=a.summary or "", body=a.body or "",
                 stage=a.stage, needs=a.need or [], tags=a.tag or [],
                 licence=a.licence or "")  # fmt: skip
    _out(a, {"id": pid}, lambda d: d["id"])


def cmd_comment(b: Backend, a: argparse.Namespace) -> None:
    cid = b.call("comment", target=a.id, body=a.body, parent=a.parent)
    _out(a, {"id": cid}, lambda d: d["id"])


def cmd_tag(b: Backend, a: argparse.Namespace) -> None:
    _out(a, {"id": b.call("tag", target=a.id, labels=a.labels)}, lambda d: d["id"])


def cmd_retract(b: Backend, a: argparse.Namespace) -> None:
    _out(a, {"id": b.call("retract", id=a.id, force=a.force)}, lambda d: d["id"])


def cmd_list(b: Backend, a: argparse.Namespace) -> None:
    page = b.call("projects", lab=a.lab, tag=a.tag, author=a.author, limit=a.limit,
                  order=a.order, **gov.show_hidden(a))  # fmt: skip
    _out(a, page, lambda p: "\n".join(map(_fmt_project_line, p["items"])) or "no projects")


def cmd_show(b: Backend, a: argparse.Namespace) -> None:
    _out(a, b.call("show", id=a.id, **gov.show_hidden(a)), _fmt_show)


def cmd_search(b: Backend, a: argparse.Namespace) -> None:
    hits = b.call("search", query=a.query, limit=a.limit, **gov.show_hidden(a))
    _out(a, hits, lambda h: "\n".join(map(_fmt_project_line, h)) or "no matches")


def _write_export(b: Backend, lab: str | None, f: IO[bytes]) -> tuple[int, int]:
    """Every page of the export (each page one call, so a large store fits the RPC frame)
    into `f`; returns (objects, bytes)."""
    f.write(MAGIC)
    count, size, after = 0, len(MAGIC), 0
    while after is not None:
        page = b.call("export", lab=lab, after=after)
        data = encode_export(page["objects"])[len(MAGIC) :]
        f.write(data)
        count, size, after = count + len(page["objects"]), size + len(data), page["next"]
    return count, size


def cmd_export(b: Backend, a: argparse.Namespace) -> None:
    """Into a `.part` file renamed at the end (a failed export leaves no truncated file
    behind), or to stdout for `-` (no summary then: stdout is the data)."""
    if a.file == STDIO:
        if sys.stdout.isatty():
            raise CliError("will not write binary export data to a terminal: redirect "
                           "stdout, or name a file")  # fmt: skip
        sys.stdout.flush()
        _write_export(b, a.lab, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    path = Path(a.file)
    if path.is_dir():
        raise CliError(f"cannot write {a.file}: it is a directory")
    # A device or a pipe (/dev/stdout, a fifo) is written as it is: a `.part` renamed over
    # it would replace it with a regular file.
    special = path.exists() and not path.is_file()
    part = path if special else path.with_name(path.name + ".part")
    try:
        with part.open("wb") as f:
            count, size = _write_export(b, a.lab, f)
        if not special:
            part.replace(path)
    except OSError as exc:
        raise CliError(f"cannot write {a.file}: {exc.strerror}") from exc
    finally:
        if not special:
            part.unlink(missing_ok=True)
    _out(a, {"objects": count, "bytes": size, "file": a.file},
         lambda d: f"exported {d['objects']} objects to {d['file']}")  # fmt: skip


def cmd_import(b: Backend, a: argparse.Namespace) -> int:
    """Exits EXIT_PARTIAL when some objects were refused (the others are stored)."""
    name = "stdin" if a.file == STDIO else a.file
    try:
        data = sys.stdin.buffer.read() if a.file == STDIO else Path(a.file).read_bytes()
        objects = decode_export(data)
    except OSError as exc:
        raise CliError(f"cannot read {name}: {exc.strerror}") from exc
    except ExportFileError as exc:
        raise CliError(f"{name}: {exc}") from exc
    total: dict[str, Any] = {"accepted": 0, "known": 0, "rejected": [], "unindexed": []}
    chunks = list(_import_chunks(objects))
    replies = b.call_each("import_objects", [{"objects": chunk} for _, chunk in chunks])
    for (start, _), r in zip(chunks, replies, strict=True):
        total["accepted"] += r["accepted"]
        total["known"] += r["known"]
        for key in ("rejected", "unindexed"):
            total[key] += [x | {"index": x["index"] + start} for x in r.get(key, [])]
    _out(a, total, lambda t: f"imported {t['accepted']} new, {t['known']} already known, "
         f"{len(t['rejected'])} rejected" + "".join(
             f"\n  #{x['index']}: {x['code']}: {x['reason']}" for x in t["rejected"][:20])
         + (f"\n{len(t['unindexed'])} stored but not shown here (an unknown kind or version, "
            "or broken rules): " + ", ".join(sorted({x["code"] for x in t["unindexed"]}))
            if t["unindexed"] else ""))  # fmt: skip
    if total["rejected"]:
        _error(f"{len(total['rejected'])} of {len(objects)} objects refused (the others are "
               "stored)")  # fmt: skip
        return EXIT_PARTIAL
    return EXIT_OK


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


# Each returns None (EXIT_OK) or its exit status.
DATA_COMMANDS: dict[str, Callable[[Backend, argparse.Namespace], int | None]] = {
    "init": cmd_init, "lab": cmd_lab, "post": cmd_post, "comment": cmd_comment,
    "tag": cmd_tag, "retract": cmd_retract, "list": cmd_list, "show": cmd_show,
    "search": cmd_search, "export": cmd_export, "import": cmd_import, "status": cmd_status,
    "peers": cmd_peers, "connect": cmd_connect, "device": cmd_device, "recovery": cmd_recovery,
    "identity": cmd_identity_rotate,  # `identity rotate`; the other actions: run_identity
    **LIVING_COMMANDS,  # edit, history, pledge, pledges, fork
    "members": cmd_members, **gov.GOVERNANCE_COMMANDS,
}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--data-dir", default=argparse.SUPPRESS,
                        help="data directory (default: $PERCOLAB_HOME or the user data dir)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print JSON")  # fmt: skip
    common.add_argument("--passphrase-file", metavar="FILE", default=argparse.SUPPRESS,
                        help="read the member key's passphrase from FILE (docs/keys.md)")
    common.add_argument("--as", dest="as_member", metavar="NAME", default=argparse.SUPPRESS,
                        help="run the command as another member of this machine (a label or "
                             "name: `percolab members`)")  # fmt: skip
    p = _Parser(prog="percolab", parents=[common],
                description="Percolab: labs sharing projects, peer to peer.")
    p.add_argument("--version", action=_Version, nargs=0, help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=help, description=help)

    s = add("init", "create your identity and publish your profile")
    s.add_argument("--name", required=True)
    s.add_argument("--about")
    s.add_argument("--unencrypted-key", action="store_true",
                   help="store the member key unencrypted (headless lab nodes; docs/keys.md)")
    s.add_argument("--device-name", help="this machine's device name (default: the hostname)")
    lab = add("lab", "labs: create, list, follow; their members, decisions and log")
    lab_sub = lab.add_subparsers(dest="lab_cmd", metavar="ACTION", required=True)
    s = lab_sub.add_parser("create", parents=[common], help="create a lab (you follow it)")
    s.add_argument("name")
    s.add_argument("--description")
    s.add_argument("--place")
    s.add_argument("--theme")
    s.add_argument("--open", action="store_true",
                   help="anyone's posts are shown (default: members' only; others wait)")
    lab_sub.add_parser("list", parents=[common], help="labs known here, followed first")
    for action in ("follow", "unfollow"):
        s = lab_sub.add_parser(action, parents=[common], help=f"{action} a lab (id or name)")
        s.add_argument("lab")
    gov.add_governance_commands(add, lab_sub, common)
    s = add("post", "post a project in a lab; prints its id")
    s.add_argument("--lab", required=True, help="lab id, id prefix or name")
    s.add_argument("--title", required=True)
    s.add_argument("--summary")
    s.add_argument("--body")
    s.add_argument("--stage", default="idea")
    s.add_argument("--need", action="append", help="something the project needs (repeatable)")
    s.add_argument("--tag", action="append", help="a tag label (repeatable)")
    s.add_argument("--licence", help='an SPDX expression (e.g. CC-BY-SA-4.0, CERN-OHL-S-2.0) '
                   'or "all rights reserved"')  # fmt: skip
    s = add("comment", "comment on an object (a project, or reply with --parent)")
    s.add_argument("id")
    s.add_argument("--body", required=True)
    s.add_argument("--parent", help="the comment you reply to")
    s = add("tag", "tag any object with one or more labels")
    s.add_argument("id")
    s.add_argument("labels", nargs="+")
    s = add("retract", "withdraw one of your own objects")
    s.add_argument("id")
    s.add_argument("--force", action="store_true",
                   help="withdraw a lab even though it holds projects (they stay, in no lab)")
    s = add("list", "list projects, newest first")
    s.add_argument("--lab")
    s.add_argument("--tag")
    s.add_argument("--author", help="author public key (hex)")
    s.add_argument("--limit", type=_page_limit, default=50, help=f"1 to {MAX_PAGE}")
    s.add_argument("--order", choices=("newest", "active"), default="newest")
    gov.add_show_hidden(s)
    s = add("show", "any object: a project with its thread, a lab with its projects, a "
                    "comment in its thread, a tag with its target")
    s.add_argument("id")
    gov.add_show_hidden(s)
    s = add("search", "search project titles, summaries and tags")
    s.add_argument("query")
    s.add_argument("--limit", type=_page_limit, default=50, help=f"1 to {MAX_PAGE}")
    gov.add_show_hidden(s)
    s = add("export", "write signed objects to a file (byte-exact)")
    s.add_argument("file", help="the file, or - for stdout")
    s.add_argument("--lab")
    s = add("import", "read signed objects from an export file")
    s.add_argument("file", help="the file, or - for stdin")
    add("status", "node and store status (JSON)")
    add("peers", "connected peers (needs a running node)")
    s = add("connect", "dial a peer now (needs a running node)")
    s.add_argument("addr", help="multiaddr ending in /p2p/PEER_ID")
    add_living_commands(add)
    add_runtime_commands(add)
    add_identity_commands(add, common)
    add_device_commands(add, common)
    add_member_commands(add, common)
    return p


def add_runtime_commands(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """`node`, `tui` and `demo`: long-running commands (see node.launch)."""
    from node.cli.launch import add_arguments

    add_arguments(add)


def _check_text_args(args: argparse.Namespace) -> None:
    """Text arguments must be UTF-8: an undecodable byte reaches Python as a lone surrogate
    that nothing can sign, store or print (file names may hold any bytes)."""
    for name, value in vars(args).items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if name in PATH_ARGS or not isinstance(v, str):
                continue
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                what = name.replace("_", " ")
                raise UsageError(f"the {what} {v!r} is not valid UTF-8 text") from None


def _data_dir(args: argparse.Namespace) -> Path:
    if getattr(args, "data_dir", None) == "":  # would silently mean the default directory
        raise UsageError("--data-dir must not be empty")
    try:
        data_dir = resolve_data_dir(getattr(args, "data_dir", None))
    except RuntimeError as exc:  # "~nosuchuser/...", or a symlink loop
        raise CliError(f"unusable data directory: {exc}") from None
    try:
        str(data_dir).encode("utf-8")
    except UnicodeEncodeError:  # LMDB takes UTF-8 paths only
        raise CliError(f"the data directory {str(data_dir)!r} is not a UTF-8 path") from None
    if data_dir.exists() and not data_dir.is_dir():
        raise CliError(f"the data directory {data_dir} is not a directory")
    return data_dir


def _require_identity(data_dir: Path, command: str) -> None:
    """A command on a directory where neither `init` nor `node` ran is most likely a typo'd
    --data-dir: say so rather than create an empty store there."""
    if holds_identity(data_dir):
        return
    init = f"`percolab --data-dir {data_dir} init --name NAME`"
    # `tui` needs a running node above all: say that first.
    lead = f"no node is running for {data_dir}: " if command == "tui" else ""
    if not data_dir.exists():
        raise CliError(f"{lead}no data directory at {data_dir} (a typo?); {init} creates one")
    raise CliError(f"{lead}{data_dir} holds no identity (no member.key, no node.key); {init} "
                   "creates one")  # fmt: skip


def _writes(args: argparse.Namespace) -> bool:
    if gov.owns(args):
        return gov.writes(args)
    if args.command == "lab":
        return args.lab_cmd not in READ_LAB_ACTIONS
    if args.command in ("device", "recovery"):
        return device_writes(args)
    if args.command == "members":
        return members_writes(args)
    return args.command not in READ_COMMANDS


def _run(args: argparse.Namespace, seen: dict[str, Path]) -> int:
    """One command; `seen` gets the data directory once known (for a crash report)."""
    _check_text_args(args)
    args.json = getattr(args, "json", False)
    command = args.command or "app"
    if command == "demo":  # its own data directories
        from node.cli.launch import run_command

        return run_command(command, Path(tempfile.gettempdir()), args)
    data_dir = seen["data_dir"] = _data_dir(args)
    if getattr(args, "passphrase_file", None):
        set_passphrase_file(Path(args.passphrase_file))
    if command == "identity" and args.identity_cmd != "rotate":
        return run_identity(data_dir, args)
    if pair_cmds.is_pairing(args):  # in the running node, on a new data directory too
        return pair_cmds.run(data_dir, args)
    if command not in NO_IDENTITY_COMMANDS:
        _require_identity(data_dir, command)
    member = getattr(args, "as_member", None)
    if member is not None and command not in DATA_COMMANDS:
        raise UsageError(f"--as works with the data commands, not with `{command}`")
    if command in DATA_COMMANDS:
        with open_backend(data_dir, write=_writes(args)) as backend:
            if member is None:
                return DATA_COMMANDS[command](backend, args) or EXIT_OK
            with as_member(backend, member) as seat:
                return DATA_COMMANDS[command](seat, args) or EXIT_OK
    from node.cli.launch import run_command

    return run_command(command, data_dir, args)


def main(argv: Sequence[str] | None = None) -> int:
    """The error boundary: every `percolab` run returns one of EXIT_CODES, and prints at
    most one line on stderr when it fails."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        # A file name given in undecodable bytes is echoed back escaped, not a crash.
        sys.stdout.reconfigure(errors="backslashreplace")
    seen: dict[str, Path] = {}
    show_key_notices()
    try:
        return _run(build_parser().parse_args(argv), seen)
    except UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except ServiceError as exc:
        _error(exc.message)
        return EXIT_ERROR
    except (CliError, ConfigError, IdentityError, StoreError, DataDirBusy, DataDirError) as exc:
        _error(str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`percolab list | head -1`): stop quietly, and keep Python
        # from complaining about the unflushed stdout at exit.
        with contextlib.suppress(OSError, ValueError):  # no real stdout (in-process callers)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:  # the environment (a permission, a full disk), not a bug
        _error(_os_error(exc))
        return EXIT_ERROR
    except lmdb.Error as exc:
        _error(f"the store failed: {exc}")
        return EXIT_ERROR
    except Exception as exc:
        try:
            report = write_crash_report(exc, argv, seen.get("data_dir"))
        except OSError as err:
            _error(f"internal error ({type(exc).__name__}: {exc}); no crash report could be "
                   f"written ({_os_error(err)})")  # fmt: skip
        else:
            _error(f"internal error ({type(exc).__name__}: {exc}); this is a bug, please "
                   f"report it with {report}")  # fmt: skip
        return EXIT_INTERNAL
