"""This node's own moderation (node/service/local_moderation.py and _ops.py), in process:
mute, hide, block and decisions_follow through `Service.call`, the `moderation` view, the
settings kept in the store and shared by every instance and seat, the blocked-peers hook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from node.service.api import Service, ServiceError
from node.service.local_moderation import LocalModeration
from node.store.store import Store
from tests.node.services import member

PEER_B = "12D3KooWGzh9mGJ8hjuTAGgGWQ2bbdB4xLBhzVNt5k3j8TWUcLAv"
PEER_C = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"




def error(svc: Service, method: str, params: dict[str, Any]) -> str:
    with pytest.raises(ServiceError) as exc:
        svc.call(method, params)
    return exc.value.code


def test_mute_by_name_or_id_and_the_moderation_view(world: Any) -> None:
    ada, bob = member(world, "Ada"), member(world, "Bob")
    bob_id = bob.call("whoami", {})["member"]
    assert ada.call("moderation", {}) == {
        "muted": [], "hidden": [], "blocked": [], "decisions_followed": []}  # fmt: skip
    assert ada.call("mute", {"member": "bob"}) is True  # a unique name, any case
    view = ada.call("moderation", {})
    assert view["muted"] == [{"member": bob_id, "name": "Bob",
                              "fingerprint": bob.call("whoami", {})["fingerprint"]}]  # fmt: skip
    assert ada.local_moderation.muted() == frozenset({bytes.fromhex(bob_id)})
    ada.call("unmute", {"member": bob_id})  # by id
    assert ada.call("moderation", {})["muted"] == []
    assert error(ada, "mute", {"member": "nobody"}) == "not_found"
    assert error(ada, "mute", {}) == "bad_request"


def test_ambiguous_member_name_is_refused(world: Any) -> None:
    ada = member(world, "Ada")
    member(world, "Sam")
    member(world, "sam")
    assert error(ada, "mute", {"member": "Sam"}) == "ambiguous"
    assert ada.call("moderation", {})["muted"] == []


def test_hide_by_prefix_and_before_arrival(world: Any) -> None:
    ada = member(world, "Ada")
    lab = ada.call("lab_create", {"name": "Fablab", "posts": "shown"})
    pid = ada.call("post", {"lab": lab, "title": "Solar oven"})
    ada.call("hide", {"id": pid[:10]})
    unknown = "ab" * 32  # not here yet: hidden when it comes
    ada.call("hide", {"id": unknown})
    assert ada.call("moderation", {})["hidden"] == sorted([pid, unknown])
    assert ada.local_moderation.hidden() == frozenset({bytes.fromhex(pid), bytes.fromhex(unknown)})
    ada.call("unhide", {"id": pid})
    assert ada.call("moderation", {})["hidden"] == [unknown]
    assert error(ada, "hide", {"id": "zz"}) == "bad_request"
    assert error(ada, "hide", {"id": "00000000"}) == "not_found"


def test_block_peers_calls_the_hook_on_changes_only(world: Any) -> None:
    ada = member(world, "Ada")
    seen: list[frozenset[str]] = []
    ada.local_moderation.on_blocked.append(seen.append)
    try:
        ada.call("block", {"peer": PEER_B})
        ada.call("block", {"peer": f"/ip4/127.0.0.1/tcp/4001/p2p/{PEER_C}"})  # an address
        ada.call("block", {"peer": PEER_B})  # already: no change
        assert ada.call("moderation", {})["blocked"] == sorted([PEER_B, PEER_C])
        ada.call("unblock", {"peer": PEER_B})
        assert seen == [frozenset({PEER_B}), frozenset({PEER_B, PEER_C}), frozenset({PEER_C})]
        assert error(ada, "block", {"peer": "not a peer!"}) == "bad_request"
        assert error(ada, "block", {"peer": "0OIl" * 12}) == "bad_request"  # not base58
    finally:
        ada.local_moderation.on_blocked.remove(seen.append)


def test_decisions_follow(world: Any) -> None:
    ada = member(world, "Ada")
    lab = ada.call("lab_create", {"name": "Fablab Nord", "posts": "shown"})
    ada.call("decisions_follow", {"lab": "fablab nord", "on": True})
    elsewhere = "cd" * 32  # a lab not known here yet, by its id
    ada.call("decisions_follow", {"lab": elsewhere})
    assert ada.call("moderation", {})["decisions_followed"] == sorted([lab, elsewhere])
    ada.call("decisions_follow", {"lab": lab, "on": False})
    assert ada.local_moderation.decisions_followed() == frozenset({bytes.fromhex(elsewhere)})
    assert error(ada, "decisions_follow", {"lab": lab, "on": "yes"}) == "bad_request"
    assert error(ada, "decisions_follow", {"lab": "no such lab"}) == "not_found"


def test_settings_are_node_wide_kept_and_shared(world: Any) -> None:
    store = world[1]
    ada, bob = member(world, "Ada"), member(world, "Bob")
    other = LocalModeration(store)  # e.g. the governance registry's, made before the change
    assert other.blocked() == frozenset()
    ada.call("block", {"peer": PEER_B})
    ada.call("mute", {"member": "Bob"})
    # Every instance of the store and every member's Service sees the change at once.
    assert other.blocked() == frozenset({PEER_B})
    assert bob.call("moderation", {})["blocked"] == [PEER_B]
    assert other.muted() == frozenset({bytes.fromhex(bob.call("whoami", {})["member"])})


def test_settings_outlive_the_process(tmp_path: Path) -> None:
    store = Store(tmp_path / "store", map_size=1 << 24)
    LocalModeration(store).set("block", PEER_B, True)
    LocalModeration(store).set("hide", "ef" * 32, True)
    store.close()
    again = Store(tmp_path / "store", map_size=1 << 24)  # as a restarted node opens it
    try:
        assert LocalModeration(again).blocked() == frozenset({PEER_B})
        assert LocalModeration(again).hidden() == frozenset({bytes.fromhex("ef" * 32)})
    finally:
        again.close()


def test_a_seat_shares_the_node_settings(world: Any) -> None:
    ada = member(world, "Ada")
    ada.call("seat_add", {"label": "bob", "name": "Bob", "unencrypted": True})
    token = ada.call("seat_open", {"member": "bob"})["seat"]
    ada.call("hide", {"id": "ef" * 32, "seat": token})
    assert ada.call("moderation", {})["hidden"] == ["ef" * 32]
