"""SPAKE2 over the Ed25519 prime-order group (RFC 9382's construction), with libsodium's
Ed25519 core through ``nacl.bindings`` (sans-I/O; docs/pairing.md, "SPAKE2").

    M = from_uniform(SHA-512("percolab/pair/v1 M")[:32]),  N likewise with " N"
    w = reduce(SHA-512(lp("percolab/pair/v1 w") || lp(password) || lp(idA) || lp(idB)))
    A: x random,  pA = x·G + w·M        B: y random,  pB = y·G + w·N
    A: K = x·(pB − w·N)                  B: K = y·(pA − w·M)
    TT = lp(CONTEXT) || lp(idA) || lp(idB) || lp(pA) || lp(pB) || lp(K) || lp(w)
    PRK = SHA-512(TT); every key = HMAC-SHA256(PRK, label)

``lp(x)`` = 8-byte little-endian length || x (RFC 9382). ``from_uniform`` lands in the
prime-order subgroup and nobody knows the discrete log of M or N. A peer's element must be a
canonical point of the prime-order subgroup, not of small order (``is_valid_point``); a shared
point K at the identity is refused too. The password needs no slow KDF: an attacker only gets
online guesses (one per session, and the joiner burns its code after a few).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import nacl.bindings as sodium
import nacl.exceptions

CONTEXT = b"percolab/pair/v1"
ELEMENT_BYTES = 32
SCALAR_BYTES = 32
MAC_BYTES = 32
KEY_BYTES = 32
SAS_DIGITS = 6


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(8, "little") + data


def _point(label: bytes) -> bytes:
    return bytes(sodium.crypto_core_ed25519_from_uniform(hashlib.sha512(label).digest()[:32]))


M = _point(CONTEXT + b" M")
N = _point(CONTEXT + b" N")


class Role(Enum):
    A = "A"  # the approver (existing device): sends pA
    B = "B"  # the joiner (new device): sends pB


class Spake2Error(ValueError):
    """The peer's element is not acceptable, or the key exchange produced no key."""


def password_scalar(password: bytes, id_a: bytes, id_b: bytes) -> bytes:
    digest = hashlib.sha512(_lp(CONTEXT + b" w") + _lp(password) + _lp(id_a) + _lp(id_b)).digest()
    return bytes(sodium.crypto_core_ed25519_scalar_reduce(digest))


def check_element(element: bytes) -> None:
    """A peer's element: 32 bytes, a canonical prime-order point, not of small order."""
    if type(element) is not bytes or len(element) != ELEMENT_BYTES:
        raise Spake2Error("a SPAKE2 element is 32 bytes")
    if not sodium.crypto_core_ed25519_is_valid_point(element):
        raise Spake2Error("the SPAKE2 element is not a valid point of the group")


@dataclass(frozen=True)
class Keys:
    """What both sides derive. ``transcript_hash`` binds later messages to this exchange."""

    encryption: bytes = field(repr=False)  # ChaCha20-Poly1305 key of the sealed messages
    confirm_a: bytes = field(repr=False)  # HMAC key of A's confirmation
    confirm_b: bytes = field(repr=False)  # HMAC key of B's confirmation
    sas_key: bytes = field(repr=False)
    transcript_hash: bytes  # SHA-256(TT)

    def mac(self, role: Role) -> bytes:
        """``role``'s confirmation MAC: HMAC-SHA256(Kc_role, SHA-256(TT))."""
        key = self.confirm_a if role is Role.A else self.confirm_b
        return hmac.new(key, self.transcript_hash, hashlib.sha256).digest()

    def check_mac(self, role: Role, mac: bytes) -> bool:
        return type(mac) is bytes and hmac.compare_digest(self.mac(role), mac)

    def sas(self) -> str:
        """Short authentication string: 6 decimal digits shown as ``123 456``."""
        digest = hmac.new(self.sas_key, self.transcript_hash, hashlib.sha256).digest()
        value = int.from_bytes(digest[:8], "big") % 10**SAS_DIGITS
        digits = f"{value:0{SAS_DIGITS}d}"
        return f"{digits[:3]} {digits[3:]}"


def _derive(prk: bytes, label: bytes) -> bytes:
    return hmac.new(prk, CONTEXT + b" " + label, hashlib.sha256).digest()


def _random_scalar(randbytes: Callable[[int], bytes]) -> bytes:
    while True:
        scalar = bytes(sodium.crypto_core_ed25519_scalar_reduce(randbytes(64)))
        if any(scalar):
            return scalar


@dataclass(frozen=True)
class Spake2:
    """One side of one exchange: ``message`` goes to the peer, ``finish(peer's)`` keys."""

    role: Role
    id_a: bytes
    id_b: bytes
    w: bytes = field(repr=False)
    secret: bytes = field(repr=False)  # x or y
    message: bytes  # pA or pB

    @classmethod
    def start(
        cls,
        role: Role,
        password: bytes,
        id_a: bytes,
        id_b: bytes,
        randbytes: Callable[[int], bytes] = os.urandom,
    ) -> Spake2:
        w = password_scalar(password, id_a, id_b)
        secret = _random_scalar(randbytes)
        blind = M if role is Role.A else N
        element = sodium.crypto_core_ed25519_add(
            sodium.crypto_scalarmult_ed25519_base_noclamp(secret),
            sodium.crypto_scalarmult_ed25519_noclamp(w, blind),
        )
        return cls(role, id_a, id_b, w, secret, bytes(element))

    def finish(self, peer_message: bytes) -> Keys:
        """Keys from the peer's element; Spake2Error if it is not acceptable."""
        check_element(peer_message)
        if peer_message == self.message:
            raise Spake2Error("the peer reflected our own SPAKE2 element")
        unblind = N if self.role is Role.A else M
        try:
            base = sodium.crypto_core_ed25519_sub(
                peer_message, sodium.crypto_scalarmult_ed25519_noclamp(self.w, unblind)
            )
            shared = bytes(sodium.crypto_scalarmult_ed25519_noclamp(self.secret, base))
        except nacl.exceptions.CryptoError:  # the identity point: no key
            raise Spake2Error("the SPAKE2 exchange produced no shared key") from None
        p_a, p_b = (
            (self.message, peer_message) if self.role is Role.A else (peer_message, self.message)
        )
        transcript = b"".join(
            _lp(part) for part in (CONTEXT, self.id_a, self.id_b, p_a, p_b, shared, self.w)
        )
        prk = hashlib.sha512(transcript).digest()
        return Keys(
            encryption=_derive(prk, b"encryption"),
            confirm_a=_derive(prk, b"confirm A"),
            confirm_b=_derive(prk, b"confirm B"),
            sas_key=_derive(prk, b"sas"),
            transcript_hash=hashlib.sha256(transcript).digest(),
        )
