"""The object corpus (docs/conformance/objects.json) against this implementation: every case
through the protocol checks and through the node's real ingest pipeline (LMDB, the check
worker processes), the file against its generator, and every verdict code covered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from node.ingest.pipeline import Ingest
from node.store.store import Store
from protocols import errors, kinds, topics, validity
from protocols.fields import Integer, ObjectRef
from tests.conformance import object_cases
from tests.node.helpers import check_consistency

CORPUS: dict[str, Any] = json.loads(object_cases.OUT.read_text(encoding="ascii"))
CASES: list[dict[str, str]] = CORPUS["objects"]
NOW: int = CORPUS["now_ms"]


def _register_extension() -> None:
    """The corpus's declared extension kind (README.md: an implementation registers it)."""
    if object_cases.EXTENSION_KIND not in kinds.registered_kinds():
        kinds.register_kind(
            kinds.KindSpec(
                object_cases.EXTENSION_KIND,
                {"lab": ObjectRef(nullable=True), "n": Integer(0, 100)},
                lab_field="lab",
            )
        )


def verdict_of(raw: bytes) -> tuple[str, str | None]:
    try:
        v = validity.check(raw, NOW)
    except errors.ObjectError as exc:
        return exc.layer.value, exc.code
    return ("visible", None) if v.code is None else (errors.layer_of(v.code).value, v.code)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: dict[str, str]) -> None:
    _register_extension()
    assert verdict_of(bytes.fromhex(case["hex"])) == (case["verdict"], case.get("code"))


def test_the_node_pipeline_reaches_every_verdict(tmp_path: Path) -> None:
    """All cases in one ingest call, checked by the worker processes (which do not know the
    extension kind: the node reads those objects against its own registry)."""
    _register_extension()
    raws = [bytes.fromhex(c["hex"]) for c in CASES]
    store = Store(tmp_path / "store", map_size=1 << 30)
    ingest = Ingest(store, check_workers=2)
    try:
        result = ingest.ingest(raws, now=NOW)
        got: dict[int, tuple[str, str | None]] = {}
        for r in result.rejected:
            got[r.index] = (errors.layer_of(r.code).value, r.code)
        for r in result.unindexed:
            got[r.index] = (errors.layer_of(r.code).value, r.code)
        first: dict[bytes, int] = {}
        for i, raw in enumerate(raws):
            first.setdefault(raw, i)
        visible_ids = {s.obj.id for s in result.stored if s.visible}
        for case, raw in zip(CASES, raws, strict=True):
            verdict = got.get(first[raw])
            if verdict is None:
                assert object_cases.hashlib.sha256(raw).digest() in visible_ids, case["name"]
                verdict = ("visible", None)
            assert verdict == (case["verdict"], case.get("code")), case["name"]
        assert check_consistency(store) == []
        # Stored means reconciled: every opaque and hidden object is in the sync set, and
        # no view finds it.
        with store.read() as txn:
            for r in result.unindexed:
                assert r.oid is not None and store.get_raw(txn, r.oid) is not None
                assert store.get(txn, r.oid) is None
                assert store.unindexed_code(txn, r.oid) == r.code
    finally:
        ingest.close()
        store.close()


@pytest.mark.parametrize("case", CORPUS["gossip"], ids=[c["name"] for c in CORPUS["gossip"]])
def test_gossip_topic_case(case: dict[str, str]) -> None:
    wrong = topics.wrong_topic(case["topic"], bytes.fromhex(case["hex"]))
    assert (wrong is None) == (case["verdict"] == "accepted")


def test_the_file_is_what_the_generator_makes() -> None:
    assert object_cases.OUT.read_text(encoding="ascii") == object_cases.render(), (
        "docs/conformance/objects.json is stale: run python -m tests.conformance.object_cases"
    )


def test_every_verdict_code_and_layer_has_a_case() -> None:
    codes = {c.get("code") for c in CASES}
    missing = set(errors.all_codes()) - codes
    assert not missing, f"verdict codes with no corpus case: {sorted(missing)}"
    assert {c["verdict"] for c in CASES} == {"visible"} | {layer.value for layer in errors.Layer}
    assert {c.get("code") for c in CORPUS["gossip"]} >= {topics.WRONG_TOPIC}
    for kind in ("profile", "lab", "project", "comment", "tag", "retraction"):
        assert any(c["name"] == f"kind/{kind}" for c in CASES), kind
