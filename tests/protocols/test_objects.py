"""Object model: canonical encoding, round trips, signatures and ids (protocols/objects.py)."""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import msgpack
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import errors, kinds, objects
from protocols.limits import SIG_BYTES

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
TS = 1_700_000_000_000

# ---- strategies ----------------------------------------------------------------------------

ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
scalars = st.none() | st.booleans() | ints | st.text(max_size=40) | st.binary(max_size=40)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# `lab`, the scope field of every kind, must hold an id: leave it out of arbitrary bodies.
bodies = st.dictionaries(st.text(max_size=12).filter(lambda k: k != "lab"), values, max_size=6)
kinds_st = st.from_regex(r"[a-z][a-z0-9_.-]{0,19}", fullmatch=True)
timestamps = st.integers(min_value=0, max_value=2**48 - 1)


# ---- a msgpack writer with chosen (non-canonical) forms --------------------------------------


class _Writer:
    """Encodes like msgpack but can widen node number `widen` (pre-order) to a longer form,
    write maps with keys in a given order, or repeat a key."""

    def __init__(self, widen: int = -1, key_order: str = "sorted", dup_key: bool = False):
        self.widen, self.key_order, self.dup_key = widen, key_order, dup_key
        self.n = 0
        self.widened = False

    def enc(self, v: Any) -> bytes:
        idx, self.n = self.n, self.n + 1
        wide = idx == self.widen
        minimal = None
        if v is None or isinstance(v, bool):
            return msgpack.packb(v)
        if isinstance(v, int):
            minimal = msgpack.packb(v)
            if not wide:
                return minimal
            alt = b"\xcf" + struct.pack(">Q", v) if v >= 0 else b"\xd3" + struct.pack(">q", v)
            if alt != minimal:
                self.widened = True
                return alt
            return minimal
        if isinstance(v, str):
            data = v.encode()
            if wide:
                self.widened = True
                return b"\xdb" + struct.pack(">I", len(data)) + data
            return msgpack.packb(v)
        if isinstance(v, bytes):
            if wide:
                self.widened = True
                return b"\xc6" + struct.pack(">I", len(v)) + v
            return msgpack.packb(v, use_bin_type=True)
        if isinstance(v, list):
            items = b"".join(self.enc(x) for x in v)
            if wide:
                self.widened = True
                return b"\xdd" + struct.pack(">I", len(v)) + items
            return _array_header(len(v)) + items
        if isinstance(v, dict):
            keys = sorted(v)
            if self.key_order == "reversed":
                keys = keys[::-1]
            pairs = [(k, v[k]) for k in keys]
            if self.dup_key and pairs:
                pairs.append(pairs[0])
                self.dup_key = False  # only the first (outermost) map gets a duplicate
            items = b"".join(self.enc(k) + self.enc(x) for k, x in pairs)
            if wide:
                self.widened = True
                return b"\xdf" + struct.pack(">I", len(pairs)) + items
            return _map_header(len(pairs)) + items
        raise TypeError(type(v))


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes([0x90 | n])
    return b"\xdc" + struct.pack(">H", n) if n < 2**16 else b"\xdd" + struct.pack(">I", n)


def _map_header(n: int) -> bytes:
    if n < 16:
        return bytes([0x80 | n])
    return b"\xde" + struct.pack(">H", n) if n < 2**16 else b"\xdf" + struct.pack(">I", n)


def _envelope(obj: objects.SignedObject) -> list[Any]:
    return [obj.v, obj.kind, obj.author, obj.ts, dict(obj.body), obj.sig]


def _count_nodes(v: Any) -> int:
    if isinstance(v, list):
        return 1 + sum(_count_nodes(x) for x in v)
    if isinstance(v, dict):
        return 1 + sum(_count_nodes(k) + _count_nodes(x) for k, x in v.items())
    return 1


def _project(title: str = "Solar oven", ts: int = TS, key: Ed25519PrivateKey = KEY):
    body = {
        "lab": hashlib.sha256(b"lab").digest(),
        "title": title,
        "summary": "a box that cooks with sunlight",
        "body": "",
        "stage": "idea",
        "needs": ["mirrors"],
    }
    return kinds.create(key, "project", body, ts)


# ---- round trip ----------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(kind=kinds_st, ts=timestamps, body=bodies)
def test_sign_decode_round_trip(kind: str, ts: int, body: dict[str, Any]) -> None:
    obj = objects.sign(KEY, kind, ts, body)
    again = objects.decode(obj.raw)
    assert again == obj
    assert again.kind == kind and again.ts == ts and again.author == objects.public_key_bytes(KEY)
    assert again.body == body
    assert again.id == hashlib.sha256(obj.raw).digest() == objects.object_id(obj.raw)
    assert objects.verify(again)
    # The writer used by the non-canonical tests reproduces the canonical bytes exactly.
    assert _Writer().enc(_envelope(obj)) == obj.raw


def test_body_key_order_does_not_matter_when_signing() -> None:
    a = objects.sign(KEY, "x", TS, {"b": 1, "a": {"d": 2, "c": 3}})
    b = objects.sign(KEY, "x", TS, {"a": {"c": 3, "d": 2}, "b": 1})
    assert a.raw == b.raw and a.id == b.id
    assert list(objects.decode(a.raw).body) == ["a", "b"]


def test_signature_is_domain_separated() -> None:
    obj = _project()
    assert objects.signing_input(obj.kind, obj.author, obj.ts, obj.body).startswith(
        objects.SIGN_DOMAIN
    )
    # The same fields signed without the domain prefix must not verify.
    bare_sig = KEY.sign(objects.unsigned_bytes(obj.kind, obj.author, obj.ts, obj.body))
    raw = msgpack.packb([1, obj.kind, obj.author, obj.ts, dict(obj.body), bare_sig])
    forged = objects.decode(raw)
    assert not objects.verify(forged)
    with pytest.raises(errors.BadSignature):
        objects.check_signature(forged)


def test_signature_by_another_key_is_refused() -> None:
    obj = _project()
    other_sig = OTHER.sign(objects.signing_input(obj.kind, obj.author, obj.ts, obj.body))
    raw = msgpack.packb([1, obj.kind, obj.author, obj.ts, dict(obj.body), other_sig])
    assert not objects.verify(objects.decode(raw))
    objects.check_signature(objects.decode(obj.raw))  # the genuine one passes


# ---- canonical bytes are unique --------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=kinds_st, ts=timestamps, body=bodies, data=st.data())
def test_non_minimal_forms_are_non_canonical(kind, ts, body, data) -> None:
    obj = objects.sign(KEY, kind, ts, body)
    env = _envelope(obj)
    target = data.draw(st.integers(0, _count_nodes(env) - 1), label="node")
    w = _Writer(widen=target)
    raw = w.enc(env)
    if not w.widened:  # that node has no longer form (None, bool, int64 negatives)
        assert raw == obj.raw
        return
    assert raw != obj.raw
    assert msgpack.unpackb(raw, raw=False) == msgpack.unpackb(obj.raw, raw=False)  # same value
    with pytest.raises(errors.NonCanonical):
        objects.decode(raw)


@pytest.mark.parametrize(
    "raw_of",
    [
        # version 1 as uint8 instead of a positive fixint
        lambda o: b"\x96\xcc\x01" + o.raw[2:],
        # kind as str8 instead of fixstr
        lambda o: (
            b"\x96\x01"
            + b"\xd9"
            + bytes([len(o.kind)])
            + o.kind.encode()
            + o.raw[2 + 1 + len(o.kind) :]
        ),
    ],
    ids=["v-uint8", "kind-str8"],
)
def test_specific_non_canonical_forms(raw_of) -> None:
    obj = _project()
    raw = raw_of(obj)
    assert msgpack.unpackb(raw, raw=False) == msgpack.unpackb(obj.raw, raw=False)
    with pytest.raises(errors.NonCanonical):
        objects.decode(raw)


def test_ts_as_uint32_when_it_fits_a_fixint_is_non_canonical() -> None:
    obj = objects.sign(KEY, "x", 5, {"n": 7})
    good = msgpack.packb([1, "x", obj.author, 5, {"n": 7}, obj.sig])
    assert good == obj.raw
    wide_ts = good.replace(b"\x05\x81", b"\xce\x00\x00\x00\x05\x81", 1)
    wide_int = good.replace(b"\xa1n\x07", b"\xa1n\xce\x00\x00\x00\x07", 1)
    for raw in (wide_ts, wide_int):
        assert raw != good
        assert msgpack.unpackb(raw, raw=False) == msgpack.unpackb(good, raw=False)
        with pytest.raises(errors.NonCanonical):
            objects.decode(raw)


@settings(max_examples=100, deadline=None)
@given(body=st.dictionaries(st.text(max_size=8), values, min_size=2, max_size=6))
def test_unsorted_keys_are_non_canonical(body) -> None:
    obj = objects.sign(KEY, "x", TS, body)
    raw = _Writer(key_order="reversed").enc(_envelope(obj))
    assert raw != obj.raw
    with pytest.raises(errors.NonCanonical):
        objects.decode(raw)


def test_unsorted_keys_in_a_nested_map_are_non_canonical() -> None:
    obj = objects.sign(KEY, "x", TS, {"m": {"a": 1, "b": 2}})
    raw = obj.raw.replace(b"\x82\xa1a\x01\xa1b\x02", b"\x82\xa1b\x02\xa1a\x01")
    assert raw != obj.raw
    with pytest.raises(errors.NonCanonical):
        objects.decode(raw)


@settings(max_examples=100, deadline=None)
@given(body=st.dictionaries(st.text(max_size=8), values, min_size=1, max_size=6))
def test_duplicate_keys_are_non_canonical(body) -> None:
    obj = objects.sign(KEY, "x", TS, body)
    raw = _Writer(dup_key=True).enc(_envelope(obj))
    assert raw != obj.raw
    with pytest.raises(errors.NonCanonical):
        objects.decode(raw)


def test_duplicate_key_with_other_value_is_non_canonical() -> None:
    obj = objects.sign(KEY, "x", TS, {"a": 1})
    raw = obj.raw.replace(b"\x81\xa1a\x01", b"\x82\xa1a\x01\xa1a\x02")
    with pytest.raises(errors.NonCanonical):
        objects.decode(raw)


def test_non_string_map_keys_are_refused() -> None:
    obj = objects.sign(KEY, "x", TS, {"a": 1})
    for replacement in (b"\x81\xc4\x01a\x01", b"\x81\x01\x01"):  # bin key, int key
        raw = obj.raw.replace(b"\x81\xa1a\x01", replacement)
        with pytest.raises(errors.ObjectError):
            objects.decode(raw)
    with pytest.raises(errors.ForbiddenType):
        objects.sign(KEY, "x", TS, {1: "a"})  # type: ignore[dict-item]


def test_trailing_bytes_are_refused() -> None:
    obj = _project()
    with pytest.raises(errors.ObjectError):
        objects.decode(obj.raw + b"\x00")


# ---- envelope checks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("envelope", "error"),
    [
        ([1, "x", bytes(32), 0, {}], errors.BadEnvelope),
        ([1, "x", bytes(32), 0, {}, bytes(64), 0], errors.BadEnvelope),
        ({"v": 1}, errors.BadEnvelope),
        ([0, "x", bytes(32), 0, {}, bytes(64)], errors.BadEnvelope),
        ([65536, "x", bytes(32), 0, {}, bytes(64)], errors.BadEnvelope),
        ([1, "X", bytes(32), 0, {}, bytes(64)], errors.BadEnvelope),
        ([1, "", bytes(32), 0, {}, bytes(64)], errors.BadEnvelope),
        ([1, "a" * 33, bytes(32), 0, {}, bytes(64)], errors.BadEnvelope),
        ([1, "x\x00", bytes(32), 0, {}, bytes(64)], errors.BadEnvelope),
        ([True, "x", bytes(32), 0, {}, bytes(64)], errors.BadEnvelope),
        (["1", "x", bytes(32), 0, {}, bytes(64)], errors.BadEnvelope),
        ([1, b"x", bytes(32), 0, {}, bytes(64)], errors.BadEnvelope),
        ([1, "x", bytes(31), 0, {}, bytes(64)], errors.BadEnvelope),
        ([1, "x", "a" * 32, 0, {}, bytes(64)], errors.BadEnvelope),
        ([1, "x", bytes(32), "0", {}, bytes(64)], errors.BadEnvelope),
        ([1, "x", bytes(32), False, {}, bytes(64)], errors.BadEnvelope),
        ([1, "x", bytes(32), 0, [], bytes(64)], errors.BadEnvelope),
        ([1, "x", bytes(32), 0, {}, bytes(63)], errors.BadEnvelope),
        ([1, "x", bytes(32), 0, {}, None], errors.BadEnvelope),
    ],
)
def test_bad_envelopes(envelope, error) -> None:
    with pytest.raises(error):
        objects.decode(msgpack.packb(envelope, use_bin_type=True))


def test_a_newer_envelope_version_decodes_and_is_not_understood() -> None:
    raw = msgpack.packb([2, "x", bytes(32), 0, {}, bytes(64)], use_bin_type=True)
    obj = objects.decode(raw)
    assert obj.v == 2
    with pytest.raises(errors.UnsupportedVersion):
        kinds.understand(obj)


def test_garbage_is_undecodable() -> None:
    for raw in (b"", b"\xc1", b"\x96", b"\xd9\x05ab"):
        with pytest.raises(errors.Undecodable):
            objects.decode(raw)


def test_float_in_body_is_refused_by_validation() -> None:
    raw = msgpack.packb([1, "comment", bytes(32), TS, {"body": 1.5}, bytes(SIG_BYTES)])
    with pytest.raises(errors.ObjectError):
        kinds.validate(objects.decode(raw), TS)


# ---- bit flips -----------------------------------------------------------------------------


def _accepted(raw: bytes, now: int) -> bool:
    """True if `raw` passes every check a node applies (any other exception propagates)."""
    try:
        obj = objects.decode(raw)
        kinds.validate(obj, now)
    except errors.ObjectError:
        return False
    return objects.verify(obj)


def _examples() -> list[objects.SignedObject]:
    lab = kinds.create(KEY, "lab", {"name": "L", "description": "", "place": "", "theme": ""}, TS)
    project = _project()
    tag = kinds.create(KEY, "tag", {"lab": None, "target": project.id, "labels": ["solar"]}, TS)
    return [lab, project, tag]


@pytest.mark.parametrize("obj", _examples(), ids=lambda o: o.kind)
def test_every_single_bit_flip_is_rejected(obj: objects.SignedObject) -> None:
    assert _accepted(obj.raw, TS)
    for i in range(len(obj.raw) * 8):
        flipped = bytearray(obj.raw)
        flipped[i // 8] ^= 1 << (i % 8)
        assert not _accepted(bytes(flipped), TS), f"bit {i} flipped was accepted"


@settings(max_examples=150, deadline=None)
@given(
    title=st.text(
        st.characters(blacklist_categories=["Cc", "Cs"]), min_size=1, max_size=140
    ).filter(lambda t: t.strip()),
    ts=st.integers(0, TS),
    data=st.data(),
)
def test_random_bit_flips_are_rejected(title: str, ts: int, data) -> None:
    obj = _project(title=title, ts=ts)
    assert _accepted(obj.raw, TS)
    bit = data.draw(st.integers(0, len(obj.raw) * 8 - 1), label="bit")
    flipped = bytearray(obj.raw)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert not _accepted(bytes(flipped), TS)
