"""The pairing state machines and messages (protocols/pairing.py, pairing_messages.py),
driven in memory: bytes in, events out."""

from __future__ import annotations

import contextlib
from typing import Any

import nacl.signing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.identity import device_message, verify_detached
from protocols.pairing import (
    Approved,
    Approver,
    Certified,
    CertifyRequest,
    Event,
    Failed,
    Joiner,
    JoinerSession,
    Send,
    ShowSas,
)
from protocols.pairing_code import PairingCode, new_code
from protocols.pairing_messages import (
    MAX_ATTEMPTS,
    MAX_CERTIFICATE_BYTES,
    MAX_MESSAGE_BYTES,
    Abort,
    AbortCode,
    ConfirmB,
    Hello,
    Message,
    MsgType,
    PairingError,
    Reason,
    RevealA,
    Sealed,
    SpakeB,
    decode,
    encode,
)

A_ID, B_ID = "12D3KooWApprover", "12D3KooWJoiner"
CERT = b"certificate: a signed object of kind device"


class Device:
    def __init__(self) -> None:
        self.key = nacl.signing.SigningKey.generate()
        self.pk = bytes(self.key.verify_key)

    def sign(self, data: bytes) -> bytes:
        return bytes(self.key.sign(data).signature)


def session(code: PairingCode | None = None) -> tuple[JoinerSession, Device]:
    dev = Device()
    return JoinerSession(B_ID, dev.pk, "lab laptop", dev.sign, code=code), dev


def sends(events: list[Event]) -> list[bytes]:
    return [e.data for e in events if isinstance(e, Send)]


def first(events: list[Event], kind: type) -> Any:
    found = [e for e in events if isinstance(e, kind)]
    assert found, f"no {kind.__name__} in {events}"
    return found[0]


def handshake(
    sess: JoinerSession, typed: PairingCode
) -> tuple[Approver, Joiner | None, list[Event], list[Event]]:
    """HELLO .. CONFIRM_B: returns the machines and each side's last events."""
    approver = Approver(typed, A_ID, B_ID)
    joiner, ev_b = sess.open(A_ID, sends(approver.start())[0])
    if joiner is None:
        return approver, None, approver.receive(sends(ev_b)[0]), ev_b
    ev_a = approver.receive(sends(ev_b)[0])  # SPAKE_B -> REVEAL_A
    ev_b = joiner.receive(sends(ev_a)[0])  # REVEAL_A -> CONFIRM_B + SAS (or abort)
    ev_a = approver.receive(sends(ev_b)[0])
    return approver, joiner, ev_a, ev_b


def test_success() -> None:
    sess, dev = session()
    approver, joiner, ev_a, ev_b = handshake(sess, sess.code)
    assert joiner is not None
    assert first(ev_a, ShowSas).sas == first(ev_b, ShowSas).sas
    device_msg = sends(joiner.sas_decision(True))[0]
    assert approver.receive(device_msg) == []  # A's human has not answered yet
    request = first(approver.sas_decision(True), CertifyRequest)
    assert request == CertifyRequest(dev.pk, "lab laptop")
    ev_a = approver.certificate(CERT)
    assert first(ev_a, Approved) == Approved(dev.pk, "lab laptop")
    assert joiner.receive(sends(ev_a)[0]) == [Certified(CERT)]
    sess.close(joiner)
    assert sess.used and not sess.busy
    # The code served once: the next HELLO is not for this device any more.
    again, ev = sess.open(A_ID, sends(Approver(sess.code, A_ID, B_ID).start())[0])
    assert again is None and first(ev, Failed).reason is Reason.NOT_HERE


def test_approver_confirming_first_also_works() -> None:
    sess, dev = session()
    approver, joiner, _, _ = handshake(sess, sess.code)
    assert joiner is not None
    assert approver.sas_decision(True) == []
    request = first(approver.receive(sends(joiner.sas_decision(True))[0]), CertifyRequest)
    assert request.device_pk == dev.pk


def test_wrong_code_fails_on_both_sides_and_counts() -> None:
    sess, _ = session(PairingCode("94FXY08WD"))
    _approver, joiner, ev_a, ev_b = handshake(sess, PairingCode("94FXY08WE"))
    assert joiner is not None
    assert first(ev_b, Failed).reason is Reason.WRONG_CODE
    assert first(ev_a, Failed).reason is Reason.WRONG_CODE
    assert not any(isinstance(e, ShowSas) for e in ev_a + ev_b)
    sess.close(joiner)
    assert sess.failures == 1 and not sess.busy


def test_third_wrong_code_burns_the_code() -> None:
    sess, _ = session(PairingCode("94FXY08WD"))
    for i in range(MAX_ATTEMPTS):
        assert not sess.burnt
        _, joiner, ev_a, _ = handshake(sess, PairingCode(f"94FXY08W{i}"))
        assert joiner is not None and first(ev_a, Failed).reason is Reason.WRONG_CODE
        sess.close(joiner)
    assert sess.burnt
    _, joiner, ev_a, _ = handshake(sess, sess.code)  # even the right code now
    assert joiner is None and first(ev_a, Failed).reason is Reason.CODE_BURNT
    fresh = sess.renew()
    _, joiner, ev_a, _ = handshake(sess, fresh)
    assert joiner is not None and first(ev_a, ShowSas)


@pytest.mark.parametrize("who", ["approver", "joiner"])
def test_sas_refused_certifies_nothing(who: str) -> None:
    sess, _ = session()
    approver, joiner, _, _ = handshake(sess, sess.code)
    assert joiner is not None
    if who == "joiner":
        ev_b = joiner.sas_decision(False)
        assert first(ev_b, Failed).reason is Reason.SAS_REJECTED
        ev_a = approver.receive(sends(ev_b)[0])
        assert first(ev_a, Failed).reason is Reason.PEER_SAS_REJECTED
        assert approver.sas_decision(True) == []
    else:
        device_msg = sends(joiner.sas_decision(True))[0]
        ev_a = approver.sas_decision(False)
        assert first(ev_a, Failed).reason is Reason.SAS_REJECTED
        assert approver.receive(device_msg) == []  # finished: ignored
        ev_b = joiner.receive(sends(ev_a)[0])
        assert first(ev_b, Failed).reason is Reason.PEER_SAS_REJECTED
    assert approver.certificate(CERT) == []
    sess.close(joiner)
    assert sess.failures == 0 and not sess.used


def test_human_timeout() -> None:
    sess, _ = session()
    approver, joiner, _, _ = handshake(sess, sess.code)
    assert joiner is not None
    ev_b = joiner.sas_decision(False, timed_out=True)
    assert first(ev_b, Failed).reason is Reason.TIMEOUT
    assert first(approver.receive(sends(ev_b)[0]), Failed).reason is Reason.TIMEOUT


def test_certificate_that_cannot_be_made() -> None:
    sess, _ = session()
    approver, joiner, _, _ = handshake(sess, sess.code)
    assert joiner is not None
    approver.receive(sends(joiner.sas_decision(True))[0])
    approver.sas_decision(True)
    ev_a = approver.certificate(None)
    assert first(ev_a, Failed).reason is Reason.CERTIFY_FAILED
    assert first(joiner.receive(sends(ev_a)[0]), Failed).reason is Reason.REFUSED


def test_other_tag_is_not_here_and_not_counted() -> None:
    sess, _ = session(PairingCode("94FXY08WD"))
    _, joiner, ev_a, _ = handshake(sess, PairingCode("95FXY08WD"))
    assert joiner is None and first(ev_a, Failed).reason is Reason.NOT_HERE
    assert sess.failures == 0


def test_one_pairing_at_a_time() -> None:
    sess, _ = session()
    joiner, _ = sess.open(A_ID, sends(Approver(sess.code, A_ID, B_ID).start())[0])
    assert joiner is not None and sess.busy
    other, ev = sess.open("12D3KooWOther", sends(Approver(sess.code, "x", B_ID).start())[0])
    assert other is None and first(ev, Failed).reason is Reason.BUSY
    sess.close(joiner)
    assert not sess.busy


def test_relayed_reveal_that_breaks_the_commitment_is_refused() -> None:
    """A man in the middle swapping pA for its own after HELLO: B refuses it."""
    sess, _ = session()
    approver = Approver(sess.code, A_ID, B_ID)
    joiner, ev_b = sess.open(A_ID, sends(approver.start())[0])
    assert joiner is not None
    other = Approver(sess.code, A_ID, B_ID)
    other.start()
    reveal = sends(other.receive(sends(ev_b)[0]))[0]
    ev_b = joiner.receive(reveal)
    assert first(ev_b, Failed).reason is Reason.PROTOCOL
    assert decode(sends(ev_b)[0]) == Abort(AbortCode.PROTOCOL)


def test_man_in_the_middle_who_knows_the_code_gets_different_numbers() -> None:
    """With the code leaked, a relay can run one exchange with each side; both confirm, but
    the screens show different numbers (equal once in 10^6), so the humans refuse."""
    code = new_code()
    sess, _ = session(code)
    approver = Approver(code, A_ID, B_ID)
    mitm_b = Joiner(code, B_ID, A_ID, Device().pk, "fake", Device().sign)  # faces A
    mitm_a = Approver(code, A_ID, B_ID)  # faces B
    joiner, ev_b = sess.open(A_ID, sends(mitm_a.start())[0])
    assert joiner is not None
    ev_m = mitm_b.receive(sends(approver.start())[0])
    ev_a = approver.receive(sends(ev_m)[0])
    ev_m = mitm_b.receive(sends(ev_a)[0])
    sas_a = first(approver.receive(sends(ev_m)[0]), ShowSas).sas
    ev_ma = mitm_a.receive(sends(ev_b)[0])
    sas_b = first(joiner.receive(sends(ev_ma)[0]), ShowSas).sas
    assert sas_a != sas_b


def test_tampered_sealed_device_and_bad_signature() -> None:
    sess, _ = session()
    approver, joiner, _, _ = handshake(sess, sess.code)
    assert joiner is not None
    sealed = decode(sends(joiner.sas_decision(True))[0])
    assert isinstance(sealed, Sealed)
    box = bytearray(sealed.box)
    box[3] ^= 1
    ev_a = approver.receive(encode(Sealed(MsgType.DEVICE, bytes(box))))
    assert first(ev_a, Failed).reason is Reason.PROTOCOL

    dev = Device()
    sess2 = JoinerSession(B_ID, dev.pk, "x", Device().sign)  # signs with another key
    approver, joiner, _, _ = handshake(sess2, sess2.code)
    assert joiner is not None
    failed = first(approver.receive(sends(joiner.sas_decision(True))[0]), Failed)
    assert failed.reason is Reason.PROTOCOL and "signature" in failed.detail


def test_message_round_trip_and_fixed_bytes() -> None:
    msgs: list[Message] = [
        Hello(300, bytes(32)),
        SpakeB(b"\x01" * 32),
        RevealA(b"\x02" * 32, b"\x03" * 32),
        ConfirmB(b"\x04" * 32),
        Sealed(MsgType.DEVICE, b"\x05" * 40),
        Sealed(MsgType.RESULT, b"\x06" * 40),
        Abort(AbortCode.BUSY),
        Abort(200),
    ]
    for msg in msgs:
        assert decode(encode(msg)) == msg
    assert encode(Hello(300, bytes(32))) == bytes.fromhex("940101cd012cc420") + bytes(32)
    assert encode(Abort(AbortCode.WRONG_CODE)).hex() == "93010703"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",
        bytes.fromhex("940201cd012cc420") + bytes(32),  # version 2
        bytes.fromhex("940109cd012cc420") + bytes(32),  # type 9
        bytes.fromhex("930101cd012c"),  # HELLO with 3 fields
        bytes.fromhex("940101cd0400c420") + bytes(32),  # tag 1024
        bytes.fromhex("940101cd012cc41f") + bytes(31),  # commit of 31 bytes
        bytes.fromhex("930107cd0100"),  # abort code 256
        bytes.fromhex("930105c40f") + bytes(15),  # sealed shorter than its tag
        bytes.fromhex("930105c5012c") + bytes(300),  # DEVICE over its limit
        bytes.fromhex("930102a3616263"),  # a str where bin is due
        b"\x93\x01\x02" + b"\xc6" + (2**31).to_bytes(4, "big"),  # a bin claiming 2 GiB
        b"\x00" * (MAX_MESSAGE_BYTES + 1),
    ],
)
def test_malformed_messages(data: bytes) -> None:
    with pytest.raises(PairingError):
        decode(data)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_fuzz_decode(data: bytes) -> None:
    with contextlib.suppress(PairingError):
        decode(data)


def _valid_prefix_of(kind: int) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=80).map(lambda tail: bytes([0x93, 0x01, kind]) + tail)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 3), st.one_of(st.binary(max_size=120), *map(_valid_prefix_of, range(1, 8))))
def test_fuzz_machines_in_every_state(steps: int, data: bytes) -> None:
    """Any bytes, at any point of either machine: events or a clean Failed, no exception."""
    sess, _ = session()
    approver = Approver(sess.code, A_ID, B_ID)
    pending = sends(approver.start())
    joiner, ev_b = sess.open(A_ID, pending[0])
    assert joiner is not None
    machines: list[Approver | Joiner] = [approver, joiner]
    to_a = sends(ev_b)
    for _ in range(steps):
        if approver.finished or not to_a:
            break
        to_b = sends(approver.receive(to_a.pop(0)))
        if to_b and not joiner.finished:
            to_a += sends(joiner.receive(to_b[0]))
    for machine in machines:
        events = machine.receive(data)
        assert all(
            isinstance(e, Send | ShowSas | CertifyRequest | Failed | Approved | Certified)
            for e in events
        )
        if any(isinstance(e, Failed) for e in events):
            assert machine.finished


@pytest.mark.parametrize("size", [MAX_CERTIFICATE_BYTES, MAX_CERTIFICATE_BYTES + 1, 0])
def test_certificate_size_limits(size: int) -> None:
    """The longest name and the largest certificate fit their messages' limits."""
    dev = Device()
    sess = JoinerSession(B_ID, dev.pk, "é" * 32, dev.sign)  # 64 bytes of UTF-8
    approver, joiner, _, _ = handshake(sess, sess.code)
    assert joiner is not None
    approver.receive(sends(joiner.sas_decision(True))[0])
    approver.sas_decision(True)
    ev_a = approver.certificate(b"c" * size)
    if size == MAX_CERTIFICATE_BYTES:
        assert joiner.receive(sends(ev_a)[0]) == [Certified(b"c" * size)]
    else:
        assert first(ev_a, Failed).reason is Reason.CERTIFY_FAILED


# --- MEMBER: the identity B consents to (docs/pairing.md §5) -------------------------------

MEMBER_ID, ROOT = b"\x11" * 32, b"\x22" * 32


def _member_handshake(
    human_first: bool,
) -> tuple[Approver, Joiner, Device, list[Event]]:
    dev = Device()
    sess = JoinerSession(B_ID, dev.pk, "lab laptop", dev.sign, member_required=True)
    approver = Approver(sess.code, A_ID, B_ID, identity=(MEMBER_ID, ROOT))
    joiner, ev_b = sess.open(A_ID, sends(approver.start())[0])
    assert joiner is not None
    ev_a = approver.receive(sends(ev_b)[0])
    ev_b = joiner.receive(sends(ev_a)[0])  # CONFIRM_B + SAS
    ev_a = approver.receive(sends(ev_b)[0])  # MEMBER (sealed) + SAS
    member_msg = sends(ev_a)
    assert len(member_msg) == 1
    sealed = decode(member_msg[0])
    assert isinstance(sealed, Sealed) and sealed.kind is MsgType.MEMBER
    if human_first:  # B's human answers before MEMBER arrives: DEVICE waits for it
        assert joiner.sas_decision(True) == []
        device = sends(joiner.receive(member_msg[0]))
    else:
        assert joiner.receive(member_msg[0]) == []
        device = sends(joiner.sas_decision(True))
    assert len(device) == 1
    return approver, joiner, dev, approver.receive(device[0])


@pytest.mark.parametrize("human_first", [True, False])
def test_member_identity_brings_the_device_consent(human_first: bool) -> None:
    approver, joiner, dev, _ = _member_handshake(human_first)
    request = first(approver.sas_decision(True), CertifyRequest)
    assert request.device_pk == dev.pk and len(request.consent) == 64
    assert verify_detached(dev.pk, device_message(MEMBER_ID, dev.pk, ROOT), request.consent)
    assert joiner.receive(sends(approver.certificate(CERT))[0]) == [Certified(CERT)]


def test_approver_with_identity_refuses_a_device_without_consent() -> None:
    sess, _dev = session()  # a joiner that does not wait for MEMBER
    approver = Approver(sess.code, A_ID, B_ID, identity=(MEMBER_ID, ROOT))
    joiner, ev_b = sess.open(A_ID, sends(approver.start())[0])
    assert joiner is not None
    ev_b = joiner.receive(sends(approver.receive(sends(ev_b)[0]))[0])
    approver.receive(sends(ev_b)[0])  # its MEMBER never reaches the joiner
    events = approver.receive(sends(joiner.sas_decision(True))[0])  # DEVICE of 3 fields
    assert first(events, Failed).reason is Reason.PROTOCOL
