"""Sync/fetch stream messages: round trips, limits, and fuzzed decoders (any bytes end in
SyncMessageError or a valid message)."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.limits import MAX_OBJECT_BYTES
from protocols.reconcile_store import INFINITY, MAX_TS, MIN_BOUND
from protocols.sync_messages import (
    MAX_FETCH_FRAME_BYTES,
    MAX_FETCH_IDS,
    Accept,
    FetchRequest,
    SyncAccept,
    SyncErrorCode,
    SyncMessageError,
    SyncOpen,
    decode_accept,
    decode_fetch_batch,
    decode_open,
    decode_request,
    encode_fetch_batches,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
DECODERS = (decode_open, decode_accept, decode_request, decode_fetch_batch)
SEEDS = [
    SyncOpen(bytes(32)).encode(),
    SyncOpen(b"\x01" * 32, 5, 10).encode(),
    SyncAccept(Accept.BUSY).encode(),
    FetchRequest((b"\x02" * 32, b"\x03" * 32)).encode(),
    *encode_fetch_batches([b"a" * 100, b"b" * 10]),
]


def test_round_trips() -> None:
    assert decode_open(SyncOpen(b"\x01" * 32, 5, 10).encode()) == SyncOpen(b"\x01" * 32, 5, 10)
    assert decode_open(SyncOpen(bytes(32)).encode()).upper_ts == MAX_TS
    for status in Accept:
        assert decode_accept(SyncAccept(status).encode()).status == status
    ids = tuple(i.to_bytes(32, "big") for i in range(MAX_FETCH_IDS))
    assert decode_request(FetchRequest(ids).encode()).ids == ids


def test_limits() -> None:
    with pytest.raises(SyncMessageError):
        SyncOpen(b"short").encode()
    with pytest.raises(SyncMessageError):
        decode_open(msgpack.packb([1, bytes(32), 10, 10]))  # empty window
    with pytest.raises(SyncMessageError):
        decode_open(msgpack.packb([2, bytes(32), 0, 10]))  # version
    with pytest.raises(SyncMessageError):
        FetchRequest(tuple(i.to_bytes(32, "big") for i in range(MAX_FETCH_IDS + 1))).encode()
    with pytest.raises(SyncMessageError):
        decode_request(msgpack.packb([1, [bytes(32), bytes(32)]]))  # duplicates
    with pytest.raises(SyncMessageError):
        decode_request(msgpack.packb([1, []]))
    with pytest.raises(SyncMessageError):
        decode_fetch_batch(msgpack.packb([]))
    with pytest.raises(SyncMessageError):
        decode_fetch_batch(msgpack.packb([b"x" * (MAX_OBJECT_BYTES + 1)]))


def test_window_bounds_and_codes() -> None:
    assert SyncOpen(bytes(32), 5, 10).bounds == ((5, b""), (10, b""))
    assert SyncOpen(bytes(32)).bounds == (MIN_BOUND, INFINITY)  # the default: all of time
    # One id too many is named as such (the byte limit leaves room for it).
    ids = [i.to_bytes(32, "big") for i in range(MAX_FETCH_IDS + 1)]
    with pytest.raises(SyncMessageError) as info:
        decode_request(msgpack.packb([1, ids]))
    assert info.value.code == SyncErrorCode.TOO_MANY_IDS
    with pytest.raises(SyncMessageError) as info:
        decode_open(msgpack.packb([1, bytes(32), 10, 10]))
    assert info.value.code == SyncErrorCode.BAD_WINDOW


def test_batches_fit_frames() -> None:
    raws = [bytes([i % 256]) * MAX_OBJECT_BYTES for i in range(200)]
    frames = encode_fetch_batches(raws)
    assert len(frames) > 1
    assert all(len(f) <= MAX_FETCH_FRAME_BYTES for f in frames)
    assert [r for f in frames for r in decode_fetch_batch(f)] == raws


def _check(data: bytes) -> None:
    for decode in DECODERS:
        with contextlib.suppress(SyncMessageError):
            decode(data)


@FUZZ
@given(st.binary(max_size=512))
def test_fuzz_random_bytes(data: bytes) -> None:
    _check(data)


@FUZZ
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 4096), st.integers(0, 255))))
def test_fuzz_mutations(seed: bytes, edits: list[tuple[int, int]]) -> None:
    data = bytearray(seed)
    for pos, value in edits:
        if data:
            data[pos % len(data)] = value
    _check(bytes(data))
    _check(bytes(data[: len(data) // 2]))
