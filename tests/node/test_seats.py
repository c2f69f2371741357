"""A lab's shared machine (node/service/seats.py): members in seats, each signing with its own
key after `seat_open` (the passphrase always checked), with its own follows and read marks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from node.ingest.pipeline import Ingest, now_ms
from node.keys import keyfile, passphrase
from node.keys import member as member_keys
from node.service import seats, unlock_ops
from node.service.api import Service, ServiceError
from node.store.store import Store

MAIN_PASS = "main passphrase"
BOB_PASS = "bob passphrase"


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Cheap KDF, no passphrase in the environment, no terminal."""
    monkeypatch.setattr(keyfile, "ARGON2_MEMORY_KIB", keyfile.MIN_MEMORY_KIB)
    monkeypatch.setattr(keyfile, "ARGON2_ITERATIONS", 1)
    for name in (passphrase.ENV_PASSPHRASE, passphrase.ENV_PASSPHRASE_FD):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(passphrase, "_process", passphrase._Process())
    monkeypatch.setattr(passphrase, "can_prompt", lambda: False)
    member_keys._unlocked.clear()
    member_keys._secrets.clear()
    yield
    member_keys._unlocked.clear()
    member_keys._secrets.clear()


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Service]:
    """A machine with its first member (Lea, label main) and Bob (label bob)."""
    store = Store(tmp_path / "store", map_size=1 << 30)
    ingest = Ingest(store, check_workers=0)
    service = Service(tmp_path / "data", store, ingest)
    service.call("init", {"name": "Lea", "passphrase": MAIN_PASS})
    service.ensure_read_base()
    next_ms()
    service.call("seat_add", {"label": "bob", "name": "Bob", "passphrase": BOB_PASS})
    yield service
    ingest.close()
    store.close()


def next_ms() -> None:
    """Let the clock pass a millisecond: unread compares times in ms."""
    start = now_ms()
    while now_ms() == start:
        pass


def code_of(svc: Service, method: str, params: dict[str, object]) -> str:
    with pytest.raises(ServiceError) as info:
        svc.call(method, params)
    return info.value.code


def test_seats_listed_main_first_and_key_files(svc: Service) -> None:
    listed = svc.call("seats", {})
    assert [(s["label"], s["name"], s["encrypted"], s["open"]) for s in listed] == [
        ("main", "Lea", True, False), ("bob", "Bob", True, False)]
    assert listed[0]["member"] != listed[1]["member"]
    key_dir = svc.data_dir / "members" / "bob"
    assert (key_dir / "member.keys").is_file()
    assert key_dir.stat().st_mode & 0o777 == 0o700
    assert svc.call("status", {})["seats"] == 2
    assert code_of(svc, "seat_add", {"label": "bob", "name": "B", "unencrypted": True}) == (
        "label_taken")
    assert code_of(svc, "seat_add", {"label": "Main", "name": "M", "unencrypted": True}) == (
        "bad_label")
    assert code_of(svc, "seat_add", {"label": "main", "name": "M", "unencrypted": True}) == (
        "bad_label")


def test_open_checks_the_passphrase_even_when_cached(svc: Service) -> None:
    # seat_add left Bob's ring unlocked in this process: the passphrase is still checked.
    assert code_of(svc, "seat_open", {"member": "bob", "passphrase": "guess"}) == (
        "wrong_passphrase")
    assert code_of(svc, "seat_open", {"member": "bob"}) == "bad_request"
    assert code_of(svc, "seat_open", {"member": "carol"}) == "unknown_member"
    opened = svc.call("seat_open", {"member": "BOB", "passphrase": BOB_PASS})  # by name, any case
    assert opened["label"] == "bob" and opened["name"] == "Bob"
    assert passphrase.non_interactive() is None  # never remembered for the process
    mine = svc.call("seats", {"seat": opened["seat"]})
    assert [s["open"] for s in mine] == [False, True]
    assert svc.call("seat_close", {"seat": opened["seat"]}) is True
    assert code_of(svc, "whoami", {"seat": opened["seat"]}) == "no_seat"
    assert svc.call("seat_close", {"seat": "unknown"}) is True


def test_wrong_passphrases_counted_per_label(svc: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(unlock_ops, "_clock", lambda: now[0])
    for _ in range(unlock_ops.MAX_UNLOCK_FAILURES):
        assert code_of(svc, "seat_open", {"member": "bob", "passphrase": "x"}) == (
            "wrong_passphrase")
    assert code_of(svc, "seat_open", {"member": "bob", "passphrase": BOB_PASS}) == (
        "too_many_attempts")
    assert svc.call("seat_open", {"member": "main", "passphrase": MAIN_PASS})["label"] == "main"
    now[0] += unlock_ops.UNLOCK_LOCKOUT_S + 1
    assert svc.call("seat_open", {"member": "bob", "passphrase": BOB_PASS})["label"] == "bob"


def test_members_post_follow_and_read_apart(svc: Service) -> None:
    main = svc.call("seat_open", {"member": "main", "passphrase": MAIN_PASS})["seat"]
    bob = svc.call("seat_open", {"member": "bob", "passphrase": BOB_PASS})["seat"]
    bob_id = svc.call("whoami", {"seat": bob})["member"]
    lab = svc.call("lab_create", {"name": "atelier", "seat": main})
    pid = svc.call("post", {"lab": lab, "title": "by bob", "seat": bob})
    project = svc.call("project", {"id": pid, "seat": main})["project"]
    assert project["member"] == bob_id and project["author_name"] == "Bob"
    # Bob follows the lab by posting in it; Lea follows it as its creator.
    svc.call("lab_unfollow", {"lab": lab, "seat": main})
    assert [x["followed"] for x in svc.call("lab_list", {})] == [False]
    assert [x["followed"] for x in svc.call("lab_list", {"seat": bob})] == [True]
    assert lab in {x.hex() for x in svc.all_follows()}
    svc.call("lab_unfollow", {"lab": lab, "seat": bob})
    assert svc.all_follows() == set()
    svc.call("lab_follow", {"lab": lab, "seat": bob})
    # Unread: new for Lea, not for Bob once he opened it; a comment makes it new again.
    assert svc.call("project", {"id": pid, "seat": main})["project"]["unread"] is True
    assert svc.call("mark_read", {"id": pid, "seat": bob}) is True
    assert svc.call("project", {"id": pid, "seat": bob})["project"]["unread"] is False
    assert svc.call("project", {"id": pid, "seat": main})["project"]["unread"] is True
    assert svc.call("lab_list", {"seat": bob})[0]["unread"] == 0
    next_ms()
    svc.call("comment", {"target": pid, "body": "nice", "seat": main})
    assert svc.call("project", {"id": pid, "seat": bob})["project"]["unread"] is True
    assert svc.call("lab_list", {"seat": bob})[0]["unread"] == 1


def test_label_of_name() -> None:
    assert seats.label_of_name("Bob Smith") == "bob-smith"
    assert seats.label_of_name("  Zoé  ") == "zo"
    assert seats.LABEL_RE.match(seats.label_of_name("x" * 50))
