"""Adding a device by pairing between two real `percolab node` processes (issue 22 part 2):
B (a fresh data directory) runs `device_join`, A (the member's root) `device_add` with B's
code; both humans confirm through `pairing_confirm`. Success: B's posts are attributed to A's
member on both nodes. A wrong code, or numbers refused on one side: nothing is certified."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from node.keys import keyfile
from node.keys.keyfile import UNENCRYPTED
from node.service.api import ServiceError
from tests.integration.nodes import NodeProc, wait_until

TIMEOUT_S = 30.0
pytestmark = pytest.mark.timeout(120)
UNENCRYPTED_CONFIG = "[identity]\nunencrypted = true\n"


def _pair_nodes(tmp_path: Path) -> tuple[NodeProc, NodeProc]:
    a, b = NodeProc(tmp_path / "a", "ada"), NodeProc(tmp_path / "b", "b")
    a.init()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.toml").write_text(UNENCRYPTED_CONFIG)
    a.start()
    b.start()
    a.call("connect", addr=b.addr())
    return a, b


def _state(node: NodeProc, state: str) -> dict[str, Any]:
    found: dict[str, Any] = wait_until(
        lambda: (st := node.call("pairing_status"))["state"] == state and st,
        TIMEOUT_S, f"{node.name}: pairing state {state!r}")  # fmt: skip
    return found


def _wrong(code: str) -> str:
    """The same tag, another secret, a valid check character (not a typo: a wrong code)."""
    from protocols.pairing_code import PairingCode, parse_code

    data = parse_code(code).data
    return PairingCode(data[:-1] + ("1" if data[-1] != "1" else "2")).display()


def _certified(a: NodeProc) -> list[str]:
    return [d["name"] for d in a.call("device_list")]


def test_join_and_add_then_posts_are_the_members(tmp_path: Path) -> None:
    a, b = _pair_nodes(tmp_path)
    try:
        assert b.call("whoami") is None
        shown = b.call("device_join", name="lab laptop")
        assert shown["state"] == "waiting" and len(shown["code"]) == 11
        assert shown["ticket"].startswith("PERCOLAB-PAIR:") and shown["qr"]
        ring = keyfile.load(b.data_dir / "member.keys", UNENCRYPTED)
        assert not ring.has_root and "device" in ring.seeds  # a device-only ring
        with pytest.raises(ServiceError) as busy:
            b.call("device_join")
        assert busy.value.code == "busy"
        a.call("device_add", code=shown["code"].lower())
        sas_a, sas_b = _state(a, "sas")["sas"], _state(b, "sas")["sas"]
        assert sas_a == sas_b and len(sas_a) == 7
        b.call("pairing_confirm", accept=True)
        a.call("pairing_confirm", accept=True)
        done_a, done_b = _state(a, "done"), _state(b, "done")
        member = a.call("whoami")["member"]
        assert done_a["member"] == done_b["member"] == member
        assert done_a["device"] == "lab laptop"
        assert sorted(_certified(a)) == sorted([a.call("whoami")["device_name"], "lab laptop"])

        who_b = b.call("whoami")
        assert who_b["member"] == member and who_b["device_name"] == "lab laptop"
        lab = a.call("lab_create", name="Fab")
        b.call("lab_follow", lab=lab)
        wait_until(lambda: b.find(lab), TIMEOUT_S, "the lab, on b")  # a post needs its lab here
        post = b.call("post", lab=lab, title="from the new device")
        for node in (b, a):
            seen = wait_until(
                lambda n=node: (s := n.find(post)) and s["project"]["attribution"] == "member"
                and s["project"], TIMEOUT_S, f"the post, attributed, on {node.name}")
            assert seen["member"] == member
        with pytest.raises(ServiceError) as no_root:
            b.call("recovery_set", contacts=[member], threshold=1)
        assert no_root.value.code == "no_root"
        assert "only the member's root key can" in no_root.value.message
    finally:
        a.stop()
        b.stop()


def test_wrong_code_and_refused_numbers_certify_nothing(tmp_path: Path) -> None:
    a, b = _pair_nodes(tmp_path)
    try:
        before = _certified(a)
        # a wrong code: both say so
        shown = b.call("device_join")
        a.call("device_add", code=_wrong(shown["code"]))
        assert _state(a, "failed")["reason"] == "wrong code"
        assert _state(b, "failed")["reason"] == "wrong code"
        # a typo never reaches the network
        typoed = shown["code"][:3] + ("X" if shown["code"][3] != "X" else "Y") + shown["code"][4:]
        with pytest.raises(ServiceError) as typo:
            a.call("device_add", code=typoed)
        assert typo.value.code == "bad_code"
        # the numbers refused on A (B said yes), then on B (A said yes)
        for refuser, other in ((a, b), (b, a)):
            shown = b.call("device_join")
            a.call("device_add", code=shown["code"])
            _state(a, "sas")
            _state(b, "sas")
            other.call("pairing_confirm", accept=True)
            refuser.call("pairing_confirm", accept=False)
            assert "declared different on this device" in _state(refuser, "failed")["reason"]
            assert "declared different on the other" in _state(other, "failed")["reason"]
        assert _certified(a) == before
        assert b.call("whoami") is None
        with pytest.raises(ServiceError) as not_paired:
            b.call("lab_create", name="nope")
        assert not_paired.value.code == "not_paired"
    finally:
        a.stop()
        b.stop()
