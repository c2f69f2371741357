"""The wire of lab governance (docs/protocol.md §3.4): the kind `decision`, its fields and the
per-act rule (each known act has exactly its fields), and a fuzz of its decoding and schema."""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import errors, governance, kinds, objects, validity
from protocols.governance import ACT_FIELDS, ACTS, decision_body
from protocols.limits import MAX_ADMIT_VOUCHES, MAX_REASON_CHARS, MAX_RULE_ENTRIES
from tests.protocols.test_fuzz_decoders import ANY_VALUE, mutated

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
TS = 1_767_225_600_000
LAB = hashlib.sha256(b"lab").digest()
TARGET = hashlib.sha256(b"target").digest()
MEMBER = hashlib.sha256(b"member").digest()
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
VALUES: dict[str, Any] = {"subject": MEMBER, "target": TARGET, "role": "member",
                          "rules": {"posts": "shown"}}  # fmt: skip


def verdict(body: dict[str, Any]) -> str:
    obj = objects.decode(objects.sign(KEY, "decision", TS, body).raw)
    try:
        kinds.validate(obj, TS)
    except errors.ObjectError as exc:
        return exc.code
    return "visible"


def minimal(act: str) -> dict[str, Any]:
    return {"lab": LAB, "act": act} | {n: VALUES[n] for n in ACTS.get(act, ())}


def test_the_kind_is_registered_with_its_scope_and_refs() -> None:
    spec = kinds.kind_spec("decision")
    assert spec.lab_field == "lab" and spec.target_field is None
    assert spec.refs == ("lab", "target", "cert")
    assert spec.scope(minimal("hide")) == LAB
    assert "decision" in kinds.registered_kinds()


@pytest.mark.parametrize("act", sorted(ACTS))
def test_each_known_act_with_exactly_its_fields(act: str) -> None:
    body = minimal(act)
    assert verdict(body) == "visible"
    assert verdict(body | {"reason": "line one\nline two", "cert": TARGET, "later": 1}) == "visible"
    for name in ACTS[act]:
        assert verdict({k: v for k, v in body.items() if k != name}) == "missing_field", name
    for name in ACT_FIELDS:
        if name not in ACTS[act]:
            assert verdict(body | {name: VALUES[name]}) == "bad_value", name


def test_unknown_acts_are_valid_with_any_fields() -> None:
    assert verdict({"lab": LAB, "act": "elect"}) == "visible"
    assert verdict({"lab": LAB, "act": "elect"} | VALUES) == "visible"
    assert verdict({"lab": LAB, "act": "elect", "subject": b"x"}) == "bad_field_type"


@pytest.mark.parametrize(("change", "code"), [
    ({"act": "Admit"}, "bad_value"),
    ({"act": "a" * 17}, "bad_value"),
    ({"act": 1}, "bad_field_type"),
    ({"lab": None}, "bad_field_type"),
    ({"subject": bytes(31)}, "bad_field_type"),
    ({"subject": None}, "bad_field_type"),
    ({"role": "steward"}, "visible"),
    ({"role": "mentor"}, "visible"),
    ({"role": "co-steward"}, "bad_value"),
    ({"reason": "x" * MAX_REASON_CHARS}, "visible"),
    ({"reason": "x" * (MAX_REASON_CHARS + 1)}, "string_too_long"),
    ({"reason": "a\u202eb"}, "bad_text"),
])  # fmt: skip
def test_admit_field_edges(change: dict[str, Any], code: str) -> None:
    assert verdict(minimal("admit") | change) == code


@pytest.mark.parametrize(("rules", "code"), [
    ({"admit_vouches": 1, "posts": "queued", "replies": "queued"}, "visible"),
    ({"admit_vouches": MAX_ADMIT_VOUCHES}, "visible"),
    ({"quorum": "thirds"}, "visible"),  # a later release's rule: kept, unread
    ({}, "too_many_items"),
    ({f"r{i:02}": i for i in range(MAX_RULE_ENTRIES + 1)}, "too_many_items"),
    ({"admit_vouches": 0}, "int_out_of_range"),
    ({"admit_vouches": MAX_ADMIT_VOUCHES + 1}, "int_out_of_range"),
    ({"admit_vouches": True}, "bad_field_type"),
    ({"posts": "members"}, "bad_value"),
    ({"replies": None}, "bad_field_type"),
])  # fmt: skip
def test_rules_record(rules: dict[str, Any], code: str) -> None:
    assert verdict(minimal("rules") | {"rules": rules}) == code
    assert verdict(minimal("rules") | {"rules": [rules]}) == "bad_field_type"


def test_the_lab_is_required_and_the_scope_rule_comes_first() -> None:
    assert verdict({"act": "elect"}) == "missing_field"
    raw = objects.sign(KEY, "decision", TS, {"lab": b"short", "act": "elect"}).raw
    with pytest.raises(errors.BadScope):
        objects.decode(raw)


def test_decision_body_leaves_out_what_is_not_given() -> None:
    assert decision_body(LAB, "vouch", subject=MEMBER) == {"lab": LAB, "act": "vouch",
                                                           "subject": MEMBER}  # fmt: skip
    body = decision_body(LAB, "rules", rules={"posts": "shown"}, reason="why")
    assert body == {"lab": LAB, "act": "rules", "rules": {"posts": "shown"}, "reason": "why"}
    assert governance.ROLES == ("member", "steward")


# ---- fuzz ------------------------------------------------------------------------------------

SEEDS = [kinds.create(KEY, "decision", minimal(act) | {"reason": act}, TS).raw
         for act in [*sorted(ACTS), "elect"]]  # fmt: skip


@FUZZ
@given(st.sampled_from([*sorted(ACTS), "elect"]), st.data())
def test_decision_schema_takes_any_field_values(act: str, data: st.DataObject) -> None:
    """Any value in any field (and any set of fields) ends in a schema verdict, never another
    exception; a body the schema accepts is exactly the act's fields."""
    body = minimal(act)
    spec = kinds.kind_spec("decision")
    for name in data.draw(st.lists(st.sampled_from(sorted(spec.fields)), max_size=3)):
        if data.draw(st.booleans()):
            body.pop(name, None)
        else:
            body[name] = data.draw(ANY_VALUE | st.sampled_from([MEMBER, "member", "elect"]))
    try:
        kinds.validate_body(spec, body)
    except errors.SchemaError:
        return
    needs = ACTS.get(body["act"])
    if needs is not None:
        assert {n for n in ACT_FIELDS if n in body} == set(needs)


@FUZZ
@given(st.sampled_from(SEEDS).flatmap(mutated))
def test_decision_bytes_mutations(raw: bytes) -> None:
    try:
        v = validity.check(raw, TS)
    except errors.ObjectError as exc:
        assert exc.layer in (errors.Layer.REJECT, errors.Layer.DEFER)
        return
    assert v.layer in (None, errors.Layer.OPAQUE, errors.Layer.HIDE)
    with contextlib.suppress(errors.ObjectError):
        kinds.validate(objects.decode(raw), TS)
