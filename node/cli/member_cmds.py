"""The members of a shared machine on the command line (node/service/seats.py): `percolab
members [add LABEL --name NAME]`, and the global `--as NAME`, which runs one command as
another member: `seat_open` (with that member's passphrase), the command with `seat`, then
`seat_close` (through the running node, or on the store opened here).
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from node.cli.backend import BULK_IN_FLIGHT, Backend
from node.cli.errors import CliError
from node.keys import passphrase
from node.service.api import ServiceError


def add_member_commands(add: Callable[[str, str], argparse.ArgumentParser],
                        common: argparse.ArgumentParser) -> None:  # fmt: skip
    s = add("members", "the members of this machine (a lab's shared computer)")
    sub = s.add_subparsers(dest="members_cmd", metavar="ACTION")
    a = sub.add_parser("add", parents=[common], help="add a member to this machine: a new key "
                       "in members/LABEL/ (asks its passphrase twice)")  # fmt: skip
    a.add_argument("label", help="a local name: 1-32 of a-z, 0-9, - and _")
    a.add_argument("--name", required=True, help="the member's profile name")
    a.add_argument("--about")
    a.add_argument("--unencrypted-key", action="store_true",
                   help="store the member's key unencrypted (headless machines only)")


def members_writes(args: argparse.Namespace) -> bool:
    return getattr(args, "members_cmd", None) == "add"


def cmd_members(b: Backend, a: argparse.Namespace) -> None:
    if getattr(a, "members_cmd", None) == "add":
        params: dict[str, Any] = {"label": a.label, "name": a.name, "about": a.about or ""}
        if a.unencrypted_key:
            params["unencrypted"] = True
        else:
            params["passphrase"] = passphrase.get(f"the new member {a.label!r}'s key",
                                                  confirm=True)  # fmt: skip
        who = b.call("seat_add", **params)
        _print(a, who, f"member added: {who['name']} ({a.label}, {who['fingerprint']})")
        return
    seats = b.call("seats")
    _print(a, seats, "\n".join(
        f"{s['label']:<12} {s['name'] or '-':<24} {s['fingerprint']}"
        + ("" if s["encrypted"] else "  (unencrypted)") for s in seats) or "no members yet")


def _print(args: argparse.Namespace, data: Any, human: str) -> None:
    print(json.dumps(data, ensure_ascii=False) if getattr(args, "json", False) else human)


class SeatBackend:
    """Another backend's calls, each carrying `seat`."""

    def __init__(self, inner: Backend, token: str) -> None:
        self.inner, self.token = inner, token

    def call(self, method: str, **params: Any) -> Any:
        return self.inner.call(method, **params, seat=self.token)

    def call_each(
        self, method: str, params: Sequence[dict[str, Any]], in_flight: int = BULK_IN_FLIGHT
    ) -> Iterator[Any]:
        return self.inner.call_each(method, [{**p, "seat": self.token} for p in params],
                                    in_flight)  # fmt: skip


def pick_seat(seats: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The member `name` names (a label, or a profile name; case does not matter)."""
    wanted = name.strip().casefold()
    found = [s for s in seats if s["label"] == wanted] or [
        s for s in seats if s["name"].casefold() == wanted]
    labels = ", ".join(s["label"] for s in seats) or "none"
    if not found:
        raise CliError(f"--as {name}: no such member on this machine (members: {labels})")
    if len(found) > 1:
        raise CliError(f"--as {name}: names {len(found)} members; give a label (members: "
                       f"{labels})")  # fmt: skip
    return found[0]


@contextlib.contextmanager
def as_member(b: Backend, name: str) -> Iterator[Backend]:
    """`b` as the member `name`, for one command."""
    seat = pick_seat(b.call("seats"), name)
    params: dict[str, Any] = {"member": seat["label"]}
    if seat["encrypted"]:
        params["passphrase"] = passphrase.get(f"the member key of {seat['name'] or seat['label']}")
    token = b.call("seat_open", **params)["seat"]
    try:
        yield SeatBackend(b, token)
    finally:
        with contextlib.suppress(ServiceError):
            b.call("seat_close", seat=token)
