"""SPAKE2 over Ed25519 (protocols/spake2.py): agreement, wrong passwords, refused points,
and a fixed vector (docs/pairing.md, "Test vector")."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable

import nacl.bindings as sodium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.spake2 import (
    M,
    N,
    Role,
    Spake2,
    Spake2Error,
    check_element,
    password_scalar,
)

PASSWORD = b"94FXY08WD"

# The small-order points of Ed25519 (libsodium's blocklist, canonical and not).
SMALL_ORDER = [
    bytes.fromhex("0100000000000000000000000000000000000000000000000000000000000000"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("0000000000000000000000000000000000000000000000000000000000000080"),
    bytes.fromhex("0000000000000000000000000000000000000000000000000000000000000000"),
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
]


def det(seed: bytes) -> Callable[[int], bytes]:
    """Deterministic 'random' bytes: SHA-512(seed || counter)[:n]."""
    counter = [0]

    def randbytes(n: int) -> bytes:
        counter[0] += 1
        return hashlib.sha512(seed + bytes([counter[0]])).digest()[:n]

    return randbytes


def pair(
    pw_a: bytes = PASSWORD, pw_b: bytes = PASSWORD, ids: tuple[bytes, bytes] = (b"idA", b"idB")
) -> tuple[Spake2, Spake2]:
    return Spake2.start(Role.A, pw_a, *ids), Spake2.start(Role.B, pw_b, *ids)


def test_both_sides_agree() -> None:
    a, b = pair()
    ka, kb = a.finish(b.message), b.finish(a.message)
    assert ka == kb
    assert kb.check_mac(Role.A, ka.mac(Role.A))
    assert ka.check_mac(Role.B, kb.mac(Role.B))
    assert ka.mac(Role.A) != ka.mac(Role.B)
    assert len({ka.encryption, ka.confirm_a, ka.confirm_b, ka.sas_key}) == 4
    sas = ka.sas()
    assert len(sas) == 7 and sas[3] == " " and sas.replace(" ", "").isdigit()


def test_fresh_randomness_gives_fresh_keys() -> None:
    a1, b1 = pair()
    a2, b2 = pair()
    assert a1.message != a2.message
    assert a1.finish(b1.message).encryption != a2.finish(b2.message).encryption


def test_wrong_password_fails_confirmation() -> None:
    a, b = pair(pw_b=b"94FXY08WE")
    ka, kb = a.finish(b.message), b.finish(a.message)
    assert ka.encryption != kb.encryption
    assert not kb.check_mac(Role.A, ka.mac(Role.A))
    assert not ka.check_mac(Role.B, kb.mac(Role.B))


def test_identities_are_bound() -> None:
    a = Spake2.start(Role.A, PASSWORD, b"idA", b"idB")
    b = Spake2.start(Role.B, PASSWORD, b"idA", b"idC")  # B thinks it is someone else
    ka, kb = a.finish(b.message), b.finish(a.message)
    assert not kb.check_mac(Role.A, ka.mac(Role.A))
    assert password_scalar(PASSWORD, b"x", b"yz") != password_scalar(PASSWORD, b"xy", b"z")


def test_roles_are_not_interchangeable() -> None:
    a1 = Spake2.start(Role.A, PASSWORD, b"idA", b"idB")
    a2 = Spake2.start(Role.A, PASSWORD, b"idA", b"idB")  # two A's: no common key
    assert a1.finish(a2.message).encryption != a2.finish(a1.message).encryption


def test_fixed_vector() -> None:
    assert M.hex() == "e135622b91f4f5fee460d3afac18f276b0140ac5b50f2f9e94467a8250ee79b6"
    assert N.hex() == "31d62acc6b760adcdcda4b6bf9d6c9ef917c14eeb59018e776c5f3c2dd138101"
    a = Spake2.start(Role.A, PASSWORD, b"idA", b"idB", det(b"a"))
    b = Spake2.start(Role.B, PASSWORD, b"idA", b"idB", det(b"b"))
    assert a.message.hex() == "d90ef1513ce40a01d313e4a90245919f098cc00d7cd4bd8ca5db65504b193cdb"
    assert b.message.hex() == "a01882ad6703b8ee6efcbef9e12ddd89bcb368deed18236441f11f0f187eec94"
    keys = a.finish(b.message)
    assert keys.transcript_hash.hex() == (
        "75112d7f5f98755c88bc503894c534357b5cb5b0dcfe617c6e1398717c6ea0c3"
    )
    assert keys.sas() == "517 717"
    assert keys.mac(Role.A).hex() == (
        "e1330bfad73019b4ad0f7af782eaa7a57b56fa2e68bb525f37b28047b2c5604b"
    )


def test_m_and_n_are_group_elements() -> None:
    for point in (M, N):
        check_element(point)
    assert M != N


@pytest.mark.parametrize("point", SMALL_ORDER)
def test_small_order_points_refused(point: bytes) -> None:
    a, _ = pair()
    with pytest.raises(Spake2Error):
        a.finish(point)


def test_points_outside_the_prime_order_subgroup_refused() -> None:
    a, b = pair()
    # b's element plus the point of order 2: on the curve, not in the subgroup.
    mixed = bytes(sodium.crypto_core_ed25519_add(b.message, SMALL_ORDER[1]))
    assert mixed != b.message
    with pytest.raises(Spake2Error):
        a.finish(mixed)


@pytest.mark.parametrize(
    "bad", [b"", b"\x01" * 31, b"\x01" * 33, b"\xff" * 32, bytearray(32), "x" * 32]
)
def test_malformed_elements_refused(bad: object) -> None:
    a, _ = pair()
    with pytest.raises(Spake2Error):
        a.finish(bad)  # type: ignore[arg-type]


def test_element_that_cancels_the_blinding_refused() -> None:
    """pB = w·N makes pB − w·N the identity: no key, never a key of zeros."""
    a, _ = pair()
    w = password_scalar(PASSWORD, b"idA", b"idB")
    with pytest.raises(Spake2Error):
        a.finish(bytes(sodium.crypto_scalarmult_ed25519_noclamp(w, N)))


def test_reflection_refused() -> None:
    a, _ = pair()
    with pytest.raises(Spake2Error):
        a.finish(a.message)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=40))
def test_any_bytes_are_a_key_or_a_clean_error(data: bytes) -> None:
    a, _ = pair()
    with contextlib.suppress(Spake2Error):
        a.finish(data)
