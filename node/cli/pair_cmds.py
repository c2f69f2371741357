"""`percolab device join` and `percolab device add CODE|TICKET`: adding a device by pairing
(docs/pairing.md, "Using it"). The pairing runs in the node (it needs the libp2p host): these
commands start it over the control socket, print the code (and its QR) or wait for the other
device, ask the human about the numbers, and print the outcome (`pairing_status` polled)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from node.cli.backend import RpcBackend
from node.cli.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, CliError
from node.config import SOCKET_FILE
from node.service.api import ServiceError

POLL_S = 0.2
ACTIONS = frozenset({"join", "add"})


def add_pair_arguments(sub: Any, common: argparse.ArgumentParser) -> None:
    """`join` and `add` under `percolab device`."""
    j = sub.add_parser("join", parents=[common],
                       help="make this machine a new device of an existing member: shows a "
                            "code to type on one of its devices (needs a running node)")
    j.add_argument("--name", help="this device's name (default: the hostname)")
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
        return _pair(rpc, args)
    except KeyboardInterrupt:
        with contextlib.suppress(ServiceError):
            rpc.call("pairing_cancel")
        return EXIT_INTERRUPTED
    finally:
        rpc.close()


def _say(text: str) -> None:
    print(text, flush=True)


def _pair(rpc: RpcBackend, args: argparse.Namespace) -> int:
    if args.device_cmd == "join":
        params = {"name": args.name} if args.name else {}
        st = rpc.call("device_join", **params)
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
            if st.get("role") == "join":
                _say(f"Paired: this machine is now a device of member {st.get('member')}.")
            else:
                _say(f"Paired: device {st.get('device')!r} is now certified for your member.")
        return EXIT_OK
    reason = st.get("reason") or "the pairing ended"
    print(f"percolab: error: pairing failed: {reason}", file=sys.stderr)
    return EXIT_ERROR
