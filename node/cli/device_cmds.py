"""`percolab device list|revoke`, `percolab recovery set|show|endorse|rotate` and `percolab
identity rotate` (docs/identity.md): each one RPC call (docs/rpc.md), through the running
node when there is one, else on the store directly (node/cli/backend.py)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from node.cli.backend import Backend
from node.cli.errors import UsageError
from node.cli.pair_cmds import add_pair_arguments

# (command, action) pairs that only read the store.
READ_ACTIONS = frozenset({("device", "list"), ("recovery", "show")})


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def parse_since(text: str) -> int | None:
    """`--since`: "now" (None: the node's clock) or an ISO 8601 time (local if no zone)."""
    if text.strip().lower() == "now":
        return None
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--since: {text!r} is neither `now` nor an ISO 8601 time "
                         "(e.g. 2025-03-01T12:00)") from None  # fmt: skip
    if t.tzinfo is None:
        t = t.astimezone()
    return max(0, int(t.timestamp() * 1000))


def add_device_commands(add: Callable[[str, str], argparse.ArgumentParser],
                        common: argparse.ArgumentParser) -> None:  # fmt: skip
    d = add("device", "list, add (pairing), join or revoke your member's devices")
    sub = d.add_subparsers(dest="device_cmd", metavar="ACTION", required=True)
    sub.add_parser("list", parents=[common], help="your devices: name, key, certified, revoked")
    r = sub.add_parser("revoke", parents=[common],
                       help="revoke a device (signed by your root key)")  # fmt: skip
    r.add_argument("device", metavar="NAME|KEY", help="the device's name, or its key (prefix)")
    r.add_argument("--since", default="now",
                   help="objects it signed from this time on stop counting as yours: `now` "
                        "(default) or an ISO 8601 time, the last moment it was in your hands")
    r.add_argument("--disown", nargs="+", metavar="ID", default=[],
                   help="ids of objects it signed (backdated) that are not yours either")
    r.add_argument("--reason", default="", help="a note kept with the revocation")
    r.add_argument("--force", action="store_true", help="revoke this machine's own device")
    add_pair_arguments(sub, common)  # `device join`, `device add` (node/cli/pair_cmds.py)
    c = add("recovery", "recovery contacts: name them, show them, back or start a recovery")
    sub = c.add_subparsers(dest="recovery_cmd", metavar="ACTION", required=True)
    s = sub.add_parser("set", parents=[common], help="name recovery contacts and a threshold")
    s.add_argument("contacts", nargs="+", metavar="MEMBER", help="member ids (64 hex characters)")
    s.add_argument("--threshold", type=int, required=True,
                   help="how many contacts must endorse a recovery")  # fmt: skip
    s = sub.add_parser("show", parents=[common],
                       help="a member's recovery set and rotations (yours by default)")
    s.add_argument("--member", help="member id (64 hex characters)")
    s = sub.add_parser("endorse", parents=[common],
                       help="as a contact, back a member's recovery rotation")  # fmt: skip
    s.add_argument("rotation", metavar="ROTATION_ID")
    s = sub.add_parser("rotate", parents=[common],
                       help="on a new machine (a new root key), claim a member whose root is "
                            "lost; prints the rotation id to send to the contacts")
    s.add_argument("--member", required=True, help="the member id to recover")
    s.add_argument("--old", help="the lost root key (default: the member's current root)")
    s.add_argument("--device-name", help="this machine's device name (default: the hostname)")


def _out(args: argparse.Namespace, data: Any, human: str) -> None:
    print(json.dumps(data, ensure_ascii=False) if getattr(args, "json", False) else human)


def _device_lines(devices: list[dict[str, Any]]) -> str:
    lines = []
    for d in devices:
        state = ("revoked since " + _when(d["revoked_since"]) if d["revoked_since"] is not None
                 else "valid" if d["valid"] else "not valid")  # fmt: skip
        mark = "*" if d.get("this") else " "
        lines.append(f"{mark} {d['name']:<20} {d['fingerprint']}  certified "
                     f"{_when(d['certified'])}  {state}")  # fmt: skip
    return "\n".join(lines) or "no devices"


def cmd_device(b: Backend, a: argparse.Namespace) -> None:
    if a.device_cmd == "list":
        devices = b.call("device_list")
        _out(a, devices, _device_lines(devices))
        return
    res = b.call("device_revoke", device=a.device, since=parse_since(a.since),
                 disown=a.disown, reason=a.reason, force=a.force)  # fmt: skip
    _out(a, res, f"revoked {res['name']} ({res['device'][:16]}…) since {_when(res['since'])}; "
         f"revocation {res['id']}")  # fmt: skip


def _show_lines(r: dict[str, Any]) -> str:
    lines = [f"member   {r['member']}", f"status   {r['status']}"
             + (f" since {_when(r['disputed_since'])}" if r["disputed_since"] else "")]
    rec = r["recovery"]
    if rec:
        lines.append(f"recovery {rec['threshold']} of {len(rec['contacts'])} contacts:")
        lines += [f"  {c}" for c in rec["contacts"]]
    else:
        lines.append("recovery no contacts named (`percolab recovery set`)")
    for rot in r["rotations"]:
        state = ("DISPUTED" if rot["disputed"] else "effective" if rot["effective"]
                 else "waiting for endorsements")  # fmt: skip
        lines.append(f"rotation {rot['id'][:16]}… {rot['mode']} at {_when(rot['ts'])}: {state}, "
                     f"{len(rot['endorsements'])} endorsement(s)")  # fmt: skip
    return "\n".join(lines)


def cmd_recovery(b: Backend, a: argparse.Namespace) -> None:
    if a.recovery_cmd == "set":
        res = b.call("recovery_set", contacts=a.contacts, threshold=a.threshold)
        _out(a, res, f"recovery set {res['id']}: {res['threshold']} of {len(res['contacts'])}")
    elif a.recovery_cmd == "show":
        res = b.call("recovery_show", member=a.member)
        _out(a, res, _show_lines(res))
    elif a.recovery_cmd == "endorse":
        res = b.call("recovery_endorse", rotation=a.rotation)
        _out(a, res, f"endorsed rotation {res['rotation'][:16]}… of {res['member'][:16]}…: "
             f"{res['id']}")  # fmt: skip
    else:
        res = b.call("recovery_rotate", member=a.member, old=a.old, device_name=a.device_name)
        _out(a, res, f"recovery rotation {res['rotation']}\nsend this id to your recovery "
             "contacts: each runs `percolab recovery endorse ID`")  # fmt: skip


def cmd_identity_rotate(b: Backend, a: argparse.Namespace) -> None:
    res = b.call("identity_rotate")
    _out(a, res, f"new root key {res['new'][:16]}… for member {res['member'][:16]}…; "
         f"rotation {res['rotation']} (back up the key ring again)")  # fmt: skip


def writes(args: argparse.Namespace) -> bool:
    action = getattr(args, f"{args.command}_cmd", None)
    return (args.command, action) not in READ_ACTIONS
