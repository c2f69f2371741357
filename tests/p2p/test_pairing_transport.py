"""``/percolab/pair/1.0.0`` between real P2PNode hosts on 127.0.0.1 (p2p/pairing_transport.py):
success by code and by ticket, wrong codes, refused numbers, the burnt code, one pairing at a
time, and hostile frames."""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack
import nacl.signing
import pytest
import trio

from p2p.framing import read_frame, write_end, write_frame
from p2p.host import P2PNode
from p2p.pairing_transport import (
    PairingOutcome,
    Timeouts,
    approve_pairing,
    pairing_handler,
)
from protocols.pairing import PAIR_PROTOCOL_ID, JoinerSession
from protocols.pairing_code import PairingCode, Ticket, parse_code
from protocols.pairing_messages import Abort, AbortCode, Hello, Reason, decode, encode
from tests.p2p.helpers import Recorder, link, nodes, run, wait_until

pytestmark = pytest.mark.timeout(120)
FAST = Timeouts(frame=5.0, human=5.0, pairing=30.0)
CERT = b"device certificate bytes"


class NewDevice:
    """B's side: a device key, the session it shows, what its handler saw."""

    def __init__(self, node: P2PNode, *, same: bool = True) -> None:
        self.key = nacl.signing.SigningKey.generate()
        self.session: JoinerSession | None = JoinerSession(
            node.peer_id, bytes(self.key.verify_key), "new laptop", self.sign
        )
        self.same = same
        self.gate: trio.Event | None = None  # when set: the human waits for it
        self.sas: list[str] = []
        self.certificates: list[bytes] = []
        self.outcomes: list[PairingOutcome] = []
        node.set_stream_handler(
            PAIR_PROTOCOL_ID,
            pairing_handler(
                lambda: self.session, self.confirm, self.store, self.record, timeouts=FAST
            ),
        )

    def sign(self, data: bytes) -> bytes:
        return bytes(self.key.sign(data).signature)

    @property
    def code(self) -> PairingCode:
        assert self.session is not None
        return self.session.code

    async def confirm(self, sas: str) -> bool:
        self.sas.append(sas)
        if self.gate is not None:
            await self.gate.wait()
        return self.same

    async def store(self, cert: bytes) -> None:
        self.certificates.append(cert)

    async def record(self, outcome: PairingOutcome) -> None:
        self.outcomes.append(outcome)

    async def last_outcome(self, count: int = 1) -> PairingOutcome:
        await wait_until(lambda: len(self.outcomes) >= count, 10, "B's outcome")
        return self.outcomes[count - 1]


class OldDevice:
    """A's side: the human's answer and the certificates it made."""

    def __init__(self, *, same: bool = True) -> None:
        self.same = same
        self.sas: list[str] = []
        self.made: list[tuple[bytes, str]] = []

    async def confirm(self, sas: str) -> bool:
        self.sas.append(sas)
        return self.same

    async def certify(self, device_pk: bytes, name: str, consent: bytes = b"") -> bytes:
        self.made.append((device_pk, name))
        return CERT

    async def approve(
        self, p2p: P2PNode, code: PairingCode, ticket: Ticket | None = None
    ) -> PairingOutcome:
        return await approve_pairing(p2p, ticket, code, self.certify, self.confirm, timeouts=FAST)


def with_nodes(n: int, body: Callable[[list[P2PNode]], Awaitable[None]]) -> None:
    async def main() -> None:
        async with nodes([Recorder() for _ in range(n)]) as ps:
            await body(ps)

    run(main, timeout=90)


def wrong(code: PairingCode) -> PairingCode:
    """Same tag, another secret."""
    last = "1" if code.data[-1] != "1" else "2"
    return PairingCode(code.data[:-1] + last)


def test_pairing_by_code_finds_b_among_connected_peers() -> None:
    async def body(ps: list[P2PNode]) -> None:
        a, b, c = ps
        new, old = NewDevice(b), OldDevice()
        NewDevice(c).session = None  # C serves the protocol but shows no code
        await link(a, c)
        await link(a, b)
        typed = parse_code(new.code.display().lower())
        outcome = await old.approve(a, typed)
        assert outcome.ok and outcome.peer_id == b.peer_id, outcome
        assert outcome.device_pk == bytes(new.key.verify_key)
        assert outcome.device_name == "new laptop"
        assert old.made == [(bytes(new.key.verify_key), "new laptop")]
        b_outcome = await new.last_outcome()
        assert b_outcome.ok and b_outcome.certificate == CERT and b_outcome.peer_id == a.peer_id
        assert new.certificates == [CERT]
        assert old.sas == new.sas and len(new.sas[0]) == 7

    with_nodes(3, body)


def test_pairing_by_ticket_dials_b() -> None:
    async def body(ps: list[P2PNode]) -> None:
        a, b = ps
        new, old = NewDevice(b), OldDevice()
        ticket = Ticket.create(new.code, b.peer_id, b.listen_addrs())
        outcome = await old.approve(a, ticket.code, ticket)
        assert outcome.ok, outcome
        assert new.certificates == [CERT]

    with_nodes(2, body)


def test_wrong_code_certifies_nothing() -> None:
    async def body(ps: list[P2PNode]) -> None:
        a, b = ps
        new, old = NewDevice(b), OldDevice()
        await link(a, b)
        outcome = await old.approve(a, wrong(new.code))
        assert not outcome.ok and outcome.reason is Reason.WRONG_CODE
        b_outcome = await new.last_outcome()
        assert b_outcome.reason is Reason.WRONG_CODE
        assert old.made == [] and new.certificates == [] and old.sas == new.sas == []

    with_nodes(2, body)


@pytest.mark.parametrize("refuser", ["A", "B"])
def test_numbers_refused_certify_nothing(refuser: str) -> None:
    async def body(ps: list[P2PNode]) -> None:
        a, b = ps
        new, old = NewDevice(b, same=refuser != "B"), OldDevice(same=refuser != "A")
        await link(a, b)
        outcome = await old.approve(a, new.code)
        b_outcome = await new.last_outcome()
        assert not outcome.ok and not b_outcome.ok
        here, there = (outcome, b_outcome) if refuser == "A" else (b_outcome, outcome)
        assert here.reason is Reason.SAS_REJECTED
        assert there.reason is Reason.PEER_SAS_REJECTED, (here, there)
        assert old.made == [] and new.certificates == []

    with_nodes(2, body)


def test_third_wrong_code_burns_it() -> None:
    async def body(ps: list[P2PNode]) -> None:
        a, b = ps
        new, old = NewDevice(b), OldDevice()
        await link(a, b)
        for i in range(3):
            outcome = await old.approve(a, wrong(new.code))
            assert outcome.reason is Reason.WRONG_CODE
            assert (await new.last_outcome(i + 1)).reason is Reason.WRONG_CODE
        assert new.session is not None and new.session.burnt
        outcome = await old.approve(a, new.code)  # the right code, too late
        assert outcome.reason is Reason.CODE_BURNT
        assert "new code" in str(outcome.reason)
        new.session.renew()
        outcome = await old.approve(a, new.code)
        assert outcome.ok and new.certificates == [CERT]

    with_nodes(2, body)


def test_one_pairing_at_a_time() -> None:
    async def body(ps: list[P2PNode]) -> None:
        a, b, c = ps
        new, old, other = NewDevice(b), OldDevice(), OldDevice()
        new.gate = trio.Event()
        await link(a, b)
        await link(c, b)
        results: list[PairingOutcome] = []
        async with trio.open_nursery() as nursery:

            async def first() -> None:
                results.append(await old.approve(a, new.code))

            nursery.start_soon(first)
            await wait_until(lambda: bool(new.sas), 10, "B showing the numbers")
            second = await other.approve(c, new.code)
            assert second.reason is Reason.BUSY
            # A's own node refuses a second approval while one runs.
            local = await old.approve(a, new.code)
            assert local.reason is Reason.BUSY and "already pairing" in local.detail
            new.gate.set()
        assert results[0].ok and new.certificates == [CERT]

    with_nodes(3, body)


async def _hostile(p2p: P2PNode, peer: str, frames: list[bytes], raw: bytes = b"") -> list[Any]:
    """Send frames (or raw bytes) on a pairing stream; what came back, until END or error."""
    stream = await p2p.new_stream(peer, [PAIR_PROTOCOL_ID])
    if raw:
        await stream.write(raw)
    for frame in frames:
        await write_frame(stream, frame)
    back: list[Any] = []
    with trio.fail_after(10):
        try:
            while (data := await read_frame(stream)) is not None:
                back.append(decode(data))
            await write_end(stream)
        except Exception as exc:
            back.append(exc)
    return back


def test_hostile_frames_fail_cleanly_and_b_keeps_serving() -> None:
    async def body(ps: list[P2PNode]) -> None:
        a, b = ps
        new, old = NewDevice(b), OldDevice()
        await link(a, b)
        hello = encode(Hello(new.code.tag, bytes(32)))
        cases = [
            ([b"\xc1garbage"], b""),
            ([msgpack.packb([1, 2, b"x" * 32])], b""),  # SPAKE_B where HELLO is due
            ([hello, b"\x93\x01\x03\xc4\x00"], b""),  # HELLO, then garbage
            ([hello, encode(Abort(99))], b""),  # an unknown abort code
            ([], struct.pack(">I", 0x7FFFFFFF)),  # an oversized frame header
            ([], b"\x00\x00"),  # half a header, then END of stream
        ]
        for frames, raw in cases:
            await _hostile(a, b.peer_id, frames, raw)
        await wait_until(lambda: len(new.outcomes) == len(cases), 15, "B's outcomes")
        assert all(not o.ok for o in new.outcomes)
        assert {o.reason for o in new.outcomes} <= {
            Reason.PROTOCOL, Reason.PEER_PROTOCOL, Reason.CONNECTION, Reason.TIMEOUT,
        }  # fmt: skip
        assert new.session is not None
        assert new.session.failures == 0 and not new.session.busy
        assert await _hostile(a, b.peer_id, [hello[:-1] + b"\x01"])  # still answering
        outcome = await old.approve(a, new.code)
        assert outcome.ok and new.certificates == [CERT]

    with_nodes(2, body)


def test_no_device_shows_the_code() -> None:
    async def body(ps: list[P2PNode]) -> None:
        a, b = ps
        new, old = NewDevice(b), OldDevice()
        await link(a, b)
        other_tag = PairingCode(("1" if new.code.data[0] != "1" else "2") + new.code.data[1:])
        outcome = await old.approve(a, other_tag)
        assert outcome.reason is Reason.NOT_HERE and "1 connected peers" in outcome.detail
        assert (await new.last_outcome()).reason is Reason.NOT_HERE
        assert new.session is not None and new.session.failures == 0
        stream = await a.new_stream(b.peer_id, [PAIR_PROTOCOL_ID])
        await write_frame(stream, encode(Hello(other_tag.tag, bytes(32))))
        assert decode(await read_frame(stream) or b"") == Abort(AbortCode.NOT_HERE)

    with_nodes(2, body)
