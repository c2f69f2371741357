"""Ed25519 acceptance edge cases as complete Percolab objects (docs/protocol.md §1.2).

- Pure-Python edwards25519 arithmetic (hashlib only): extended coordinates, lenient and
  strict point decoding, canonical encoding, scalar multiplication.
- `first_failed_check`: the acceptance rule of libsodium's `crypto_sign_verify_detached`
  (released 1.0.16 … 1.0.22, the build PyNaCl bundles; not ED25519_COMPAT), as numbered checks.
- `cases()`: the corpus, every object deterministic (fixed seeds, nonces from a hash counter).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from dataclasses import dataclass

import msgpack

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, -1, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
_Y_MASK = (1 << 255) - 1

Point = tuple[int, int, int, int]  # extended (X, Y, Z, T): x = X/Z, y = Y/Z, x*y = T/Z
IDENTITY: Point = (0, 1, 1, 0)


def add(p: Point, q: Point) -> Point:
    """Complete addition on -x^2 + y^2 = 1 + d x^2 y^2 (holds for every pair, torsion too)."""
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * D * t1 * t2 % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def neg(p: Point) -> Point:
    x, y, z, t = p
    return (-x % P, y, z, -t % P)


def mul(k: int, p: Point) -> Point:
    """[k]p for k >= 0 (double and add; variable time, fine for tests)."""
    q = IDENTITY
    while k:
        if k & 1:
            q = add(q, p)
        p = add(p, p)
        k >>= 1
    return q


def equal(p: Point, q: Point) -> bool:
    return (p[0] * q[2] - q[0] * p[2]) % P == 0 and (p[1] * q[2] - q[1] * p[2]) % P == 0


def encode(p: Point) -> bytes:
    """RFC 8032 §5.1.2: y mod p little-endian, bit 255 = x mod 2 (always canonical)."""
    zi = pow(p[2], -1, P)
    x, y = p[0] * zi % P, p[1] * zi % P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def x_from_y(y: int, sign: int) -> int | None:
    """RFC 8032 §5.1.3 x recovery for 0 <= y < p; None if y is not on the curve.
    x = 0 is returned as 0 whatever the sign bit (strictness is the caller's choice)."""
    x2 = (y * y - 1) * pow(D * y * y + 1, -1, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    return -x % P if x & 1 != sign else x


def decode(b: bytes, *, strict: bool = False) -> Point | None:
    """Decode 32 bytes. strict = RFC 8032 §5.1.3 (y < p, no x = 0 with the sign bit set);
    lenient (Go, OpenSSL, dalek, ZIP-215, libsodium's own decoder) reduces y mod p and
    ignores the sign bit when x = 0."""
    raw = int.from_bytes(b, "little")
    y, sign = raw & _Y_MASK, raw >> 255
    if strict and y >= P:
        return None
    x = x_from_y(y % P, sign)
    if x is None or (strict and x == 0 and sign):
        return None
    return (x, y % P, 1, x * y % P)


def _point(y: int, sign: int = 0) -> Point | None:
    x = x_from_y(y, sign)
    return None if x is None else (x, y, 1, x * y % P)


B: Point = _point(4 * pow(5, -1, P) % P) or IDENTITY


_B_TABLE = tuple(itertools.accumulate(range(255), lambda p, _: add(p, p), initial=B))


def mul_base(k: int) -> Point:
    """[k]B for 0 <= k < 2^256, from the table of [2^i]B."""
    q = IDENTITY
    for i, p in enumerate(_B_TABLE):
        if k >> i & 1:
            q = add(q, p)
    return q


def is_small_order(p: Point) -> bool:
    return equal(mul(8, p), IDENTITY)


def _order8_point() -> Point:
    """A generator of the 8-torsion, derived without any table: [L]Q for a point Q of full
    order is Q's torsion component."""
    for y in itertools.count(2):
        q = _point(y)
        if q is not None and not equal(mul(4, t := mul(L, q)), IDENTITY):
            return t
    raise AssertionError("unreachable")


T8 = _order8_point()
TORSION: tuple[Point, ...] = tuple(mul(i, T8) for i in range(8))

# libsodium ge25519_has_small_order (ed25519_ref10.c): these 7 byte strings, compared with
# bit 255 (the sign bit) cleared, so 14 encodings: exactly those that decode to a point of
# order 1, 2, 4 or 8, including the non-canonical ones (y = p, y = p + 1, x = 0 with sign).
SMALL_ORDER_ENCODINGS: dict[str, str] = {
    "order4": "0000000000000000000000000000000000000000000000000000000000000000",
    "order1": "0100000000000000000000000000000000000000000000000000000000000000",
    "order8a": "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "order8b": "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "order2": "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "order4-y=p": "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "order1-y=p+1": "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
}
_BLOCKLIST = frozenset(bytes.fromhex(h) for h in SMALL_ORDER_ENCODINGS.values())


def small_order_encoding(b: bytes) -> bool:
    return b[:31] + bytes([b[31] & 0x7F]) in _BLOCKLIST


def _h(*parts: bytes) -> int:
    return int.from_bytes(hashlib.sha512(b"".join(parts)).digest(), "little")


# --- the rule (docs/protocol.md §1.2) ---------------------------------------------------------

CHECKS: dict[int, str] = {
    0: "all checks pass",
    1: "check 1, S < L",
    2: "check 2, R is not a small-order encoding",
    3: "check 3, A is canonical (y < p)",
    4: "check 4, A is not a small-order encoding",
    5: "check 5, A decodes to a curve point",
    7: "check 7, encode([S]B - [k]A) == R byte for byte (cofactorless)",
}


def first_failed_check(pk: bytes, sig: bytes, msg: bytes) -> int:
    """Number of the first check of docs/protocol.md §1.2 that fails; 0 if all pass."""
    s = int.from_bytes(sig[32:], "little")
    if s >= L:
        return 1
    if small_order_encoding(sig[:32]):
        return 2
    if int.from_bytes(pk, "little") & _Y_MASK >= P:
        return 3
    if small_order_encoding(pk):
        return 4
    a = decode(pk)
    if a is None:
        return 5
    return 0 if cofactorless_equation(s, a, pk, sig, msg) else 7


def cofactorless_equation(s: int, a: Point, pk: bytes, sig: bytes, msg: bytes) -> bool:
    k = _h(sig[:32], pk, msg) % L  # check 6: R and A exactly as received
    return encode(add(mul_base(s), neg(mul(k, a)))) == sig[:32]


def verify_libsodium(pk: bytes, sig: bytes, msg: bytes) -> bool:
    return first_failed_check(pk, sig, msg) == 0


# --- keys, signatures, objects --------------------------------------------------------------

KIND = "profile"
TS = 1767225600000
SIGN_DOMAIN = b"percolab/object/v1\x00"
SEED = bytes(range(32))


def _pack(value: object) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def signing_input(name: str, author: bytes) -> bytes:
    return SIGN_DOMAIN + _pack([1, KIND, author, TS, {"about": "", "name": name}])


def object_bytes(name: str, author: bytes, sig: bytes) -> bytes:
    return _pack([1, KIND, author, TS, {"about": "", "name": name}, sig])


@dataclass(frozen=True)
class Key:
    a: int  # secret scalar
    prefix: bytes  # RFC 8032 nonce key
    point: Point  # [a]B, plus a torsion point for a mixed-order key

    @property
    def pk(self) -> bytes:
        return encode(self.point)


def key_from_seed(seed: bytes) -> Key:
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a = (a & ~7 & ((1 << 254) - 1)) | 1 << 254  # RFC 8032 clamping
    return Key(a, h[32:], mul_base(a))


def sign(key: Key, msg: bytes) -> bytes:
    """RFC 8032 §5.1.6 (with a mixed-order key the same formula, [a]B != A)."""
    r = _h(key.prefix, msg) % L
    rb = encode(mul_base(r))
    return rb + _scalar(r + _h(rb, key.pk, msg) % L * key.a)


def _scalar(s: int) -> bytes:
    return (s % L).to_bytes(32, "little")


def _nonce(label: str, i: int) -> int:
    return _h(b"percolab/conformance/ed25519\x00", label.encode(), i.to_bytes(4, "little")) % L


@dataclass(frozen=True)
class Case:
    name: str
    author: bytes
    sig: bytes
    built: str  # how the signature was made

    @property
    def message(self) -> bytes:
        return signing_input(self.name, self.author)

    @property
    def raw(self) -> bytes:
        return object_bytes(self.name, self.author, self.sig)

    @property
    def failed_check(self) -> int:
        return first_failed_check(self.author, self.sig, self.message)


def _grind(name: str, pk: bytes, a: int, t_a: Point, rs: tuple[Point, ...], ok: bool) -> bytes:
    """Signature R = [r]B + T (T in rs), S = r + k*a for A = [a]B + t_a (t_a torsion), with
    nonces tried until "[S]B - [k]A == R", i.e. T == -[k]t_a, is `ok`."""
    msg = signing_input(name, pk)
    for i in itertools.count():
        r = _nonce(name, i)
        for t in rs:
            rb = encode(add(mul_base(r), t))
            k = _h(rb, pk, msg) % L
            if equal(neg(mul(k % 8, t_a)), t) == ok:
                return rb + _scalar(r + k * a)
    raise AssertionError("unreachable")


def _small_r_sig(name: str, rb: bytes) -> tuple[bytes, bytes, str]:
    """R = rb (a canonical small-order encoding) made cofactorless-valid: A = [a]B + T_A
    with S = k*a, so [S]B - [k]A = -[k]T_A; try keys until that encodes to rb."""
    for i in itertools.count():
        a = _nonce(name, i)
        for t_a in TORSION[1::2]:  # the 4 points of order 8
            pk = encode(add(mul_base(a), t_a))
            k = _h(rb, pk, signing_input(name, pk)) % L
            if encode(neg(mul(k % 8, t_a))) == rb:
                return pk, rb + _scalar(k * a), "mixed-order A, S = k*a: cofactorless-valid"
    raise AssertionError("unreachable")


def _small_order_variants() -> list[tuple[str, bytes]]:
    out = []
    for label, hx in SMALL_ORDER_ENCODINGS.items():
        b = bytes.fromhex(hx)
        out += [(label, b), (label + "-sign", b[:31] + bytes([b[31] | 0x80]))]
    return out


def _noncanonical_large() -> bytes:
    """The first y = p + c (c >= 2) that decodes; its point has large order."""
    for c in range(2, 19):
        b = (P + c).to_bytes(32, "little")
        pt = decode(b)
        if pt is not None and not is_small_order(pt):
            return b
    raise AssertionError("no non-canonical large-order encoding")


def _off_curve() -> bytes:
    return next(y.to_bytes(32, "little") for y in itertools.count(2) if x_from_y(y, 0) is None)


def _build() -> list[Case]:
    key = key_from_seed(SEED)
    mixed = Key(key.a, key.prefix, add(key.point, T8))
    one = bytes.fromhex(SMALL_ORDER_ENCODINGS["order1"])
    valid = sign(key, signing_input("ed25519/valid", key.pk))
    out = [Case("ed25519/valid", key.pk, valid, "RFC 8032 signature, seed 00..1f")]
    for n in (1, 15):
        name = f"ed25519/s-plus-{n if n > 1 else ''}l"
        sig = sign(key, signing_input(name, key.pk))
        s = (int.from_bytes(sig[32:], "little") + n * L).to_bytes(32, "little")
        out.append(Case(name, key.pk, sig[:32] + s, f"valid signature, S + {n}L"))

    def with_r(name: str, rb: bytes, built: str) -> Case:
        k = _h(rb, key.pk, signing_input(name, key.pk)) % L
        return Case(name, key.pk, rb + _scalar(k * key.a), built)

    for label, rb in _small_order_variants():
        name = f"ed25519/r-{label}"
        if rb == one or encode(decode(rb) or IDENTITY) != rb:  # identity, or non-canonical
            why = "cofactorless-valid" if rb == one else "cofactored-valid only"
            out.append(with_r(name, rb, f"ordinary key, S = k*a: {why}"))
        else:
            out.append(Case(name, *_small_r_sig(name, rb)))
    out.append(Case("ed25519/any-message", one, one + bytes(32), "A = R = identity, S = 0"))
    for label, ab in _small_order_variants():
        name, t_a = f"ed25519/a-{label}", decode(ab) or IDENTITY
        sig = _grind(name, ab, 0, t_a, TORSION, True)
        out.append(Case(name, ab, sig, "small-order A, R = [r]B + T: cofactorless-valid"))
    for name, ab in (("ed25519/a-y=p+c", _noncanonical_large()), ("ed25519/a-off", _off_curve())):
        r = _nonce(name, 0)
        out.append(Case(name, ab, encode(mul_base(r)) + _scalar(r), "no known log of A"))
    for name, ok in (("ed25519/a-mixed-cofactored", False), ("ed25519/a-mixed-both", True)):
        sig = _grind(name, mixed.pk, mixed.a, T8, (IDENTITY,), ok)
        why = "cofactorless-valid" if ok else "cofactored-valid only"
        out.append(Case(name, mixed.pk, sig, f"A = [a]B + T8, R = [r]B, S = r + k*a: {why}"))
    sig = _grind("ed25519/r-mixed", key.pk, key.a, IDENTITY, (T8,), False)
    out.append(Case("ed25519/r-mixed", key.pk, sig, "R = [r]B + T8: cofactored-valid only"))
    out.append(with_r("ed25519/r-y=p+c", _noncanonical_large(), "non-canonical large-order R"))
    out.append(with_r("ed25519/r-off", _off_curve(), "R not on the curve"))
    return out


@functools.cache
def all_cases() -> tuple[Case, ...]:
    return tuple(_build())


def cases() -> list[dict[str, str]]:
    out = []
    for c in all_cases():
        check = c.failed_check
        d = {
            "name": c.name,
            "rule": f"docs/protocol.md §1.2 (Ed25519): {CHECKS[check]}",
            "hex": c.raw.hex(),
            "verdict": "visible" if check == 0 else "rejected",
        }
        if check:
            d["code"] = "bad_signature"
        out.append(d)
    return out
