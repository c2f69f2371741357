"""`percolab device join` and `percolab device add CODE|TICKET`: adding a device by pairing
(docs/pairing.md, "Using it"). The pairing runs in the node (it needs the libp2p host): these
commands start it over the control socket, print the code (and its QR) or wait for the other
device, ask the human about the numbers, and print the outcome (`pairing_status` polled).

On a lab's shared machine: `device join --member LABEL` joins into a new seat (asks the
passphrase of the new key ring), `--as NAME device add CODE` certifies with that member's root
(node/cli/member_cmds.py)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from node.cli.backend import Backend, RpcBackend
from node.cli.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, CliError, UsageError
from node.cli.member_cmds import as_member
from node.config import SOCKET_FILE
from node.keys import passphrase
from node.service.api import ServiceError

POLL_S = 0.2
ACTIONS = frozenset({"join", "add"})


def add_pair_arguments(sub: Any, common: argparse.ArgumentParser) -> None:
    """`join` and `add` under `percolab device`."""
    j = sub.add_parser("join", parents=[common],
                       help="make this machine a new device of an existing member: shows a "
                            "code to type on one of its devices (needs a running node)")
    j.add_argument("--name", help="this device's name (default: the hostname)")
    j.add_argument("--member", metavar="LABEL",
                   help="on a shared machine: join as a new member of it, labelled LABEL "
                        "(its own key, asks a passphrase twice)")  # fmt: skip
    j.add_argument("--unencrypted-key", action="store_true",
                   help="with --member: store that key unencrypted (headless machines only)")
    a = sub.add_parser("add", parents=[common],
                       help="add a new device: the code (or ticket) it shows (needs a "
                            "running node)")  # fmt: skip
    a.add_argument("code", metavar="CODE|TICKET", help="e.g. 7K3QD-M9X2A, or PERCOLAB-PAIR:…")


def is_pairing(args: argparse.Namespace) -> bool:
    return args.command == "device" and getattr(args, "device_cmd", None) in ACTIONS


def run(data_dir: Path, args: argparse.Namespace) -> int:
    sock = data_dir / SOCKET_FILE
    try:
        rpc = RpcBackend(sock)
    except OSError:
        raise CliError(f"no node is running for {data_dir}: the pairing runs in the node; "
                       f"start it first (`percolab --data-dir {data_dir} node`)") from None
    try:
        member = getattr(args, "as_member", None)
        if member is None:
            return _pair(rpc, args)
        with as_member(rpc, member) as seat:  # the pairing of that member's ring
            return _pair(seat, args)
    except KeyboardInterrupt:
        with contextlib.suppress(ServiceError):
            rpc.call("pairing_cancel")
        return EXIT_INTERRUPTED
    finally:
        rpc.close()


def _say(text: str) -> None:
    print(text, flush=True)


def _join_params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {"name": args.name} if args.name else {}
    if args.unencrypted_key and args.member is None:
        raise UsageError("--unencrypted-key goes with --member (a new member's key)")
    if args.member is not None:
        params["member"] = args.member
        if args.unencrypted_key:
            params["unencrypted"] = True
        else:
            params["passphrase"] = passphrase.get(f"the new member {args.member!r}'s key",
                                                  confirm=True)  # fmt: skip
    return params


def _pair(rpc: Backend, args: argparse.Namespace) -> int:
    if args.device_cmd == "join":
        st = rpc.call("device_join", **_join_params(args))
        if not args.json:
            _say(f"Pairing code: {st['code']}")
            _say("On a device of your member, run `percolab device add CODE` (or scan the QR "
                 "code / paste the ticket):")  # fmt: skip
            _say("\n".join(st["qr"]))
            _say(f"Ticket: {st['ticket']}")
            _say("Waiting for the other device…")
    else:
        st = rpc.call("device_add", code=args.code)
        if not args.json:
            _say(f"Looking for the device showing {st['code']}…")
    asked = False
    while True:
        st = rpc.call("pairing_status")
        state = st.get("state")
        if state == "sas" and not asked and st.get("answered") is None:
            asked = True
            accept = _ask(st["sas"])
            try:
                rpc.call("pairing_confirm", accept=accept)
            except ServiceError as exc:
                if exc.code != "no_question":  # the pairing ended meanwhile: its outcome
                    raise
            if accept and not args.json:
                _say("Waiting for the other device…")
            continue
        if state in ("done", "failed", "idle"):
            break
        time.sleep(POLL_S)
    return _outcome(st, args)


def _ask(sas: str) -> bool:
    try:
        answer = input(f"Do both screens show {sas}? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _outcome(st: dict[str, Any], args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(st, ensure_ascii=False))
    if st.get("state") == "done":
        if not args.json:
            if st.get("role") == "join" and st.get("label"):
                _say(f"Paired: this machine is now a device of member {st.get('member')}, "
                     f"signed in here as {st['label']!r} (`percolab --as {st['label']} …`).")
            elif st.get("role") == "join":
                _say(f"Paired: this machine is now a device of member {st.get('member')}.")
            else:
                _say(f"Paired: device {st.get('device')!r} is now certified for your member.")
        return EXIT_OK
    reason = st.get("reason") or "the pairing ended"
    print(f"percolab: error: pairing failed: {reason}", file=sys.stderr)
    return EXIT_ERROR
