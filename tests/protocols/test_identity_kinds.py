"""The identity kinds (protocols/identity.py): schemas, consent signatures, and that a
broken rule hides an object (stored, relayed) rather than rejecting it."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import errors, kinds, objects, validity
from protocols import identity as idn
from protocols.attribution import Directory

ROOT = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
NEW = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
DEVICE = Ed25519PrivateKey.from_private_bytes(bytes(range(2, 34)))
M = objects.public_key_bytes(ROOT)
TS = 1_767_225_600_000


def _verdict(key: Ed25519PrivateKey, kind: str, body: dict[str, Any]) -> str | None:
    return validity.check(objects.sign(key, kind, TS, body).raw, TS).code


def test_all_registered_and_public() -> None:
    for name in idn.IDENTITY_KINDS:
        spec = kinds.kind_spec(name)
        assert spec.lab_field is None
    assert kinds.kind_spec("endorsement").refs == ("rotation", "cert")


@pytest.mark.parametrize("kind", ["profile", "lab", "project", "comment", "tag", "retraction"])
def test_core_kinds_take_an_optional_cert(kind: str) -> None:
    spec = kinds.kind_spec(kind)
    assert spec.version >= 2 and "cert" in spec.refs and not spec.fields["cert"].required


def test_builders_make_visible_objects() -> None:
    dev = kinds.create(ROOT, "device", idn.device_body(ROOT, M, DEVICE, "laptop"), TS)
    new = objects.public_key_bytes(NEW)
    for key, kind, body in [
        (ROOT, "revoke", idn.revoke_body(M, dev.body["device"], TS, [dev.id], "lost")),
        (ROOT, "recovery", idn.recovery_body(M, [new], 1)),
        (NEW, "rotation", idn.voluntary_rotation_body(M, ROOT, new)),
        (NEW, "rotation", idn.recovery_rotation_body(M, M)),
        (DEVICE, "endorsement", idn.endorsement_body(M, dev.id, dev.id)),
    ]:
        assert _verdict(key, kind, body) is None, kind


def test_device_signature_binds_member_device_and_root() -> None:
    body = idn.device_body(ROOT, M, DEVICE, "laptop")
    msg = idn.DEVICE_DOMAIN + M + body["device"] + M
    assert idn.verify_detached(body["device"], msg, body["device_sig"])
    assert _verdict(ROOT, "device", body) is None
    assert _verdict(NEW, "device", body) == "bad_value"  # another root signs it
    assert _verdict(ROOT, "device", body | {"member": bytes(32)}) == "bad_value"
    assert _verdict(ROOT, "device", body | {"device_sig": bytes(64)}) == "bad_value"


def test_rotation_signature_binds_the_new_root() -> None:
    new = objects.public_key_bytes(NEW)
    body = idn.voluntary_rotation_body(M, ROOT, new)
    assert idn.verify_detached(M, idn.ROTATION_DOMAIN + M + M + new, body["old_sig"])
    assert _verdict(NEW, "rotation", body) is None
    assert _verdict(DEVICE, "rotation", body) == "bad_value"
    assert _verdict(NEW, "rotation", body | {"old_sig": None}) == "bad_value"
    assert _verdict(NEW, "rotation", body | {"mode": "recovery"}) == "bad_value"


def test_hidden_not_rejected() -> None:
    """A bad consent signature is a schema verdict: the bytes stay a valid object."""
    raw = objects.sign(ROOT, "device", TS, idn.device_body(NEW, M, DEVICE, "x")).raw
    verdict = validity.check(raw, TS)
    assert verdict.code == "bad_value" and errors.layer_of("bad_value") is errors.Layer.HIDE
    assert not errors.blames_peer(verdict.code)


def test_local_writes_refuse_hidden_identity_objects() -> None:
    with pytest.raises(errors.BadValue):
        kinds.create(NEW, "rotation", idn.voluntary_rotation_body(M, ROOT, M), TS)


def test_cert_of_reads_any_kind() -> None:
    assert idn.cert_of(objects.sign(ROOT, "x-note", TS, {"cert": b"\x01" * 32})) == b"\x01" * 32
    assert idn.cert_of(objects.sign(ROOT, "x-note", TS, {"cert": "no"})) is None


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=8)
    | st.binary(max_size=70) | st.sampled_from([M, bytes(64), b"\x00" * 32]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                               max_size=4),
    max_leaves=10,
)  # fmt: skip
_FIELDS = st.sampled_from(
    ["member", "device", "name", "device_sig", "since", "disown", "reason", "contacts",
     "threshold", "old", "mode", "old_sig", "rotation", "cert", "lab"]
)  # fmt: skip


@FUZZ
@given(kind=st.sampled_from(idn.IDENTITY_KINDS),
       body=st.dictionaries(_FIELDS, _VALUES, max_size=8))  # fmt: skip
def test_fuzz_identity_bodies(kind: str, body: dict[str, Any]) -> None:
    """Any body: a typed verdict (never another exception), and the directory files only
    what the kind accepts, without raising."""
    if "lab" in body and not (
        body["lab"] is None or (type(body["lab"]) is bytes and len(body["lab"]) == 32)
    ):
        body = {k: v for k, v in body.items() if k != "lab"}  # fmt: skip
    obj = objects.sign(ROOT, kind, TS, body)
    verdict = validity.understood(obj)
    directory = Directory()
    assert directory.add(obj) == (verdict.code is None)
    directory.attribute_object(obj)
    directory.member_keys(M)
    directory.devices(M)
    directory.status(M)
