"""A store holding opaque objects, reopened by code that knows their kind (and by code whose
rules for a kind changed): they become visible, or hidden, with no re-fetch, and the
reconciled set never changes (docs/protocol.md §3.2; node/store/unindexed.py)."""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from pathlib import Path

import pytest

from node.ingest.pipeline import Ingest
from node.service import queries
from node.store import sync_index
from node.store.store import Store
from protocols import errors, kinds, objects
from protocols.fields import Choice, ObjectRef, Text

from .helpers import NOW, check_consistency, member

_TS = itertools.count(NOW - 10_000_000)


def _spec(name: str, offers: tuple[str, ...]) -> kinds.KindSpec:
    return kinds.KindSpec(
        name,
        {
            "lab": ObjectRef(nullable=True),
            "target": ObjectRef(),
            "offer": Choice(offers),
            "note": Text(40, required=False),
        },
        lab_field="lab",
        target_field="target",
        refs=("target",),
    )


def _state(store: Store) -> tuple[tuple[int, int], list[bytes], dict[str, int]]:
    """What must not change across upgrades (the stored bytes and the reconciled set), and
    the counters that do."""
    with store.read() as txn:
        digest = sync_index.digest(store, txn)
        raws = [raw for _, raw in store.iter_objects(txn)]
        counts = {
            "opaque": store.count(txn, "~opaque"),
            "hidden": store.count(txn, "~hidden"),
        }
    return digest, raws, counts


def test_opaque_objects_become_visible_or_hidden_when_the_kind_is_learnt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"pledge-{uuid.uuid4().hex[:8]}"
    ada = member("ada")
    lab = ada.lab()
    p = ada.project(lab, "Solar oven")
    good = [
        objects.sign(ada.key, name, next(_TS), {"lab": lab.id, "target": p.id, "offer": o})
        for o in ("use", "build", "lend")
    ]
    bad = objects.sign(ada.key, name, next(_TS), {"lab": lab.id, "target": p.id, "offer": "sell"})
    noted = objects.sign(
        ada.key, name, next(_TS), {"lab": lab.id, "target": p.id, "offer": "use", "note": "n" * 41}
    )
    mine = [*good, bad, noted]
    path = tmp_path / "store"

    # Release 1 does not know the kind: everything is stored and reconciled, nothing shown.
    store = Store(path, map_size=1 << 30)
    ing = Ingest(store, check_workers=0)
    try:
        result = ing.ingest([lab.raw, p.raw] + [o.raw for o in mine], now=NOW)
        assert [r.code for r in result.unindexed] == [errors.UnknownKind.code] * len(mine)
        before = _state(store)
        assert before[2] == {"opaque": len(mine), "hidden": 0}
        with store.read() as txn:
            assert all(store.get(txn, o.id) is None for o in mine)
            assert store.count(txn, name) == 0
        assert check_consistency(store) == []
    finally:
        ing.close()
        store.close()

    # Release 2 knows it: the review at open indexes the valid ones and hides the others.
    spec = kinds.register_kind(_spec(name, ("use", "build", "lend")))
    store = Store(path, map_size=1 << 30)
    try:
        after = _state(store)
        assert after[:2] == before[:2]  # same bytes, same reconciled set: nothing fetched
        assert after[2] == {"opaque": 0, "hidden": 2}
        with store.read() as txn:
            assert store.count(txn, name) == len(good)
            assert all(store.get(txn, o.id) is not None for o in good)
            assert store.unindexed_code(txn, bad.id) == errors.BadValue.code
            assert store.unindexed_code(txn, noted.id) == errors.StringTooLong.code
            assert store.get(txn, bad.id) is None
        assert check_consistency(store) == []
    finally:
        store.close()
    # Opening again with the same release changes nothing.
    store = Store(path, map_size=1 << 30)
    try:
        assert _state(store) == after
    finally:
        store.close()

    # Release 3 adds rules to the kind (version 2: "lend" is gone): objects that break them
    # are hidden, the others stay, and the reconciled set is still the same.
    stricter = dataclasses.replace(_spec(name, ("use", "build")), version=spec.version + 1)
    monkeypatch.setitem(kinds._REGISTRY, name, stricter)
    store = Store(path, map_size=1 << 30)
    try:
        third = _state(store)
        assert third[:2] == before[:2]
        assert third[2] == {"opaque": 0, "hidden": 3}
        with store.read() as txn:
            assert store.count(txn, name) == 2
            assert store.unindexed_code(txn, good[2].id) == errors.BadValue.code
        assert check_consistency(store) == []
    finally:
        store.close()


def test_an_opaque_object_can_be_withdrawn_by_its_author(store: Store, ingest: Ingest) -> None:
    ada = member("ada")
    lab = ada.lab()
    note = objects.sign(ada.key, "x-unknown-note", NOW - 5_000, {"lab": lab.id, "text": "hi"})
    retraction = ada.retract(note)
    ingest.ingest([lab.raw, note.raw], now=NOW)
    with store.read() as txn:
        assert store.count(txn, "~opaque") == 1
    ingest.ingest([retraction.raw], now=NOW)
    with store.read() as txn:
        assert store.get_raw(txn, note.id) is None and store.is_retracted(txn, note.id)
        assert store.count(txn, "~opaque") == 0
    assert check_consistency(store) == []
    # A retraction that came first withdraws the opaque object when it arrives.
    other = objects.sign(ada.key, "x-unknown-note", NOW - 4_000, {"lab": lab.id, "text": "2"})
    ingest.ingest([ada.retract(other).raw], now=NOW)
    ingest.ingest([other.raw], now=NOW)
    with store.read() as txn:
        assert store.is_retracted(txn, other.id) and store.count(txn, "~opaque") == 0
    assert check_consistency(store) == []


def test_a_store_from_before_the_text_rules_hides_what_they_refuse(tmp_path: Path) -> None:
    """Objects an older release accepted and indexed (a bidi override in a name, which issue
    20's rules refuse) are hidden the first time the store opens under the new rules, as a node
    that receives them now would store them: same objects, same view on every node."""
    ada = member("ada")
    ok = ada.profile("Ada")
    trojan = objects.sign(ada.key, "profile", ok.ts + 1, {"name": "Ada\u202e", "about": ""})
    path = tmp_path / "store"
    store = Store(path, map_size=1 << 30)
    try:  # as the older release stored them: indexed as visible, no review recorded
        store.write_batch([(ok, kinds.PROFILE), (trojan, kinds.PROFILE)])
        with store.env.begin(write=True) as txn:
            for key in (b"review:stamp", b"review:rules"):
                txn.delete(key, db=store.db["meta"])
        before = _state(store)[:2]
    finally:
        store.close()
    store = Store(path, map_size=1 << 30)
    try:
        assert _state(store)[:2] == before
        with store.read() as txn:
            assert store.unindexed_code(txn, trojan.id) == errors.BadText.code
            assert store.get(txn, trojan.id) is None and store.get(txn, ok.id) is not None
            assert store.count(txn, "profile") == 1
            # Her name is the newest profile left, as on a node that never showed the other.
            assert queries.Views(store, txn).author_name(ok.author) == "Ada"
        assert check_consistency(store) == []
    finally:
        store.close()


def test_the_reconciled_set_does_not_depend_on_arrival_order(tmp_path: Path) -> None:
    """A retraction of someone else's object is stored, not applied, on every node; both
    orders of arrival must reconcile the same set (it used to be in the set only where it
    arrived before its target)."""
    ada, eve = member("ada"), member("eve")
    lab = ada.lab()
    p = ada.project(lab, "Mine")
    foreign = eve.retract(p)
    digests = []
    for name, order in (
        ("target-first", [lab, p, foreign]),
        ("retraction-first", [foreign, lab, p]),
    ):
        store = Store(tmp_path / name, map_size=1 << 30)
        ing = Ingest(store, check_workers=0)
        try:
            for obj in order:
                ing.ingest([obj.raw], now=NOW)
            with store.read() as txn:
                digests.append(sync_index.digest(store, txn))
                assert store.get(txn, p.id) is not None  # not withdrawn: not eve's to withdraw
            assert check_consistency(store) == []
        finally:
            ing.close()
            store.close()
    assert digests[0] == digests[1] and digests[0][0] == 3
