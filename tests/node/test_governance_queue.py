"""The lab's queue in pages (issue 24, docs/rpc.md `queue`): newest first, `total` and `next`,
every newcomer on each page (authors from the lab's cached held entries), and the lab's
first page of projects, which skips what the lab holds but the viewer's own queued posts."""

from __future__ import annotations

from typing import Any

import pytest

from node.service.api import Service, ServiceError
from tests.node.services import member


def me(svc: Service) -> str:
    return str(svc.call("whoami", {})["member"])


@pytest.fixture
def lab3(world: Any) -> tuple[Service, Service, Service, str]:
    ada, bob, eve = member(world, "Ada"), member(world, "Bob"), member(world, "Eve")
    lab = ada.call("lab_create", {"name": "Fablab"})  # members-only by default
    return ada, bob, eve, lab


def test_queue_pages_newest_first(lab3: Any) -> None:
    ada, bob, eve, lab = lab3
    posts = [eve.call("post", {"lab": lab, "title": f"Eve's {i}"}) for i in range(5)]
    posts.append(bob.call("post", {"lab": lab, "title": "Bob's"}))
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"lab": lab, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        q = ada.call("queue", params)
        assert q["total"] == 6 and len(q["objects"]) <= 2
        assert {n["member"]["member"] for n in q["newcomers"]} == {me(eve), me(bob)}
        seen += [o["id"] for o in q["objects"]]
        cursor = q["next"]
        if cursor is None:
            break
    assert seen == posts[::-1]
    first = ada.call("queue", {"lab": lab})  # default limit 50: all of them, no next
    assert [o["id"] for o in first["objects"]] == seen and first["next"] is None
    assert len(ada.call("queue", {"lab": lab, "limit": 10_000})["objects"]) == 6  # clamped
    with pytest.raises(ServiceError) as err:
        ada.call("queue", {"lab": lab, "cursor": "zz"})
    assert err.value.code == "bad_request"
    with pytest.raises(ServiceError) as err:
        ada.call("queue", {"lab": lab, "limit": "3"})
    assert err.value.code == "bad_request"
    members = ada.call("lab_members", {"lab": lab})
    assert {n["member"]["member"] for n in members["newcomers"]} == {me(eve), me(bob)}
    # Bob's is approved: out of the queue, and Bob, with nothing else waiting, no newcomer.
    ada.call("approve", {"id": posts[-1]})
    q = ada.call("queue", {"lab": lab})
    assert q["total"] == 5 and posts[-1] not in [o["id"] for o in q["objects"]]
    assert [n["member"]["member"] for n in q["newcomers"]] == [me(eve)]


def _ids(svc: Service, lab: str, **params: Any) -> list[str]:
    out: list[str] = []
    cursor = None
    while True:
        page = svc.call("projects", {"lab": lab, "limit": 1, **params}
                        | ({"cursor": cursor} if cursor else {}))  # fmt: skip
        out += [p["id"] for p in page["items"]]
        cursor = page["next"]
        if cursor is None:
            return out


@pytest.mark.parametrize("order", ["newest", "active"])
def test_lab_pages_skip_what_the_lab_holds(lab3: Any, order: str) -> None:
    ada, bob, eve, lab = lab3
    ada.call("lab_admit", {"lab": lab, "member": me(bob)})
    shown = [bob.call("post", {"lab": lab, "title": f"Bob's {i}"}) for i in range(2)]
    flood = [eve.call("post", {"lab": lab, "title": f"Eve's {i}"}) for i in range(3)]
    hidden = bob.call("post", {"lab": lab, "title": "Bob's off-topic"})
    ada.call("lab_hide", {"id": hidden})
    # "active" orders by activity time, then by project id: posts made within one millisecond
    # tie, and their order is the ids'. "newest" breaks ties by arrival: exact order there.
    same = (lambda a, b: a == b) if order == "newest" else (lambda a, b: sorted(a) == sorted(b))
    assert same(_ids(ada, lab, order=order), shown[::-1])  # newest first, one a page
    assert same(_ids(eve, lab, order=order), flood[::-1] + shown[::-1])  # her own, queued
    everything = _ids(ada, lab, order=order, show_hidden=True)
    assert sorted(everything) == sorted([*shown, *flood, hidden])
    page = ada.call("projects", {"lab": lab, "order": order})
    assert page["total"] == 2 and same([p["id"] for p in page["items"]], shown[::-1])
    mine = eve.call("projects", {"lab": lab, "order": order})["items"]
    assert {p["moderation"] for p in mine if p["id"] in flood} == {"queued"}
    assert {p["moderation"] for p in mine if p["id"] not in flood} == {"shown"}


def test_new_queued_post_joins_the_cached_queue(lab3: Any) -> None:
    ada, bob, eve, lab = lab3
    first = eve.call("post", {"lab": lab, "title": "Eve's first"})
    assert ada.call("queue", {"lab": lab})["total"] == 1
    gov, lab_id = ada.governance, bytes.fromhex(lab)
    cached = gov.held(lab_id)
    # A new queued post is added to the lab's cached held list: no new scan of the lab.
    second = eve.call("post", {"lab": lab, "title": "Eve's second"})
    bob_post = bob.call("post", {"lab": lab, "title": "Bob's"})
    assert lab_id in gov._held  # kept (the old listener dropped it: a rescan)
    held = gov.held(lab_id)
    assert held is not cached and [h.id.hex() for h in held] == [bob_post, second, first]
    assert gov.held(lab_id) is held  # still the cached one
    q = ada.call("queue", {"lab": lab})
    assert [o["id"] for o in q["objects"]] == [bob_post, second, first] and q["total"] == 3
    assert {n["member"]["member"] for n in q["newcomers"]} == {me(eve), me(bob)}
    # A decision rebuilds it: Bob admitted, his post shows; Eve's wait.
    ada.call("lab_admit", {"lab": lab, "member": me(bob)})
    assert [h.id.hex() for h in gov.held(lab_id)] == [second, first]
    assert ada.call("queue", {"lab": lab})["total"] == 2
    member_post = bob.call("post", {"lab": lab, "title": "Bob's, a member"})
    assert [h.id.hex() for h in gov.held(lab_id)] == [second, first]  # shown: not held
    assert member_post in [p["id"] for p in ada.call("projects", {"lab": lab})["items"]]
