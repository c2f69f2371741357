"""The attribution view (protocols/attribution.py), rule by rule. The scenarios are those of
the conformance corpus (tests/conformance/identity_cases.py: genesis, devices, revocation by
since and disown, voluntary rotation, recovery 2-of-3 and 1-of-3, the recovery set in effect,
cycles, disputes, pending certificates, single-key members); here also the directory's other
queries and its incremental behaviour."""

from __future__ import annotations

import pytest

from protocols import identity as idn
from protocols import kinds
from protocols.attribution import Attribution, Directory
from tests.conformance import identity_cases as ic
from tests.conformance.identity_cases import A2, A, B, C, L, P, T, X, pub, t


@pytest.mark.parametrize("build", ic.SCENARIOS, ids=[b.__name__ for b in ic.SCENARIOS])
def test_scenario(build: object) -> None:
    assert callable(build)
    build().check()


def test_pending_until_the_certificate_arrives() -> None:
    cert = kinds.create(A, "device", idn.device_body(A, pub(A), L, "laptop"), t(1))
    post = kinds.create(L, "profile", idn.with_cert({"name": "Ada", "about": ""}, cert.id), t(2))
    d = Directory()
    assert d.attribute_object(post).status == "pending"
    d.add(cert)
    assert d.attribute_object(post) == Attribution(pub(A), pub(L), "member")
    assert not d.add(cert)  # a repeat
    assert not d.add(post)  # not an identity object


def test_devices_keys_and_member_of_root() -> None:
    d = Directory()
    cert = kinds.create(A, "device", idn.device_body(A, pub(A), L, "laptop"), t(1))
    d.add(cert)
    d.add(kinds.create(A, "revoke", idn.revoke_body(pub(A), pub(L), 0), t(6)))  # A: no root then
    d.add(kinds.create(A2, "revoke", idn.revoke_body(pub(A), pub(L), t(5)), t(6)))
    d.add(kinds.create(A2, "rotation", idn.voluntary_rotation_body(pub(A), A, pub(A2)), t(3)))
    [dev] = d.devices(pub(A))
    assert (dev.name, dev.key, dev.cert, dev.valid, dev.revoked_since) == (
        "laptop", pub(L), cert.id, True, t(5))  # fmt: skip
    keys = {(k.key, k.role, k.start, k.end) for k in d.member_keys(pub(A))}
    assert keys == {(pub(A), "root", -1, t(3)), (pub(A2), "root", t(3), None),
                    (pub(L), "device", t(1), t(5))}  # fmt: skip
    assert d.member_of_root(pub(A2)) == pub(A)
    assert d.member_of_root(pub(A)) == pub(A)
    assert d.member_of_root(pub(L)) is None  # a device key, no root
    assert d.member_of_root(pub(B)) == pub(B)  # no identity history: its own member
    assert d.status(pub(A)).state == "ok"


def test_dispute_status_names_both_rotations() -> None:
    d = Directory()
    r1 = kinds.create(T, "rotation", idn.voluntary_rotation_body(pub(A), A, pub(T)), t(2))
    r2 = kinds.create(A2, "rotation", idn.voluntary_rotation_body(pub(A), A, pub(A2)), t(3))
    d.add(r2)
    assert d.status(pub(A)).state == "ok"
    d.add(r1)
    st = d.status(pub(A))
    assert (st.state, st.since, set(st.rotations)) == ("disputed", t(2), {r1.id, r2.id})
    assert d.attribute(pub(A2), t(9), bytes(32), None).status == "disputed"
    assert d.attribute(pub(A), t(2), bytes(32), None).status == "unattributed"


def test_recovery_turns_effective_when_the_second_endorsement_arrives() -> None:
    d = Directory()
    d.add(kinds.create(A, "recovery", idn.recovery_body(pub(A), [pub(B), pub(C)], 2), t(1)))
    rot = kinds.create(A2, "rotation", idn.recovery_rotation_body(pub(A), pub(A)), t(3))
    d.add(rot)
    d.add(kinds.create(B, "endorsement", idn.endorsement_body(pub(A), rot.id), t(4)))
    assert d.attribute(pub(A2), t(5), bytes(32), None) == Attribution(pub(A2), None, "member")
    d.add(kinds.create(C, "endorsement", idn.endorsement_body(pub(A), rot.id), t(4)))
    assert d.attribute(pub(A2), t(5), bytes(32), None) == Attribution(pub(A), None, "member")
    assert d.attribute(pub(A), t(5), bytes(32), None).status == "unattributed"
    assert d.attribute(pub(A), t(2), bytes(32), None).member == pub(A)


def test_endorsement_by_a_wrong_member_field_does_not_count() -> None:
    d = Directory()
    d.add(kinds.create(A, "recovery", idn.recovery_body(pub(A), [pub(B)], 1), t(1)))
    rot = kinds.create(A2, "rotation", idn.recovery_rotation_body(pub(A), pub(A)), t(3))
    d.add(rot)
    d.add(kinds.create(B, "endorsement", idn.endorsement_body(pub(X), rot.id), t(4)))
    assert d.member_of_root(pub(A2)) == pub(A2)


def test_a_device_key_signing_a_certificate_is_no_root() -> None:
    """A key certified as a device stops being its own genesis root at that time."""
    d = Directory()
    d.add(kinds.create(A, "device", idn.device_body(A, pub(A), P, "phone"), t(1)))
    late = kinds.create(P, "device", idn.device_body(P, pub(P), L, "laptop"), t(2))
    early = kinds.create(P, "device", idn.device_body(P, pub(P), L, "laptop"), t(0))
    d.add(late)
    d.add(early)
    assert d.attribute(pub(L), t(3), bytes(32), late.id).status == "unattributed"
    assert d.attribute(pub(L), t(3), bytes(32), early.id) == Attribution(pub(P), pub(L), "member")
