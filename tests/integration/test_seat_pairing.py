"""A member who already has an identity adds a lab's shared machine as one of their devices,
into a seat (docs/rpc.md "A shared machine", docs/pairing.md), between real `percolab node`
processes: S (the shared machine, main member Sam) runs `device_join` with `member` = a new
label, A (Alice's laptop) `device_add`. Then Alice signs in on S (`seat_open`) and posts as
herself. A cancelled or failed join leaves no seat; a member in a seat certifies a new device
of their own with their own root."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from node.service.api import ServiceError
from tests.integration.nodes import PERCOLAB, NodeProc, wait_until
from tests.integration.test_pairing_nodes import UNENCRYPTED_CONFIG, _state, _wrong

TIMEOUT_S = 30.0
pytestmark = pytest.mark.timeout(180)
ALICE_PASS = "alice's lab passphrase"


def _two(tmp_path: Path, a_name: str, s_name: str | None) -> tuple[NodeProc, NodeProc]:
    """A (initialised as `a_name`) and S (initialised as `s_name`, or a fresh data directory),
    started and connected."""
    a, s = NodeProc(tmp_path / "a", a_name), NodeProc(tmp_path / "s", s_name or "s")
    a.init()
    if s_name is not None:
        s.init()
    else:
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "config.toml").write_text(UNENCRYPTED_CONFIG)
    a.start()
    s.start()
    a.call("connect", addr=s.addr())
    return a, s


def _labels(node: NodeProc) -> list[str]:
    return [x["label"] for x in node.call("seats")]


def _code(node: NodeProc, method: str, **params: Any) -> str:
    try:
        node.call(method, **params)
    except ServiceError as exc:
        return exc.code
    raise AssertionError(f"{method} did not fail")


def _confirm_both(a: NodeProc, s: NodeProc) -> None:
    assert _state(a, "sas")["sas"] == _state(s, "sas")["sas"]
    s.call("pairing_confirm", accept=True)
    a.call("pairing_confirm", accept=True)


def test_join_into_a_seat_then_post_as_alice(tmp_path: Path) -> None:
    a, s = _two(tmp_path, "Alice", "Sam")
    try:
        alice = a.call("whoami")["member"]
        sam = s.call("whoami")["member"]
        shown = s.call("device_join", member="alice", name="lab machine", passphrase=ALICE_PASS)
        assert shown["state"] == "waiting" and shown["label"] == "alice"
        assert _labels(s) == ["main"]  # not a member of this machine before it is paired
        a.call("device_add", code=shown["code"])
        _confirm_both(a, s)
        done = _state(s, "done")
        assert done["member"] == alice and done["label"] == "alice"
        assert _state(a, "done")["device"] == "lab machine"
        seats = s.call("seats")
        assert [x["label"] for x in seats] == ["main", "alice"]
        assert seats[1]["member"] == alice and seats[1]["name"] == "Alice"
        assert seats[1]["encrypted"] is True
        key_dir = s.data_dir / "members" / "alice"
        assert (key_dir / "member.keys").is_file() and key_dir.stat().st_mode & 0o777 == 0o700
        assert s.call("whoami")["member"] == sam  # the main member is still Sam

        assert _code(s, "seat_open", member="alice", passphrase="not it") == "wrong_passphrase"
        seat = s.call("seat_open", member="Alice", passphrase=ALICE_PASS)["seat"]
        assert s.call("whoami", seat=seat)["device_name"] == "lab machine"
        lab = a.call("lab_create", name="Fab")
        s.call("lab_follow", lab=lab, seat=seat)
        wait_until(lambda: s.find(lab), TIMEOUT_S, "the lab, on s")  # a post needs its lab
        post = s.call("post", lab=lab, title="from the lab's machine", seat=seat)
        for node in (s, a):
            seen = wait_until(
                lambda n=node: (p := n.find(post)) and p["project"]["attribution"] == "member"
                and p["project"], TIMEOUT_S, f"the post, attributed, on {node.name}")
            assert seen["member"] == alice
        assert "lab machine" in [d["name"] for d in a.call("device_list")]
        # A device-only seat: what only the root signs is refused there.
        assert _code(s, "recovery_set", contacts=[sam], threshold=1, seat=seat) == "no_root"
    finally:
        a.stop()
        s.stop()


def test_cancelled_or_failed_join_leaves_no_seat(tmp_path: Path) -> None:
    a, s = _two(tmp_path, "Alice", "Sam")
    members = s.data_dir / "members"
    try:
        devices = a.call("device_list")
        assert _code(s, "device_join", member="main", passphrase="x") == "bad_label"
        assert _code(s, "device_join", member="Not a label", passphrase="x") == "bad_label"
        assert _code(s, "device_join", member="alice") == "bad_request"  # no passphrase
        s.call("seat_add", label="bob", name="Bob", unencrypted=True)
        assert _code(s, "device_join", member="bob", unencrypted=True) == "label_taken"
        assert _code(s, "device_join", unencrypted=True) == "has_identity"  # into main

        s.call("device_join", member="alice", unencrypted=True)
        assert (members / ".pairing-alice" / "member.keys").is_file()
        s.call("pairing_cancel")
        assert _state(s, "failed")["reason"] == "cancelled"
        assert _labels(s) == ["main", "bob"] and sorted(p.name for p in members.iterdir()) == [
            "bob"]

        shown = s.call("device_join", member="alice", unencrypted=True)
        a.call("device_add", code=_wrong(shown["code"]))
        assert _state(s, "failed")["reason"] == "wrong code"
        assert _state(a, "failed")["reason"] == "wrong code"
        assert _labels(s) == ["main", "bob"] and sorted(p.name for p in members.iterdir()) == [
            "bob"]
        assert _code(s, "seat_open", member="alice") == "unknown_member"

        shown = s.call("device_join", member="alice", unencrypted=True)
        a.call("device_add", code=shown["code"])
        _state(a, "sas")
        _state(s, "sas")
        a.call("pairing_confirm", accept=True)
        s.call("pairing_confirm", accept=False)  # the numbers refused on the shared machine
        _state(s, "failed")
        assert _labels(s) == ["main", "bob"]
        assert a.call("device_list") == devices  # nothing certified
    finally:
        a.stop()
        s.stop()


def _cli(node: NodeProc, *args: str, env: dict[str, str] | None = None
         ) -> subprocess.Popen[str]:  # fmt: skip
    """`percolab ARGS` on `node`'s data directory, answering yes about the numbers."""
    answer, write = os.pipe()
    os.write(write, b"y\n")
    os.close(write)
    try:
        return subprocess.Popen([PERCOLAB, "--data-dir", str(node.data_dir), *args],
                                stdin=answer, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, **(env or {})})  # fmt: skip
    finally:
        os.close(answer)


def _ended(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 0, err
    return out


def test_a_member_in_a_seat_adds_a_device_of_their_own(tmp_path: Path) -> None:
    """`percolab --as bob device add CODE`: Bob's root certifies, not the main member's."""
    s, new = _two(tmp_path, "Sam", None)  # `new`: a fresh machine joining Bob
    try:
        bob = s.call("seat_add", label="bob", name="Bob", unencrypted=True)["member"]
        assert _code(new, "device_join", member="bob", unencrypted=True) == "no_identity"
        shown = new.call("device_join", name="bob's laptop")
        proc = _cli(s, "--as", "bob", "device", "add", shown["code"])
        assert _state(new, "sas")["sas"] == _state(s, "sas")["sas"]
        new.call("pairing_confirm", accept=True)
        assert "is now certified for your member" in _ended(proc)
        assert _state(s, "done")["member"] == bob
        assert _state(new, "done")["member"] == bob
        assert new.call("whoami")["member"] == bob
        seat = s.call("seat_open", member="bob")["seat"]
        assert "bob's laptop" in [d["name"] for d in s.call("device_list", seat=seat)]
        assert "bob's laptop" not in [d["name"] for d in s.call("device_list")]  # not Sam's
    finally:
        s.stop()
        new.stop()


def test_cli_join_into_a_seat(tmp_path: Path) -> None:
    """`percolab device join --member alice` on the shared machine, the passphrase given as
    for `members add`."""
    a, s = _two(tmp_path, "Alice", "Sam")
    try:
        proc = _cli(s, "device", "join", "--member", "alice", "--name", "lab machine",
                    env={"PERCOLAB_PASSPHRASE": ALICE_PASS})  # fmt: skip
        shown = _state(s, "waiting")
        assert shown["label"] == "alice"
        a.call("device_add", code=shown["code"])
        _state(a, "sas")
        a.call("pairing_confirm", accept=True)
        assert "signed in here as 'alice'" in _ended(proc)
        assert _labels(s) == ["main", "alice"]
        seat = s.call("seat_open", member="alice", passphrase=ALICE_PASS)["seat"]
        assert s.call("whoami", seat=seat)["member"] == a.call("whoami")["member"]
    finally:
        a.stop()
        s.stop()
