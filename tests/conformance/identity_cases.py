"""The identity half of the conformance corpus: docs/conformance/identity.json.

Scenarios of identity objects (docs/identity.md) and ordinary ones, each object with the
attribution a node must show for it once it holds all of the scenario's objects (in any
order). The expectations are written here by hand, from the rules, and checked against
protocols/attribution.py when the file is generated and by the suite.
Deterministic: fixed keys, timestamps and Ed25519 signatures, so
`python -m tests.conformance.identity_cases` rewrites the file byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import identity as idn
from protocols import kinds, objects
from protocols.attribution import Attribution, Directory, Status

FORMAT = "percolab-conformance-identity/1"
OUT = Path(__file__).resolve().parents[2] / "docs" / "conformance" / "identity.json"
T0 = 1_767_225_600_000
MIN = 60_000


def key(name: str) -> Ed25519PrivateKey:
    seed = hashlib.sha256(b"percolab/conformance/identity/" + name.encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def pub(k: Ed25519PrivateKey) -> bytes:
    return objects.public_key_bytes(k)


# Alice (genesis root A, later roots A2 and T, devices laptop L and phone P), Bob, Carol and
# Dave (recovery contacts; Carol's laptop CL, Bob's laptop BL), and a stranger X.
A, A2, T, L, P = key("alice"), key("alice-2"), key("thief"), key("laptop"), key("phone")
B, C, D, X = key("bob"), key("carol"), key("dave"), key("stranger")
B2, CL, BL = key("bob-2"), key("carol-laptop"), key("bob-laptop")
NAMES = {pub(k): n for n, k in [("A", A), ("A2", A2), ("T", T), ("L", L), ("P", P), ("B", B),
         ("C", C), ("D", D), ("X", X), ("B2", B2), ("CL", CL), ("BL", BL)]}  # fmt: skip
Expect = tuple[Ed25519PrivateKey | None, Ed25519PrivateKey | None, Status]
MEMBER: Status = "member"
NONE: Expect = (None, None, "unattributed")


def t(minutes: int) -> int:
    return T0 + minutes * MIN


class Scenario:
    def __init__(self, name: str, rule: str) -> None:
        self.name, self.rule = name, rule
        self.objects: list[objects.SignedObject] = []
        self.expect: list[Attribution] = []
        self.notes: list[str] = []

    def post(self, k: Ed25519PrivateKey, kind: str, body: dict[str, Any], ts: int,
             expect: Expect, note: str, *, valid: bool = True) -> objects.SignedObject:  # fmt: skip
        obj = kinds.create(k, kind, body, ts) if valid else objects.sign(k, kind, ts, body)
        member, device, status = expect
        self.objects.append(obj)
        m = None if member is None else pub(member)
        self.expect.append(Attribution(m, None if device is None else pub(device), status))
        self.notes.append(note)
        return obj

    def note(self, k: Ed25519PrivateKey, ts: int, expect: Expect, text: str,
             cert: bytes | None = None) -> objects.SignedObject:  # fmt: skip
        """An ordinary object (a profile) by `k`, naming `cert` if given."""
        body = idn.with_cert({"name": text[:80], "about": ""}, cert)
        return self.post(k, "profile", body, ts, expect, text)

    def cert(self, root: Ed25519PrivateKey, device: Ed25519PrivateKey, ts: int, expect: Expect,
             member: Ed25519PrivateKey | None = None, name: str = "laptop",
             ) -> objects.SignedObject:  # fmt: skip
        body = idn.device_body(root, pub(member or root), device, name)
        return self.post(root, "device", body, ts, expect, f"device certificate {name!r}")

    def check(self) -> None:
        for order in (self.objects, self.objects[::-1]):
            directory = Directory(order)
            for obj, want, note in zip(self.objects, self.expect, self.notes, strict=True):
                got = directory.attribute_object(obj)
                if got != want:
                    raise AssertionError(
                        f"{self.name}: {note}: got {_show(got)}, want {_show(want)}"
                    )

    def render(self) -> dict[str, Any]:
        return {"name": self.name, "rule": self.rule, "objects": [
            {"note": note, "kind": o.kind, "hex": o.raw.hex(),
             "member": _hex(a.member), "device": _hex(a.device), "status": a.status}
            for o, a, note in zip(self.objects, self.expect, self.notes, strict=True)]}  # fmt: skip


def _hex(b: bytes | None) -> str | None:
    return None if b is None else b.hex()


def _show(a: Attribution) -> str:
    member = NAMES.get(a.member or b"", _hex(a.member))
    return f"({member}, {NAMES.get(a.device or b'', _hex(a.device))}, {a.status})"


def legacy() -> Scenario:
    s = Scenario("legacy/single-key", "§4.1 a key with no identity objects is its own member")
    s.note(A, t(0), (A, None, MEMBER), "Alice's profile, signed by her only key")
    s.note(B, t(1), (B, None, MEMBER), "Bob's profile")
    return s


def devices() -> Scenario:
    s = Scenario("device/certified", "§4.2 devices")
    s.note(P, t(0), (P, None, MEMBER), "the phone key before any certificate: its own member")
    c = s.cert(A, L, t(1), (A, None, MEMBER))
    cp = s.cert(A, P, t(1), (A, None, MEMBER), name="phone")
    s.note(L, t(2), (A, L, MEMBER), "laptop post naming its certificate", c.id)
    s.note(L, t(2), NONE, "laptop post without its certificate")
    s.note(P, t(3), NONE, "phone without certificate after being certified")
    s.note(P, t(3), (A, P, MEMBER), "phone with its certificate", cp.id)
    s.note(P, t(3), NONE, "phone naming the laptop's certificate", c.id)
    s.note(L, t(3), (None, None, "pending"), "a certificate not held", b"\x07" * 32)
    bogus = s.post(X, "device", idn.device_body(X, pub(A), L, "fake"), t(2), (X, None, MEMBER),
                   "certificate by a stranger claiming Alice (the laptop consented)")  # fmt: skip
    s.note(L, t(4), NONE, "laptop naming the stranger's certificate", bogus.id)
    bad = idn.device_body(X, pub(A), P, "phone")  # the phone consented to X, not to A
    hidden = s.post(A, "device", bad, t(2), (A, None, MEMBER),
                    "hidden certificate: device_sig names another root", valid=False)  # fmt: skip
    s.note(P, t(4), NONE, "phone naming the hidden certificate", hidden.id)
    return s


def revocation() -> Scenario:
    s = Scenario("device/revoked", "§4.3 revocation: since and disown")
    c = s.cert(A, L, t(1), (A, None, MEMBER))
    early = s.note(L, t(2), NONE, "laptop post at t2, disowned by id", c.id)
    s.note(L, t(3), (A, L, MEMBER), "laptop post at t3, before since", c.id)
    s.note(L, t(5), NONE, "laptop post at t5, after since", c.id)
    s.post(A, "revoke", idn.revoke_body(pub(A), pub(L), t(4), [early.id], "stolen"), t(6),
           (A, None, MEMBER), "revoke since t4, disowning the t2 post")  # fmt: skip
    s.post(X, "revoke", idn.revoke_body(pub(A), pub(L), 0), t(6), (X, None, MEMBER),
           "a stranger's revoke: no effect")  # fmt: skip
    return s


def voluntary() -> Scenario:
    s = Scenario("rotation/voluntary", "§4.4 voluntary rotation")
    c = s.cert(A, L, t(1), (A, None, MEMBER))
    s.note(A, t(2), (A, None, MEMBER), "old root before the rotation")
    s.note(A2, t(2), NONE, "new root before the rotation")
    s.post(A2, "rotation", idn.voluntary_rotation_body(pub(A), A, pub(A2)), t(3),
           (A, None, MEMBER), "rotation A -> A2")  # fmt: skip
    s.note(A, t(4), NONE, "old root after the rotation")
    s.note(A2, t(4), (A, None, MEMBER), "new root after the rotation")
    s.note(L, t(4), (A, L, MEMBER), "device certified by the old root in its time", c.id)
    late = s.cert(A, P, t(5), NONE, member=A, name="phone")
    s.note(P, t(6), NONE, "device certified by the old root after the rotation", late.id)
    return s


def _recovery(name: str, rule: str, backers: list[str]) -> Scenario:
    s = Scenario(name, rule)
    s.post(A, "recovery", idn.recovery_body(pub(A), [pub(B), pub(C), pub(D)], 2), t(1),
           (A, None, MEMBER), "recovery set {B, C, D}, threshold 2")  # fmt: skip
    ccert = s.cert(C, CL, t(1), (C, None, MEMBER))
    bcert = s.cert(B, BL, t(1), (B, None, MEMBER))
    rot = s.post(A2, "rotation", idn.recovery_rotation_body(pub(A), pub(A)), t(3),
                 (A, None, MEMBER) if len(backers) >= 2 else (A2, None, MEMBER),
                 "recovery rotation A -> A2")  # fmt: skip
    body = idn.endorsement_body(pub(A), rot.id)
    if "B" in backers:
        s.post(B, "endorsement", body, t(4), (B, None, MEMBER), "Bob endorses (root)")
        s.post(BL, "endorsement", idn.with_cert(body, bcert.id), t(4), (B, BL, MEMBER),
               "Bob endorses again from his laptop (one contact, counted once)")  # fmt: skip
    if "C" in backers:
        s.post(CL, "endorsement", idn.with_cert(body, ccert.id), t(4), (C, CL, MEMBER),
               "Carol endorses from her laptop")  # fmt: skip
    s.post(X, "endorsement", body, t(4), (X, None, MEMBER), "a stranger endorses (no contact)")
    done = len(backers) >= 2
    s.note(A, t(5), NONE if done else (A, None, MEMBER), "the lost root after the rotation")
    s.note(A2, t(5), (A, None, MEMBER) if done else (A2, None, MEMBER), "the new root")
    return s


def recovery_ok() -> Scenario:
    return _recovery("recovery/2-of-3", "§4.5 recovery: threshold met", ["B", "C"])


def recovery_short() -> Scenario:
    return _recovery("recovery/1-of-3", "§4.5 recovery: one contact is not enough", ["B"])


def recovery_latest_set() -> Scenario:
    s = Scenario("recovery/latest-set", "§4.5 the recovery set in effect is the latest before")
    s.post(A, "recovery", idn.recovery_body(pub(A), [pub(B)], 1), t(1), (A, None, MEMBER),
           "recovery set {B}")  # fmt: skip
    s.post(A, "recovery", idn.recovery_body(pub(A), [pub(D)], 1), t(2), (A, None, MEMBER),
           "recovery set {D} replaces it")  # fmt: skip
    rot = s.post(A2, "rotation", idn.recovery_rotation_body(pub(A), pub(A)), t(3),
                 (A2, None, MEMBER), "recovery rotation")  # fmt: skip
    s.post(B, "endorsement", idn.endorsement_body(pub(A), rot.id), t(4), (B, None, MEMBER),
           "Bob endorses: no longer a contact")  # fmt: skip
    s.post(A, "recovery", idn.recovery_body(pub(A), [pub(B)], 1), t(4), (A, None, MEMBER),
           "recovery set {B} again, after the rotation: not in effect at its ts")  # fmt: skip
    return s


def recovery_cycle() -> Scenario:
    s = Scenario("recovery/cycle", "§4.5 endorsements that lose their authority once counted")
    s.post(A, "recovery", idn.recovery_body(pub(A), [pub(B)], 1), t(1), (A, None, MEMBER),
           "Alice's contact is Bob")  # fmt: skip
    s.post(B, "recovery", idn.recovery_body(pub(B), [pub(A)], 1), t(1), (B, None, MEMBER),
           "Bob's contact is Alice")  # fmt: skip
    ra = s.post(A2, "rotation", idn.recovery_rotation_body(pub(A), pub(A)), t(3),
                (A2, None, MEMBER), "Alice's recovery rotation")  # fmt: skip
    rb = s.post(B2, "rotation", idn.recovery_rotation_body(pub(B), pub(B)), t(3),
                (B2, None, MEMBER), "Bob's recovery rotation")  # fmt: skip
    s.post(B, "endorsement", idn.endorsement_body(pub(A), ra.id), t(4), (B, None, MEMBER),
           "Bob's old root endorses Alice's, after Bob's own rotation")  # fmt: skip
    s.post(A, "endorsement", idn.endorsement_body(pub(B), rb.id), t(4), (A, None, MEMBER),
           "Alice's old root endorses Bob's, after Alice's own rotation")  # fmt: skip
    return s


def recovery_chain() -> Scenario:
    s = Scenario("recovery/chain", "§4.5 a contact's old root after its own recovery")
    s.post(B, "recovery", idn.recovery_body(pub(B), [pub(D)], 1), t(1), (B, None, MEMBER),
           "Bob's contact is Dave")  # fmt: skip
    s.post(A, "recovery", idn.recovery_body(pub(A), [pub(B)], 1), t(1), (A, None, MEMBER),
           "Alice's contact is Bob")  # fmt: skip
    rb = s.post(B2, "rotation", idn.recovery_rotation_body(pub(B), pub(B)), t(2),
                (B, None, MEMBER), "Bob recovers to B2")  # fmt: skip
    s.post(D, "endorsement", idn.endorsement_body(pub(B), rb.id), t(3), (D, None, MEMBER),
           "Dave endorses Bob's")  # fmt: skip
    ra = s.post(T, "rotation", idn.recovery_rotation_body(pub(A), pub(A)), t(4),
                (T, None, MEMBER), "a thief's recovery rotation for Alice")  # fmt: skip
    s.post(B, "endorsement", idn.endorsement_body(pub(A), ra.id), t(5), NONE,
           "Bob's lost root endorses it after Bob's recovery: not Bob")  # fmt: skip
    s.note(A, t(6), (A, None, MEMBER), "Alice's root still speaks for her")
    return s


def dispute() -> Scenario:
    s = Scenario("rotation/dispute", "§4.6 two rotations of one root")
    c = s.cert(A, L, t(1), (A, None, MEMBER))
    s.note(A, t(1), (A, None, MEMBER), "old root before both rotations")
    s.post(T, "rotation", idn.voluntary_rotation_body(pub(A), A, pub(T)), t(2),
           (A, None, "disputed"), "a thief's backdated rotation A -> T")  # fmt: skip
    s.post(A2, "rotation", idn.voluntary_rotation_body(pub(A), A, pub(A2)), t(3),
           (A, None, "disputed"), "Alice's rotation A -> A2")  # fmt: skip
    s.note(A, t(3), NONE, "old root after the earliest competing rotation")
    s.note(A2, t(4), (A, None, "disputed"), "one branch")
    s.note(T, t(4), (A, None, "disputed"), "the other branch")
    s.note(L, t(4), (A, L, MEMBER), "a device certified before the split", c.id)
    tc = s.cert(T, P, t(4), (A, None, "disputed"), member=A, name="phone")
    s.note(P, t(5), (A, P, "disputed"), "a device certified on a branch", tc.id)
    return s


SCENARIOS: list[Callable[[], Scenario]] = [
    legacy, devices, revocation, voluntary, recovery_ok, recovery_short, recovery_latest_set,
    recovery_cycle, recovery_chain, dispute,
]  # fmt: skip


def scenarios() -> list[Scenario]:
    out = [build() for build in SCENARIOS]
    for s in out:
        s.check()
    return out


def corpus() -> dict[str, Any]:
    return {"format": FORMAT, "scenarios": [s.render() for s in scenarios()]}


def render() -> str:
    return json.dumps(corpus(), indent=1, ensure_ascii=True) + "\n"


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render(), encoding="ascii")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
