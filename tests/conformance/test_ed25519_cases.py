"""The Ed25519 acceptance rule of docs/protocol.md §1.2 is libsodium's, case by case.

Every corpus object (tests/conformance/ed25519_cases.py) is checked three ways: the node's
`protocols.objects.verify`, libsodium directly, and the pure-Python rule; then the rule and
libsodium are compared on random valid signatures, random bit flips and mixed-order keys.
The models of other verifiers are pinned to the verdicts the protocol text reports, and the
OpenSSL model to the OpenSSL that `cryptography` ships.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

import nacl.bindings
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocols import errors, kinds, objects
from tests.conformance import ed25519_cases as E

CASES = E.cases()
BY_NAME = {c.name: c for c in E.all_cases()}


def sodium(pk: bytes, sig: bytes, msg: bytes) -> bool:
    try:
        nacl.bindings.crypto_sign_open(sig + msg, pk)
    except Exception:  # BadSignatureError, or ValueError for a key libsodium refuses
        return False
    return True


def openssl(pk: bytes, sig: bytes, msg: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(pk).verify(sig, msg)
    except InvalidSignature:
        return False
    return True


# --- models of other verifiers, from their sources (docs/protocol.md §1.2, last table) ------


def _k(pk: bytes, sig: bytes, msg: bytes) -> int:
    return int.from_bytes(hashlib.sha512(sig[:32] + pk + msg).digest(), "little") % E.L


def verify_cofactorless(pk: bytes, sig: bytes, msg: bytes) -> bool:
    """Go crypto/ed25519, OpenSSL ossl_ed25519_verify, ed25519-dalek 2 `verify`: S < L,
    A decoded leniently (small order and non-canonical allowed), R compared as bytes."""
    s, a = int.from_bytes(sig[32:], "little"), E.decode(pk)
    return s < E.L and a is not None and E.cofactorless_equation(s, a, pk, sig, msg)


def verify_dalek_strict(pk: bytes, sig: bytes, msg: bytes) -> bool:
    """ed25519-dalek 2 `verify_strict`: `verify` plus R decodes and neither R nor A has
    small order (a point test, so it also catches non-canonical small-order encodings)."""
    a, r = E.decode(pk), E.decode(sig[:32])
    if a is None or r is None or E.is_small_order(a) or E.is_small_order(r):
        return False
    return verify_cofactorless(pk, sig, msg)


def verify_zip215(pk: bytes, sig: bytes, msg: bytes) -> bool:
    """ZIP 215: S < L, A and R decoded leniently, [8]([S]B - R - [k]A) = O."""
    s, a, r = int.from_bytes(sig[32:], "little"), E.decode(pk), E.decode(sig[:32])
    if s >= E.L or a is None or r is None:
        return False
    d = E.add(E.mul_base(s), E.neg(E.add(r, E.mul(_k(pk, sig, msg), a))))
    return E.equal(E.mul(8, d), E.IDENTITY)


MODELS: dict[str, Callable[[bytes, bytes, bytes], bool]] = {
    "libsodium": E.verify_libsodium,
    "cofactorless": verify_cofactorless,
    "dalek-strict": verify_dalek_strict,
    "zip215": verify_zip215,
}


def accepted_by(case: E.Case) -> set[str]:
    return {n for n, f in MODELS.items() if f(case.author, case.sig, case.message)}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_node_gives_the_case_verdict(case: dict[str, str]) -> None:
    obj = objects.decode(bytes.fromhex(case["hex"]))
    kinds.validate(obj, E.TS)  # a well-formed profile: only the signature can fail
    assert objects.verify(obj) == (case["verdict"] == "visible")
    assert case["rule"].startswith("docs/protocol.md §1.2 (Ed25519): ")
    if case["verdict"] == "visible":
        assert "code" not in case
        objects.check_signature(obj)
    else:
        assert case["verdict"] == "rejected"
        assert case["code"] == errors.BadSignature.code == "bad_signature"
        with pytest.raises(errors.BadSignature):
            objects.check_signature(obj)


@pytest.mark.parametrize("case", E.all_cases(), ids=lambda c: c.name)
def test_stated_rule_is_libsodium(case: E.Case) -> None:
    assert case.message == objects.signing_input(
        E.KIND, case.author, E.TS, {"about": "", "name": case.name}
    )
    assert objects.decode(case.raw).sig == case.sig
    assert E.verify_libsodium(case.author, case.sig, case.message) == sodium(
        case.author, case.sig, case.message
    )


# sha256 of the concatenated hex of `cases()`: a change of any corpus byte is deliberate
CORPUS_SHA256 = "66ff783d9e42d8466f06dcc5474ace4b49d015389c166dfa7aed9d8c26699026"


def test_corpus_is_deterministic_and_named_once() -> None:
    assert [c.raw for c in E._build()] == [c.raw for c in E.all_cases()]
    assert hashlib.sha256("".join(c["hex"] for c in CASES).encode()).hexdigest() == CORPUS_SHA256
    assert len(BY_NAME) == len(CASES) >= 39
    assert all(c["name"].isascii() and len(c["name"]) <= 80 for c in CASES)


# Which verifier accepts which case (docs/protocol.md §1.2 "other verifiers"): the point of
# every crafted signature, pinned so that the text and the corpus cannot drift apart.
ALL = "libsodium cofactorless dalek-strict zip215"
LAX = "cofactorless zip215"  # what Go, OpenSSL, dalek `verify` and ZIP 215 all accept
EXPECTED: dict[str, tuple[int, str]] = {
    "valid": (0, ALL),
    "s-plus-l": (1, ""),
    "s-plus-15l": (1, ""),
    **{f"r-{n}": (2, LAX) for n in ("order1", "order2", "order4", "order4-sign")},
    **{f"r-order8{n}": (2, LAX) for n in ("a", "a-sign", "b", "b-sign")},
    **{f"r-{n}": (2, "zip215") for n in ("order1-sign", "order2-sign")},
    **{f"r-order{n}": (2, "zip215") for n in ("4-y=p", "4-y=p-sign", "1-y=p+1", "1-y=p+1-sign")},
    "any-message": (2, LAX),
    **{f"a-{n}": (4, LAX) for n in ("order1", "order1-sign", "order2", "order2-sign")},
    **{f"a-{n}": (4, LAX) for n in ("order4", "order4-sign", "order8a", "order8a-sign")},
    **{f"a-{n}": (4, LAX) for n in ("order8b", "order8b-sign")},
    **{f"a-order{n}": (3, LAX) for n in ("4-y=p", "4-y=p-sign", "1-y=p+1", "1-y=p+1-sign")},
    "a-y=p+c": (3, ""),
    "a-off": (5, ""),
    "a-mixed-cofactored": (7, "zip215"),
    "a-mixed-both": (0, ALL),
    "r-mixed": (7, "zip215"),
    "r-y=p+c": (7, ""),
    "r-off": (7, ""),
}


def test_expectations_cover_the_corpus() -> None:
    assert {f"ed25519/{n}" for n in EXPECTED} == set(BY_NAME)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_models_give_the_documented_verdicts(name: str) -> None:
    case = BY_NAME[f"ed25519/{name}"]
    check, accepting = EXPECTED[name]
    assert case.failed_check == check
    assert accepted_by(case) == set(accepting.split())


@pytest.mark.parametrize("case", E.all_cases(), ids=lambda c: c.name)
def test_openssl_is_the_cofactorless_model(case: E.Case) -> None:
    """`cryptography`'s OpenSSL: every small-order R/A case below is accepted there."""
    got = openssl(case.author, case.sig, case.message)
    assert got == verify_cofactorless(case.author, case.sig, case.message)


# --- the building blocks -----------------------------------------------------------------


def test_blocklist_is_exactly_the_small_order_encodings() -> None:
    assert len({E.encode(t) for t in E.TORSION}) == 8
    assert all(E.is_small_order(t) for t in E.TORSION)
    assert not E.equal(E.mul(4, E.T8), E.IDENTITY)
    # every byte string that decodes to a torsion point: y or y + p (if < 2^255), either sign
    found = set()
    for t in E.TORSION:
        y = int.from_bytes(E.encode(t), "little") & (2**255 - 1)
        for y_raw in (y, y + E.P):
            for sign in (0, 1):
                if y_raw >= 2**255:
                    continue
                b = (y_raw | sign << 255).to_bytes(32, "little")
                pt = E.decode(b)
                if pt is not None:
                    assert E.is_small_order(pt)
                    found.add(b)
    listed = {b for _, b in E._small_order_variants()}
    assert found == listed and len(listed) == 14
    y8 = int.from_bytes(bytes.fromhex(E.SMALL_ORDER_ENCODINGS["order8a"]), "little")
    # the value in libsodium's comment
    assert y8 == 2707385501144840649318225287225658788936804267575313519463743609750303402022


def test_small_order_test_matches_points() -> None:
    rnd = random.Random(215)
    for _ in range(300):
        b = rnd.randbytes(32)
        pt = E.decode(b)
        assert E.small_order_encoding(b) == (pt is not None and E.is_small_order(pt))


def test_signing_matches_libsodium() -> None:
    pk, sk = nacl.bindings.crypto_sign_seed_keypair(E.SEED)
    key = E.key_from_seed(E.SEED)
    assert key.pk == pk
    msg = BY_NAME["ed25519/valid"].message
    assert E.sign(key, msg) == nacl.bindings.crypto_sign(msg, sk)[:64]
    assert BY_NAME["ed25519/valid"].sig == E.sign(key, msg)


def test_strict_decoding_refuses_what_lenient_accepts() -> None:
    for label, b in E._small_order_variants():
        assert E.decode(b) is not None
        assert (E.decode(b, strict=True) is None) == (E.encode(E.decode(b) or E.B) != b), label


# --- random agreement: the rule against libsodium -------------------------------------------


def _random_signed(rnd: random.Random) -> tuple[bytes, bytes, bytes, bytes]:
    seed = rnd.randbytes(32)
    msg = rnd.randbytes(rnd.randrange(0, 200))
    pk, sk = nacl.bindings.crypto_sign_seed_keypair(seed)
    return seed, pk, nacl.bindings.crypto_sign(msg, sk)[:64], msg


def test_rule_agrees_with_libsodium_on_random_valid_signatures() -> None:
    rnd = random.Random(8032)
    for _ in range(200):
        seed, pk, sig, msg = _random_signed(rnd)
        assert sodium(pk, sig, msg)
        assert E.first_failed_check(pk, sig, msg) == 0
        key = E.key_from_seed(seed)
        assert (key.pk, E.sign(key, msg)) == (pk, sig)


def test_rule_agrees_with_libsodium_on_random_bit_flips() -> None:
    rnd = random.Random(25519)
    seen = set()
    for i in range(200):
        _, pk, sig, msg = _random_signed(rnd)
        part = ("R", "S", "A", "M")[i % 4]
        if part == "M" and not msg:
            msg = b"\x00"
        blob = bytearray({"R": sig[:32], "S": sig[32:], "A": pk, "M": msg}[part])
        bit = rnd.randrange(len(blob) * 8)
        if part == "S" and i % 8 == 1:
            bit = rnd.randrange(248, 256)  # the top byte: S >= L (check 1) or not
        blob[bit // 8] ^= 1 << bit % 8
        new = bytes(blob)
        pk2 = new if part == "A" else pk
        sig2 = new + sig[32:] if part == "R" else sig[:32] + new if part == "S" else sig
        msg2 = new if part == "M" else msg
        want = sodium(pk2, sig2, msg2)
        assert E.verify_libsodium(pk2, sig2, msg2) == want, (part, bit)
        seen.add(E.first_failed_check(pk2, sig2, msg2))
    assert {1, 7} <= seen  # S flips above bit 252 and failed equations both occurred


def test_rule_agrees_with_libsodium_on_mixed_order_keys() -> None:
    """A = [a]B + T: libsodium accepts an honest signature iff k*T = O (about 1 in 8 for T of
    order 8), exactly as the cofactorless byte comparison says."""
    rnd = random.Random(1016)
    verdicts = []
    for i in range(64):
        key = E.key_from_seed(rnd.randbytes(32))
        mixed = E.Key(key.a, key.prefix, E.add(key.point, E.TORSION[1 + i % 7]))
        msg = rnd.randbytes(16)
        sig = E.sign(mixed, msg)
        ok = sodium(mixed.pk, sig, msg)
        assert E.verify_libsodium(mixed.pk, sig, msg) == ok
        assert verify_zip215(mixed.pk, sig, msg)
        verdicts.append(ok)
    assert any(verdicts) and not all(verdicts)
