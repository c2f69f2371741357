"""The sync/fetch conformance corpus (docs/conformance/sync.json): every case through our
decoders, the file equal to its generator, every error code of the code covered."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import trio

from p2p.framing import WIRE_ERROR_CODES, FrameError, decode_frames, read_frame
from protocols.reconcile_limits import SYNC_PROTOCOL_IDS, limits_for
from protocols.reconcile_wire import DecodeCode, ReconcileError, decode_message
from protocols.sync_messages import (
    SyncErrorCode,
    SyncMessageError,
    decode_accept,
    decode_fetch_batch,
    decode_open,
    decode_request,
)
from tests.conformance import sync_cases
from tests.conformance.sync_cases import bytes_json, compress, expand, message_json

DOC = Path(__file__).resolve().parents[2] / "docs" / "sync.md"
CORPUS: dict[str, Any] = json.loads(sync_cases.PATH.read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = CORPUS["cases"]
SYNC_MESSAGES = ("sync_open", "sync_accept", "fetch_request", "fetch_batch")


def _decode(message: str, data: bytes, protocol: str | None = None) -> Any:
    if message == "frame":
        return {"frames": [bytes_json(p) for p in decode_frames(data)]}
    if message == "sync_open":
        o = decode_open(data)
        return {"scope": o.scope.hex(), "lower_ts": o.lower_ts, "upper_ts": o.upper_ts}
    if message == "sync_accept":
        return {"status": int(decode_accept(data).status)}
    if message == "fetch_request":
        return {"ids": [i.hex() for i in decode_request(data).ids]}
    if message == "fetch_batch":
        return {"objects": [bytes_json(r) for r in decode_fetch_batch(data)]}
    assert message == "reconcile" and protocol is not None, message
    return message_json(decode_message(data, limits_for(protocol)))


def _error_class(message: str) -> type[Exception]:
    if message == "frame":
        return FrameError
    return ReconcileError if message == "reconcile" else SyncMessageError


@pytest.mark.parametrize("case", CASES, ids=[f"{c['message']}: {c['name']}" for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    """Every case, under each protocol version it names (reconciliation messages)."""
    data = expand(case)
    for protocol in case.get("protocols", [None]):
        if case["verdict"] == "ok":
            assert _decode(case["message"], data, protocol) == case["decoded"], protocol
        else:
            assert case["verdict"] == "error"
            with pytest.raises(_error_class(case["message"])) as info:
                _decode(case["message"], data, protocol)
            assert getattr(info.value, "code", None) == case["error"], (protocol, str(info.value))


class _Stream:
    """The bytes of one stream, then EOF, read in small chunks."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def read(self, n: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        out, self.data = self.data[: min(n or 7, 7919)], self.data[min(n or 7, 7919) :]
        return out

    async def write(self, data: bytes) -> None:
        raise AssertionError("read only")


def test_frame_cases_read_the_same_from_a_stream() -> None:
    """The stream reader (p2p.framing.read_frame) agrees with decode_frames on every case."""

    async def read_all(data: bytes) -> Any:
        stream, frames = _Stream(data), []
        try:
            while (frame := await read_frame(stream)) is not None:
                frames.append(bytes_json(frame))
        except FrameError as exc:
            return exc.code
        return {"frames": frames}

    for case in (c for c in CASES if c["message"] == "frame"):
        got = trio.run(read_all, expand(case))
        assert got == case.get("decoded", case.get("error")), case["name"]


def test_file_is_what_the_generator_writes() -> None:
    assert sync_cases.PATH.read_text(encoding="utf-8") == sync_cases.render(), (
        "docs/conformance/sync.json is stale: run .venv/bin/python -m tests.conformance.sync_cases"
    )


def test_every_error_code_has_a_case() -> None:
    def codes(*messages: str) -> set[str]:
        return {c["error"] for c in CASES if c["verdict"] == "error" and c["message"] in messages}

    assert codes("frame") == set(WIRE_ERROR_CODES)
    assert codes(*SYNC_MESSAGES) == {str(c) for c in SyncErrorCode}
    assert codes("reconcile") == {str(c) for c in DecodeCode}


def test_cases_are_well_formed() -> None:
    assert CORPUS["format"] == sync_cases.FORMAT
    headings = set(re.findall(r"^#+ (.+)$", DOC.read_text(encoding="utf-8"), re.M))
    names = set()
    for case in CASES:
        assert (case["message"], case["name"]) not in names, case["name"]
        names.add((case["message"], case["name"]))
        assert case["rule"].startswith("docs/sync.md §")
        assert case["rule"].removeprefix("docs/sync.md §") in headings, case["rule"]
        assert ("decoded" in case) == (case["verdict"] == "ok") != ("error" in case)
        # Reconciliation cases name the protocol versions they hold under; others do not.
        protocols = case.get("protocols")
        assert (case["message"] == "reconcile") == (protocols is not None)
        assert protocols is None or (protocols and set(protocols) <= set(SYNC_PROTOCOL_IDS))
        data = expand(case)
        if "repeats" not in case:
            assert compress(data) == (bytes.fromhex(case["hex"]), case.get("zeros", []))
        else:
            assert "zeros" not in case and len(data) > len(case["hex"]) // 2


def test_the_two_versions_differ_only_in_their_caps() -> None:
    """1.0.0-only and 1.1.0-only cases are exactly those about the per-message caps."""
    for case in CASES:
        if len(case.get("protocols", SYNC_PROTOCOL_IDS)) == 1:
            about_caps = re.search(r"(ranges|ids)\b.*(cap|byte limit|no more|fit)", case["name"])
            assert about_caps or case.get("error") in ("too_many_ranges", "too_many_ids"), case


def test_doc_states_the_constants_of_the_code() -> None:
    """docs/sync.md states each limit with its value: they must be the code's."""
    from node.sync.fetch import FETCH_DEADLINE_S
    from node.sync.service import MAX_SESSIONS_PER_PEER, MAX_SESSIONS_TOTAL, SESSION_DEADLINE_S
    from p2p.framing import END_MARKER, MAX_FRAME
    from p2p.sync_transport import FRAME_TIMEOUT_S
    from protocols import reconcile_limits as lim
    from protocols import reconcile_wire as w
    from protocols import sync_messages as m

    doc = DOC.read_text(encoding="utf-8")
    stated = [
        f"`MAX_FRAME` = 4 MiB = {MAX_FRAME:,}",
        f"`length = 0x{END_MARKER:X}`",
        f"`MAX_NESTING` ({w.MAX_NESTING})",
        f"| `MAX_RANGES_PER_MESSAGE` | {w.MAX_RANGES_PER_MESSAGE:,} | "
        f"{lim.MAX_RANGES_PER_MESSAGE_1_1:,} |",
        f"| `MAX_IDS_PER_MESSAGE` | {w.MAX_IDS_PER_MESSAGE:,} | {lim.MAX_IDS_PER_MESSAGE_1_1:,} |",
        f"| `MAX_ROUNDS` | {w.MAX_ROUNDS} | {w.MAX_ROUNDS} |",
        f"`{lim.SYNC_PROTOCOL_ID_1_1}`",
        f"`MAX_MESSAGE_BYTES` ({w.MAX_MESSAGE_BYTES:,})",
        f"MAX_CONTROL_BYTES ({m.MAX_CONTROL_BYTES})",
        f"`MAX_FETCH_IDS` ({m.MAX_FETCH_IDS})",
        f"`MAX_FETCH_REQUEST_BYTES` = {m.MAX_FETCH_REQUEST_BYTES:,}",
        f"`MAX_FETCH_FRAME_BYTES` = 4 MiB − 1 KiB = {m.MAX_FETCH_FRAME_BYTES:,}",
        f"`MAX_OBJECTS_PER_BATCH` ({m.MAX_OBJECTS_PER_BATCH})",
        f"`MAX_OBJECT_BYTES` ({m.MAX_OBJECT_BYTES:,})",
        f"`MAX_SESSIONS_PER_PEER` = {MAX_SESSIONS_PER_PEER}",
        f"`MAX_SESSIONS_TOTAL` = {MAX_SESSIONS_TOTAL}",
        f"| `FRAME_TIMEOUT_S` | {FRAME_TIMEOUT_S:g} s |",
        f"| `SESSION_DEADLINE_S` | {SESSION_DEADLINE_S:g} s |",
        f"| `FETCH_DEADLINE_S` | {FETCH_DEADLINE_S:g} s |",
    ]
    missing = [s for s in stated if s not in doc]
    assert not missing, missing
