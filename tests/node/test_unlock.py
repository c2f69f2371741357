"""A node started locked (node/service/unlock_ops.py): `status` says `locked`, reading works,
signing answers `locked`, `unlock` takes the passphrase, wrong ones are counted and refused
for a while after MAX_UNLOCK_FAILURES."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from node.ingest.pipeline import Ingest
from node.keys import keyfile, passphrase
from node.keys import member as member_keys
from node.service import unlock_ops
from node.service.api import Service, ServiceError
from node.store.store import Store

PASS = "open sesame"


@pytest.fixture(autouse=True)
def no_passphrase_source(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Cheap KDF, no passphrase in the environment, no terminal: a node started locked."""
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
def world(tmp_path: Path) -> Iterator[tuple[Path, Store, Ingest]]:
    store = Store(tmp_path / "store", map_size=1 << 30)
    ingest = Ingest(store, check_workers=0)
    yield tmp_path / "data", store, ingest
    ingest.close()
    store.close()


def locked_service(world: tuple[Path, Store, Ingest]) -> Service:
    """A member created with PASS, then a fresh Service (a restarted node) with the key
    unlocked nowhere in this process."""
    data, store, ingest = world
    first = Service(data, store, ingest)
    first.call("init", {"name": "Lea", "passphrase": PASS})
    first.call("lab_create", {"name": "atelier"})
    member_keys._unlocked.clear()
    member_keys._secrets.clear()
    return Service(data, store, ingest)


def code_of(svc: Service, method: str, params: dict[str, object]) -> str:
    with pytest.raises(ServiceError) as info:
        svc.call(method, params)
    return info.value.code


def test_new_key_in_status_says_what_init_needs(world: tuple[Path, Store, Ingest]) -> None:
    data, store, ingest = world
    assert Service(data, store, ingest).call("status", {})["new_key"] == "ask"
    passphrase.remember(PASS)
    assert Service(data, store, ingest).call("status", {})["new_key"] == "passphrase"


def test_locked_reads_then_unlock_then_signs(world: tuple[Path, Store, Ingest]) -> None:
    svc = locked_service(world)
    status = svc.call("status", {})
    assert status["locked"] is True and "new_key" not in status
    assert svc.call("whoami", {})["name"] == "Lea"  # reading works while locked
    assert [lab["name"] for lab in svc.call("lab_list", {})] == ["atelier"]
    with pytest.raises(ServiceError) as info:
        svc.call("post", {"lab": "atelier", "title": "too early"})
    assert info.value.code == "locked" and "needs a passphrase" in info.value.message

    with pytest.raises(ServiceError) as info:
        svc.call("unlock", {"passphrase": "not it"})
    assert (info.value.code, info.value.message) == ("wrong_passphrase", "wrong passphrase")
    assert code_of(svc, "unlock", {}) == "bad_request"
    assert svc.call("status", {})["locked"] is True

    assert svc.call("unlock", {"passphrase": PASS}) == {"locked": False}
    assert svc.call("status", {})["locked"] is False
    assert svc.call("post", {"lab": "atelier", "title": "now signed"})
    assert svc.call("unlock", {"passphrase": "anything"}) == {"locked": False}  # not locked


def test_wrong_passphrases_are_refused_for_a_while(
    world: tuple[Path, Store, Ingest], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(unlock_ops, "_clock", lambda: now[0])
    svc = locked_service(world)
    for _ in range(unlock_ops.MAX_UNLOCK_FAILURES - 1):
        assert code_of(svc, "unlock", {"passphrase": "guess"}) == "wrong_passphrase"
        now[0] += 1
    now[0] += unlock_ops.UNLOCK_FAILURE_WINDOW_S  # the earlier failures leave the window
    assert code_of(svc, "unlock", {"passphrase": "guess"}) == "wrong_passphrase"
    for _ in range(unlock_ops.MAX_UNLOCK_FAILURES - 1):
        assert code_of(svc, "unlock", {"passphrase": "guess"}) == "wrong_passphrase"
    # Five within a minute: even the right passphrase is not tried for UNLOCK_LOCKOUT_S.
    with pytest.raises(ServiceError) as info:
        svc.call("unlock", {"passphrase": PASS})
    assert info.value.code == "too_many_attempts"
    assert f"{unlock_ops.UNLOCK_LOCKOUT_S:.0f} s" in info.value.message
    now[0] += unlock_ops.UNLOCK_LOCKOUT_S - 1
    assert code_of(svc, "unlock", {"passphrase": PASS}) == "too_many_attempts"
    now[0] += 1
    assert svc.call("unlock", {"passphrase": PASS}) == {"locked": False}
