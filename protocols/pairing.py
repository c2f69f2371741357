"""Device pairing, sans-I/O: messages and the two state machines (docs/pairing.md).

    A (approver, holds the member's key)          B (joiner, the new device)
    HELLO     [1, 1, tag, commit=H(pA)]      ->
                                             <-   SPAKE_B   [1, 2, pB]
    REVEAL_A  [1, 3, pA, macA]               ->   (B checks H(pA), macA; shows the SAS)
                                             <-   CONFIRM_B [1, 4, macB]   (A shows the SAS)
                                             <-   DEVICE    [1, 5, sealed(pk, name, sig)]
    RESULT    [1, 6, sealed(certificate)]    ->                            (after both humans)
    ABORT     [1, 7, code]  either way, at any point: the end of the pairing

A commits to pA before seeing pB, so a man in the middle who knows the code cannot grind its
own elements until both screens show the same SAS. Machines take bytes and return events;
every decoder accepts any bytes and raises only `PairingError`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import nacl.bindings as sodium
import nacl.exceptions

from protocols.identity import device_message, verify_detached
from protocols.pairing_code import PairingCode, new_code
from protocols.pairing_messages import (
    DEVICE_KEY_BYTES,
    MAX_ATTEMPTS,
    MAX_CERTIFICATE_BYTES,
    MAX_DEVICE_NAME_BYTES,
    PEER_ABORT_REASON,
    SIGNATURE_BYTES,
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
    commitment,
    decode,
    device_signed_bytes,
    encode,
    open_sealed,
    pack,
    seal,
)
from protocols.pairing_messages import (
    PAIR_PROTOCOL_ID as PAIR_PROTOCOL_ID,
)
from protocols.spake2 import Keys, Role, Spake2, Spake2Error

# --- events ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    data: bytes


@dataclass(frozen=True)
class ShowSas:
    sas: str  # show it and ask the human whether the other screen shows the same


@dataclass(frozen=True)
class CertifyRequest:
    device_pk: bytes  # approver: both humans confirmed; make the certificate
    device_name: str
    consent: bytes = b""  # the device's `device_sig` (docs/identity.md), with an identity


@dataclass(frozen=True)
class Certified:
    certificate: bytes  # joiner: the end, success


@dataclass(frozen=True)
class Approved:
    device_pk: bytes  # approver: the end, success (the certificate was sent)
    device_name: str


@dataclass(frozen=True)
class Failed:
    reason: Reason
    detail: str = ""


Event = Send | ShowSas | CertifyRequest | Certified | Approved | Failed


class _Machine:
    def __init__(self) -> None:
        self.state = "start"
        self.result: Certified | Approved | Failed | None = None
        self._keys: Keys | None = None

    @property
    def finished(self) -> bool:
        return self.result is not None

    def _end(self, result: Certified | Approved | Failed, *before: Event) -> list[Event]:
        self.state, self.result = "done", result
        return [*before, result]

    def _fail(
        self, reason: Reason, detail: str = "", abort: AbortCode | None = None
    ) -> list[Event]:
        sends = [Send(encode(Abort(abort)))] if abort is not None else []
        return self._end(Failed(reason, detail), *sends)

    def fail(self, reason: Reason, detail: str = "") -> list[Event]:
        """The transport gave up (timeout, connection lost): end without a message."""
        return [] if self.finished else self._fail(reason, detail)

    def receive(self, data: bytes) -> list[Event]:
        if self.finished:
            return []
        try:
            msg = decode(data)
            if isinstance(msg, Abort):
                code = AbortCode(msg.code) if msg.code in AbortCode._value2member_map_ else None
                reason = PEER_ABORT_REASON[code] if code is not None else Reason.PEER_PROTOCOL
                return self._end(Failed(reason, f"abort {msg.code} from the peer"))
            return self._on(msg)
        except (PairingError, Spake2Error) as exc:
            return self._fail(Reason.PROTOCOL, str(exc), AbortCode.PROTOCOL)

    def _on(self, msg: Message) -> list[Event]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _unexpected(self, msg: Message) -> PairingError:
        return PairingError(f"{type(msg).__name__} is not expected in state {self.state}")


class Approver(_Machine):
    """The existing device (A): it knows the code the human typed and makes the certificate.

    With ``identity`` (member id, root public key) it sends them to B, sealed, with the SAS
    (MEMBER) and requires B's consent signature (`device_sig` of a `device` certificate) in
    DEVICE, verified here."""

    def __init__(
        self, code: PairingCode, my_peer_id: str, peer_id: str,
        randbytes: Callable[[int], bytes] = os.urandom,
        identity: tuple[bytes, bytes] | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        if identity is not None and any(len(k) != DEVICE_KEY_BYTES for k in identity):
            raise ValueError("an identity is a 32-byte member id and root key")
        self._identity = identity
        self._tag = code.tag
        self._spake = Spake2.start(
            Role.A, code.password, my_peer_id.encode(), peer_id.encode(), randbytes
        )
        self._human: bool | None = None
        self._device: CertifyRequest | None = None

    def start(self) -> list[Event]:
        self.state = "wait_spake"
        return [Send(encode(Hello(self._tag, commitment(self._spake.message))))]

    def _on(self, msg: Message) -> list[Event]:
        if self.state == "wait_spake" and isinstance(msg, SpakeB):
            self._keys = self._spake.finish(msg.element)
            self.state = "wait_confirm"
            return [Send(encode(RevealA(self._spake.message, self._keys.mac(Role.A))))]
        if self.state == "wait_confirm" and isinstance(msg, ConfirmB):
            assert self._keys is not None
            if not self._keys.check_mac(Role.B, msg.mac):
                return self._fail(Reason.WRONG_CODE, "", AbortCode.WRONG_CODE)
            self.state = "sas"
            events: list[Event] = [ShowSas(self._keys.sas())]
            if self._identity is not None:  # B consents to this member and root in DEVICE
                member = seal(self._keys, MsgType.MEMBER, pack(list(self._identity)))
                events.insert(0, Send(member))
            return events
        if self.state == "sas" and self._device is None and isinstance(msg, Sealed):
            if msg.kind is not MsgType.DEVICE:
                raise self._unexpected(msg)
            self._device = self._open_device(msg)
            return self._maybe_certify()
        raise self._unexpected(msg)

    def _open_device(self, msg: Sealed) -> CertifyRequest:
        assert self._keys is not None
        fields = open_sealed(self._keys, msg)
        if len(fields) != (3 if self._identity is None else 4):
            raise PairingError("DEVICE holds a key, a name, a signature (and the consent)")
        pk, name, sig = fields[:3]
        _check_device(pk, name)
        if len(sig) != SIGNATURE_BYTES:
            raise PairingError("the device signature is 64 bytes")
        try:
            sodium.crypto_sign_open(sig + device_signed_bytes(self._keys), pk)
        except (nacl.exceptions.CryptoError, ValueError, TypeError):
            raise PairingError("the device signature does not verify") from None
        if self._identity is None:
            return CertifyRequest(pk, name.decode("utf-8"))
        member, root = self._identity
        if not verify_detached(pk, device_message(member, pk, root), fields[3]):
            raise PairingError("the device's consent signature does not verify")
        return CertifyRequest(pk, name.decode("utf-8"), fields[3])

    def sas_decision(self, same: bool, *, timed_out: bool = False) -> list[Event]:
        """The human compared the SAS (``same``), or did not answer in time."""
        if self.state != "sas" or self._human is not None:
            return []
        if timed_out:
            return self._fail(Reason.TIMEOUT, "no answer about the numbers", AbortCode.TIMEOUT)
        if not same:
            return self._fail(Reason.SAS_REJECTED, "", AbortCode.SAS_REJECTED)
        self._human = True
        return self._maybe_certify()

    def _maybe_certify(self) -> list[Event]:
        if self._human and self._device is not None:
            self.state = "certifying"
            return [self._device]
        return []

    def certificate(self, certificate: bytes | None) -> list[Event]:
        """The certificate for the CertifyRequest (None: it could not be made)."""
        if self.state != "certifying" or self._device is None or self._keys is None:
            return []
        if type(certificate) is not bytes or not 0 < len(certificate) <= MAX_CERTIFICATE_BYTES:
            return self._fail(Reason.CERTIFY_FAILED, "", AbortCode.REFUSED)
        sealed = seal(self._keys, MsgType.RESULT, pack([certificate]))
        device = self._device
        return self._end(Approved(device.device_pk, device.device_name), Send(sealed))


def _check_device(pk: bytes, name: bytes) -> None:
    if len(pk) != DEVICE_KEY_BYTES:
        raise PairingError("a device key is 32 bytes")
    if not 0 < len(name) <= MAX_DEVICE_NAME_BYTES:
        raise PairingError(f"a device name has 1..{MAX_DEVICE_NAME_BYTES} bytes")
    try:
        text = name.decode("utf-8")
    except UnicodeDecodeError:
        raise PairingError("a device name is UTF-8") from None
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text):
        raise PairingError("a device name holds no control characters")


class Joiner(_Machine):
    """The new device (B): it shows the code and holds the device key (never sent: only its
    public half and a signature by it). With ``member_required`` it sends DEVICE only once
    A's MEMBER came, with its consent to speak for that member under that root."""

    def __init__(
        self, code: PairingCode, my_peer_id: str, peer_id: str, device_pk: bytes,
        device_name: str, device_sign: Callable[[bytes], bytes],
        randbytes: Callable[[int], bytes] = os.urandom, *, member_required: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self._member_required = member_required
        self._member: tuple[bytes, bytes] | None = None
        self._same = False
        _check_device(device_pk, device_name.encode("utf-8"))
        self._code = code
        self._ids = (peer_id.encode(), my_peer_id.encode())  # (id A, id B)
        self._device = (device_pk, device_name.encode("utf-8"))
        self._sign = device_sign
        self._randbytes = randbytes
        self._commit = b""
        self._spake: Spake2 | None = None
        self.state = "wait_hello"

    def _on(self, msg: Message) -> list[Event]:
        if self.state == "wait_hello" and isinstance(msg, Hello):
            if msg.tag != self._code.tag:
                return self._fail(Reason.NOT_HERE, "", AbortCode.NOT_HERE)
            self._commit = msg.commit
            self._spake = Spake2.start(Role.B, self._code.password, *self._ids, self._randbytes)
            self.state = "wait_reveal"
            return [Send(encode(SpakeB(self._spake.message)))]
        if self.state == "wait_reveal" and isinstance(msg, RevealA):
            assert self._spake is not None
            if commitment(msg.element) != self._commit:
                raise PairingError("pA does not match the commitment of HELLO")
            self._keys = self._spake.finish(msg.element)
            if not self._keys.check_mac(Role.A, msg.mac):
                return self._fail(Reason.WRONG_CODE, "", AbortCode.WRONG_CODE)
            self.state = "sas"
            return [Send(encode(ConfirmB(self._keys.mac(Role.B)))), ShowSas(self._keys.sas())]
        if (self.state in ("sas", "wait_result") and isinstance(msg, Sealed)
                and msg.kind is MsgType.MEMBER and self._member is None):  # fmt: skip
            assert self._keys is not None
            fields = open_sealed(self._keys, msg)
            if len(fields) != 2 or any(len(f) != DEVICE_KEY_BYTES for f in fields):
                raise PairingError("MEMBER holds a member id and a root key")
            self._member = (fields[0], fields[1])
            return self._send_device() if self.state == "sas" and self._same else []
        if self.state == "wait_result" and isinstance(msg, Sealed):
            if msg.kind is not MsgType.RESULT:
                raise self._unexpected(msg)
            assert self._keys is not None
            fields = open_sealed(self._keys, msg)
            if len(fields) != 1 or not 0 < len(fields[0]) <= MAX_CERTIFICATE_BYTES:
                raise PairingError("RESULT holds one certificate")
            return self._end(Certified(fields[0]))
        raise self._unexpected(msg)

    def sas_decision(self, same: bool, *, timed_out: bool = False) -> list[Event]:
        """The human compared the SAS; if the same, the device key goes to A (sealed)."""
        if self.state != "sas" or self._keys is None or self._same:
            return []
        if timed_out:
            return self._fail(Reason.TIMEOUT, "no answer about the numbers", AbortCode.TIMEOUT)
        if not same:
            return self._fail(Reason.SAS_REJECTED, "", AbortCode.SAS_REJECTED)
        self._same = True
        if self._member_required and self._member is None:
            return []  # DEVICE goes when MEMBER comes
        return self._send_device()

    def _send_device(self) -> list[Event]:
        assert self._keys is not None
        pk, name = self._device
        fields = [pk, name, bytes(self._sign(device_signed_bytes(self._keys)))]
        if self._member is not None:
            member, root = self._member
            fields.append(bytes(self._sign(device_message(member, pk, root))))
        self.state = "wait_result"
        return [Send(seal(self._keys, MsgType.DEVICE, pack(fields)))]


class JoinerSession:
    """B's pairing offer across streams: the code shown, wrong codes counted (the code is
    burnt after ``max_attempts``), one pairing at a time, used once."""

    def __init__(
        self, peer_id: str, device_pk: bytes, device_name: str,
        device_sign: Callable[[bytes], bytes], *, code: PairingCode | None = None,
        max_attempts: int = MAX_ATTEMPTS, randbytes: Callable[[int], bytes] = os.urandom,
        member_required: bool = False,
    ) -> None:  # fmt: skip
        _check_device(device_pk, device_name.encode("utf-8"))
        self.member_required = member_required
        self.peer_id, self.device_pk, self.device_name = peer_id, device_pk, device_name
        self._sign, self._randbytes, self.max_attempts = device_sign, randbytes, max_attempts
        self.code = code or new_code(randbytes)
        self.failures, self.busy, self.used = 0, False, False

    @property
    def burnt(self) -> bool:
        return self.failures >= self.max_attempts

    def renew(self) -> PairingCode:
        """A new code to show (after it was burnt); the counts start again."""
        self.code, self.failures, self.used = new_code(self._randbytes), 0, False
        return self.code

    def open(self, remote_peer_id: str, first: bytes) -> tuple[Joiner | None, list[Event]]:
        """Answer a stream's first message: a Joiner that took it (the session is then busy
        until ``close``), or None and the refusal's events."""
        try:
            msg = decode(first)
        except PairingError as exc:
            return None, [
                Send(encode(Abort(AbortCode.PROTOCOL))),
                Failed(Reason.PROTOCOL, str(exc)),
            ]
        if not isinstance(msg, Hello):
            return None, [Send(encode(Abort(AbortCode.PROTOCOL))), Failed(Reason.PROTOCOL)]
        refusal = (
            (AbortCode.NOT_HERE, Reason.NOT_HERE) if msg.tag != self.code.tag or self.used
            else (AbortCode.CODE_BURNT, Reason.CODE_BURNT) if self.burnt
            else (AbortCode.BUSY, Reason.BUSY) if self.busy
            else None
        )  # fmt: skip
        if refusal is not None:
            return None, [Send(encode(Abort(refusal[0]))), Failed(refusal[1])]
        joiner = Joiner(
            self.code, self.peer_id, remote_peer_id, self.device_pk, self.device_name,
            self._sign, self._randbytes, member_required=self.member_required,
        )  # fmt: skip
        self.busy = True
        return joiner, joiner.receive(first)

    def close(self, joiner: Joiner) -> None:
        """A pairing that ``open`` started has ended (however it ended)."""
        self.busy = False
        if isinstance(joiner.result, Certified):
            self.used = True
        elif isinstance(joiner.result, Failed) and joiner.result.reason is Reason.WRONG_CODE:
            self.failures += 1
