"""Fuzz every byte decoder: random bytes and mutations of valid encodings must end in the
decoder's typed rejection (or a valid result), never in any other exception."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2p.framing import WIRE_ERROR_CODES, FrameError, decode_frames, encode_end, encode_frame
from protocols import errors, exportfile, kinds, licences, objects, rpc, validity
from protocols.reconcile import V1_0, V1_1, Initiator, Responder, SortedItems
from protocols.reconcile_wire import (
    DecodeCode,
    MsgpackError,
    ReconcileError,
    decode_message,
    unpack_plain,
)
from protocols.sync_messages import (
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

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
TS = 1_700_000_000_000
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))


def _seeds() -> list[bytes]:
    lab = kinds.create(KEY, "lab", {"name": "L", "description": "d", "place": "", "theme": ""},
                       TS)  # fmt: skip
    project = kinds.create(
        KEY, "project",
        {"lab": lab.id, "title": "Solar oven", "summary": "sun", "body": "**b**",
         "stage": "idea", "needs": ["mirrors", "glass"]},
        TS,
    )  # fmt: skip
    comment = kinds.create(
        KEY, "comment", {"lab": lab.id, "target": project.id, "parent": None, "body": "hi"}, TS
    )
    tag = kinds.create(KEY, "tag", {"lab": None, "target": project.id, "labels": ["a", "b"]}, TS)
    ext = objects.sign(KEY, "x", TS, {"n": [1, -1, 2**40, None, True], "m": {"k": b"\x00"}})
    return [lab.raw, project.raw, comment.raw, tag.raw, ext.raw, *_living_seeds(lab.id, project.id)]


def _living_seeds(lab: bytes, project: bytes) -> list[bytes]:
    """Issue 23's kinds: a version 3 project, a revision and a pledge."""
    v3 = kinds.create(
        KEY, "project",
        {"lab": lab, "title": "Beer", "summary": "", "body": "", "stage": "idea", "needs": ["hops"],
         "licence": "CC-BY-SA-4.0 OR MIT", "coauthors": [bytes(range(32))],
         "derives": [{"project": project, "how": "remix", "note": "our yeast"}]},
        TS,
    )  # fmt: skip
    revision = kinds.create(
        KEY, "revision",
        {"lab": lab, "target": v3.id, "supersedes": [v3.id, project], "note": "stage",
         "set": {"stage": "design", "licence": "(MIT AND ISC) OR LicenseRef-x", "later": [1]}},
        TS,
    )  # fmt: skip
    pledge = kinds.create(
        KEY, "pledge", {"lab": lab, "target": v3.id, "type": "build", "need": "hops"}, TS
    )
    return [v3.raw, revision.raw, pledge.raw]


OBJECTS = _seeds()
EXPORT = exportfile.encode_export(OBJECTS)
RPC_FRAMES = b"".join(
    rpc.encode(m)
    for m in (
        rpc.Request(1, "projects", {"lab": "ab" * 32, "limit": 50, "cursor": None}),
        rpc.Response(1, {"items": [{"id": "00", "tags": ["x"]}], "next": None}),
        rpc.Response(2, error_code="not_found", error_message="nope"),
        rpc.Push("object", {"id": "ff", "kind": "comment", "ts": TS}),
        rpc.Request(3, "import_objects", {"objects": OBJECTS[:2]}),
    )
)


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    """`seed` with a few random edits: bit flips, byte sets, inserts, deletes, truncation,
    duplicated slices and interesting msgpack headers."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "dup", "hdr"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[pos:]
        elif op == "dup" and data:
            end = draw(st.integers(pos, len(data)))
            data[pos:pos] = data[pos:end]
        elif op == "hdr":
            data[pos:pos] = draw(st.sampled_from([
                b"\xc1", b"\xd4\x01\x00", b"\xd6\xff\x00\x00\x00\x01", b"\xcb\x7f\xf8\0\0\0\0\0\0",
                b"\xca\x00\x00\x00\x00", b"\xdd\xff\xff\xff\xff", b"\xdf\x7f\xff\xff\xff",
                b"\xc6\xff\xff\xff\xff", b"\xdb\x00\x01\x00\x00", b"\x91" * 40, b"\x81\xa0",
                b"\xd9\x02\xc3\x28", b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff", b"\xc7\x00\x05",
            ]))  # fmt: skip
    return bytes(data)


def _decode_object(raw: bytes) -> None:
    # The whole verdict (docs/protocol.md §4): typed, and a stored verdict's code is one of
    # the layers that store (opaque, hidden).
    try:
        verdict = validity.check(raw, TS)
    except errors.ObjectError as exc:
        assert exc.layer in (errors.Layer.REJECT, errors.Layer.DEFER)
    else:
        assert verdict.layer in (None, errors.Layer.OPAQUE, errors.Layer.HIDE)
    try:
        obj = objects.decode(raw)
    except errors.ObjectError:
        return
    # Decoded: then validation and verification must also end typed or cleanly.
    with contextlib.suppress(errors.ObjectError):
        kinds.validate(obj, TS)
    assert isinstance(objects.verify(obj), bool)
    assert obj.raw == raw and obj.id == objects.object_id(raw)


def _decode_export(data: bytes) -> None:
    try:
        out = exportfile.decode_export(data)
    except exportfile.ExportFileError:
        return
    assert all(isinstance(o, bytes) for o in out)
    assert exportfile.encode_export(out) == data  # framing is exact


def _feed_rpc(data: bytes, cuts: list[int]) -> None:
    dec = rpc.FrameDecoder()
    try:
        prev = 0
        for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
            for msg in dec.feed(data[prev:cut]):
                assert isinstance(msg, rpc.Request | rpc.Response | rpc.Push)
            prev = cut
    except rpc.RpcProtocolError:
        return


# ---- objects.decode ------------------------------------------------------------------------


ANY_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=70)
    | st.binary(max_size=40) | st.sampled_from([bytes(32), "CC0-1.0", "fork", "done"]),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.sampled_from(["project", "how", "note", "stage", "title", "licence", "coauthors",
                         "derives", "needs", "x"]), inner, max_size=5),
    max_leaves=12,
)  # fmt: skip


@FUZZ
@given(st.sampled_from(["project", "revision", "pledge"]), st.data())
def test_living_schemas_take_any_field_values(kind: str, data: st.DataObject) -> None:
    """Any value in any field of the kinds of issue 23 (the nested `set` and `derives`
    included) ends in a schema verdict, never another exception."""
    seed = {"project": OBJECTS[-3], "revision": OBJECTS[-2], "pledge": OBJECTS[-1]}[kind]
    body = dict(objects.decode(seed).body)
    spec = kinds.kind_spec(kind)
    for name in data.draw(st.lists(st.sampled_from(sorted(spec.fields)), min_size=1, max_size=3)):
        body[name] = data.draw(ANY_VALUE)
    with contextlib.suppress(errors.SchemaError):
        kinds.validate_body(spec, body)


@FUZZ
@given(st.text(alphabet="ANDORWITHLicenseRefDocument-:.+() 0123456789\t", max_size=64)
       | st.text(max_size=64))  # fmt: skip
def test_licence_parser_takes_any_text(text: str) -> None:
    problem = licences.licence_syntax_error(text)
    assert isinstance(problem, str)
    if not problem:
        ids, exceptions = licences.licence_ids(text)
        assert all(i not in licences.OPERATORS for i in ids + exceptions)
        assert isinstance(licences.is_known_licence(text), bool)


@FUZZ
@given(st.binary(max_size=600))
def test_object_decode_random_bytes(raw: bytes) -> None:
    _decode_object(raw)


@FUZZ
@given(st.sampled_from(OBJECTS).flatmap(mutated))
def test_object_decode_mutations(raw: bytes) -> None:
    _decode_object(raw)


@FUZZ
@given(st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    | st.text(max_size=10) | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=7) | st.dictionaries(st.text(max_size=5), inner,
                                                                   max_size=5),
    max_leaves=20,
))  # fmt: skip
def test_object_decode_arbitrary_msgpack_values(value) -> None:
    _decode_object(msgpack.packb(value, use_bin_type=True))


@pytest.mark.parametrize("depth", [10, 500, 1000, 2000, 60000])
def test_object_decode_deep_nesting(depth: int) -> None:
    obj = objects.sign(KEY, "x", TS, {"a": None})
    raw = obj.raw.replace(b"\x81\xa1a\xc0", b"\x81\xa1a" + b"\x91" * depth + b"\xc0")
    with pytest.raises(errors.ObjectError):  # from decode, or from validate (unknown kind)
        kinds.validate(objects.decode(raw), TS)


def test_object_decode_oversized_garbage() -> None:
    with pytest.raises(errors.TooLarge):
        objects.decode(b"\x00" * (objects.MAX_OBJECT_BYTES + 1))


# ---- exportfile.decode_export -------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=300) | st.binary(max_size=200).map(lambda b: exportfile.MAGIC + b))
def test_export_decode_random_bytes(data: bytes) -> None:
    _decode_export(data)


@FUZZ
@given(mutated(EXPORT))
def test_export_decode_mutations(data: bytes) -> None:
    _decode_export(data)


def test_export_decode_valid_and_edge_cases() -> None:
    assert exportfile.decode_export(EXPORT) == OBJECTS
    assert exportfile.decode_export(exportfile.MAGIC) == []
    for bad in (b"", EXPORT[:10], EXPORT[:-1], EXPORT + b"\x00",
                exportfile.MAGIC + b"\xff\xff\xff\xff"):  # fmt: skip
        with pytest.raises(exportfile.ExportFileError):
            exportfile.decode_export(bad)


# ---- rpc.FrameDecoder.feed ----------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=5))
def test_rpc_feed_random_bytes(data: bytes, cuts: list[int]) -> None:
    _feed_rpc(data, cuts)


@FUZZ
@given(mutated(RPC_FRAMES), st.lists(st.integers(0, 2000), max_size=5))
def test_rpc_feed_mutations(data: bytes, cuts: list[int]) -> None:
    _feed_rpc(data, cuts)


@FUZZ
@given(st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    | st.text(max_size=10) | st.binary(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["id", "method", "params", "error", "result", "push", "data", "code"])
        | st.integers(-(2**63), 2**63) | st.binary(max_size=3), inner, max_size=5),
    max_leaves=15,
))  # fmt: skip
def test_rpc_feed_arbitrary_msgpack_values(value) -> None:
    payload = msgpack.packb(value, use_bin_type=True)
    _feed_rpc(len(payload).to_bytes(4, "big") + payload, [])


def test_rpc_feed_valid_frames_byte_by_byte() -> None:
    dec = rpc.FrameDecoder()
    msgs = []
    for i in range(len(RPC_FRAMES)):
        msgs += dec.feed(RPC_FRAMES[i : i + 1])
    assert [type(m).__name__ for m in msgs] == ["Request", "Response", "Response", "Push",
                                                "Request"]  # fmt: skip
    assert msgs[4].params["objects"] == OBJECTS[:2]


def test_rpc_oversized_frame_is_refused_before_buffering() -> None:
    dec = rpc.FrameDecoder(max_frame=100)
    with pytest.raises(rpc.RpcProtocolError):
        dec.feed((101).to_bytes(4, "big"))



# ---- rpc.count_items: what a frame may make the decoder allocate (issue 21) -----------------

_UNDECODABLE = object()


def _recount(value: object) -> int:
    if isinstance(value, list):
        return 1 + sum(_recount(v) for v in value)
    if isinstance(value, dict):
        return 1 + sum(_recount(k) + _recount(v) for k, v in value.items())
    return 1


def _check_count(data: bytes) -> None:
    """count_items never refuses what msgpack decodes, and counts at least the decoded values
    (duplicate map keys collapse when decoded); what it refuses msgpack cannot decode."""
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception:
        value = _UNDECODABLE
    try:
        n = rpc.count_items(data, limit=len(data) + 1)
    except rpc.RpcProtocolError:
        assert value is _UNDECODABLE
        return
    if value is not _UNDECODABLE:
        assert n >= _recount(value)


@FUZZ
@given(st.binary(max_size=400))
def test_rpc_count_items_random_bytes(data: bytes) -> None:
    _check_count(data)


@FUZZ
@given(mutated(RPC_FRAMES[4:]))
def test_rpc_count_items_mutations(data: bytes) -> None:
    _check_count(data)


@FUZZ
@given(st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    | st.text(max_size=300) | st.binary(max_size=300),
    lambda inner: st.lists(inner, max_size=20) | st.dictionaries(
        st.text(max_size=5) | st.integers(-(2**63), 2**63), inner, max_size=20),
    max_leaves=60,
))  # fmt: skip
def test_rpc_count_items_is_exact_on_packed_values(value) -> None:
    payload = msgpack.packb(value, use_bin_type=True)
    assert rpc.count_items(payload, limit=len(payload)) == _recount(value)
    with pytest.raises(rpc.RpcProtocolError):
        rpc.count_items(payload, limit=_recount(value) - 1)


def test_rpc_frame_of_empty_arrays_is_refused_before_decoding() -> None:
    """One 16 MiB frame of empty msgpack arrays took a node to 1.2 GB RSS (issue 21)."""
    import tracemalloc

    n = rpc.MAX_RPC_FRAME - 5
    payload = b"\xdd" + n.to_bytes(4, "big") + b"\x90" * n
    frame = len(payload).to_bytes(4, "big") + payload
    dec = rpc.FrameDecoder()
    tracemalloc.start()
    try:
        with pytest.raises(rpc.RpcProtocolError, match="more than"):
            dec.feed(frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The frame is buffered once and copied once (2 x 16 MiB); nothing is decoded.
    assert peak < 3 * rpc.MAX_RPC_FRAME


@pytest.mark.parametrize("header", [
    b"\xdd\xff\xff\xff\xff",  # array32 claiming 4 G elements
    b"\xdf\x7f\xff\xff\xff",  # map32 claiming 2 G entries
    b"\xdd\x00\x10\x00\x00" * 64,  # nested arrays each claiming 1 M elements
])  # fmt: skip
def test_rpc_lying_container_headers_are_refused(header: bytes) -> None:
    for size in (64, rpc.MAX_RPC_ITEMS + 64):  # below and above the counting threshold
        payload = header + b"\xc0" * (size - len(header))
        with pytest.raises(rpc.RpcProtocolError):
            rpc.FrameDecoder().feed(len(payload).to_bytes(4, "big") + payload)


def test_rpc_largest_legitimate_frames_pass() -> None:
    """An 8 MiB export page and a page of views decode whole (the limit is far above them)."""
    objects_page = [bytes([i % 256]) * 110 for i in range(76_000)]
    views = [{"id": "ab" * 32, "kind": "project", "tags": ["a", "b"], "n": i}
             for i in range(20_000)]  # fmt: skip
    for result in ({"objects": objects_page, "next": 7}, views):
        frame = rpc.encode(rpc.Response(1, result))
        (msg,) = rpc.FrameDecoder().feed(frame)
        assert isinstance(msg, rpc.Response) and msg.result == result

# ---- stream frames and sync/fetch/reconcile messages (docs/sync.md) ------------------------

SYNC_SEEDS = [
    SyncOpen(bytes(32), 5, 10).encode(),
    SyncAccept(Accept.REFUSED).encode(),
    FetchRequest((b"\x02" * 32, b"\x03" * 32)).encode(),
    *encode_fetch_batches(OBJECTS),
]
SYNC_DECODERS = (decode_open, decode_accept, decode_request, decode_fetch_batch)
RECONCILE_SEED = Initiator(SortedItems([(TS + i, bytes([i + 1]) * 32) for i in range(70)])).start()
FRAMES = b"".join(encode_frame(s) for s in SYNC_SEEDS) + encode_end()


def _decode_sync(data: bytes) -> None:
    for decode in SYNC_DECODERS:
        try:
            decode(data)
        except SyncMessageError as exc:
            assert exc.code in set(SyncErrorCode)  # a stable code, always
    try:
        decode_message(data)
    except ReconcileError as exc:
        assert exc.code in set(DecodeCode)
    try:
        value = unpack_plain(data)
    except MsgpackError:
        return
    assert type(value) in (int, bytes, list)


def _decode_frames(data: bytes) -> None:
    try:
        frames = decode_frames(data)
    except FrameError as exc:
        assert exc.code in WIRE_ERROR_CODES
        return
    assert data.startswith(b"".join(encode_frame(f) for f in frames) + encode_end())


@FUZZ
@given(st.binary(max_size=400))
def test_sync_decoders_random_bytes(data: bytes) -> None:
    _decode_sync(data)


@FUZZ
@given(st.sampled_from([*SYNC_SEEDS, RECONCILE_SEED]).flatmap(mutated))
def test_sync_decoders_mutations(data: bytes) -> None:
    _decode_sync(data)


@FUZZ
@given(st.binary(max_size=64) | mutated(FRAMES))
def test_decode_frames_random_and_mutated(data: bytes) -> None:
    _decode_frames(data)


# ---- reconciliation under /percolab/sync/1.1.0 (byte-filled messages) ----------------------


def _v1_1_session_messages() -> list[bytes]:
    """Every message of a 1.1.0 session with large fills (thousands of ranges, DIFF extras,
    HAVEs): seeds far beyond what a 1.0.0 message may hold."""
    keys = [(TS + 7 * i, bytes([i % 251, i // 251 % 251]) * 16) for i in range(20_000)]
    a = [k for i, k in enumerate(keys) if i % 37]
    b = [k for i, k in enumerate(keys) if i % 41]
    init, resp = Initiator(SortedItems(a), limits=V1_1), Responder(SortedItems(b), limits=V1_1)
    out = [init.start()]
    while True:
        reply = (resp if len(out) % 2 else init).receive(out[-1])
        if reply is None:
            return out
        out.append(reply)


V1_1_SEEDS = _v1_1_session_messages()


def _decode_reconcile(data: bytes) -> None:
    for limits in (V1_0, V1_1):
        try:
            msg = decode_message(data, limits)
        except ReconcileError as exc:
            assert exc.code in set(DecodeCode)
            continue
        assert len(msg.ranges) <= limits.max_ranges


@FUZZ
@given(st.binary(max_size=400))
def test_reconcile_decoders_random_bytes(data: bytes) -> None:
    _decode_reconcile(data)


@FUZZ
@given(st.sampled_from(V1_1_SEEDS).flatmap(mutated))
def test_reconcile_decoders_mutated_1_1_messages(data: bytes) -> None:
    _decode_reconcile(data)


@FUZZ
@given(st.integers(0, len(V1_1_SEEDS) - 1).flatmap(
    lambda i: st.tuples(st.just(i), mutated(V1_1_SEEDS[i]))))  # fmt: skip
def test_reconcile_sessions_take_mutated_1_1_messages(case: tuple[int, bytes]) -> None:
    """A 1.1.0 session fed a mutated message at any point ends in a ReconcileError (a
    violation) or goes on; nothing else escapes (decoder and session rules together)."""
    index, data = case
    keys = [(TS + 7 * i, bytes([i % 251, i // 251 % 251]) * 16) for i in range(20_000)]
    side: Initiator | Responder
    if index % 2:
        side = Initiator(SortedItems([k for i, k in enumerate(keys) if i % 37]), limits=V1_1)
        side.start()
    else:
        side = Responder(SortedItems([k for i, k in enumerate(keys) if i % 41]), limits=V1_1)
    side._next_index = index  # the message arrives where it was sent
    with contextlib.suppress(ReconcileError):
        side.receive(data)
