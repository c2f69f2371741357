"""Messages of ``/percolab/pair/1.0.0`` (sans-I/O; docs/pairing.md, "Messages").

Every message is one msgpack array ``[version=1, type, ...]`` of ints and bins only, in one
frame of p2p/framing.py. ``decode`` accepts any bytes and raises only `PairingError`; every
size is checked against a named limit. DEVICE and RESULT are sealed with ChaCha20-Poly1305
under the SPAKE2 session key (nonce = 11 zero bytes || type; associated data = CONTEXT ||
version || type || SHA-256(transcript)).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

import msgpack
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from protocols.limits import MAX_OBJECT_BYTES
from protocols.reconcile_wire import MsgpackError, unpack_plain
from protocols.spake2 import CONTEXT, ELEMENT_BYTES, MAC_BYTES, Keys

PAIR_PROTOCOL_ID = "/percolab/pair/1.0.0"
VERSION = 1
MAX_TAG = 1023
DEVICE_KEY_BYTES = 32
SIGNATURE_BYTES = 64
MAX_DEVICE_NAME_BYTES = 64
MAX_CERTIFICATE_BYTES = MAX_OBJECT_BYTES  # a certificate is one signed object
MAX_CONTROL_BYTES = 128  # HELLO, SPAKE_B, REVEAL_A, CONFIRM_B, ABORT
MAX_DEVICE_BYTES = 256  # DEVICE (sealed: 32 + 64 + 64 + framing + 16 tag)
MAX_MESSAGE_BYTES = MAX_CERTIFICATE_BYTES + 64  # RESULT, the largest message
MAX_ATTEMPTS = 3  # wrong codes before the joiner's code is burnt
DEVICE_SIG_CONTEXT = CONTEXT + b" device"
_AEAD_TAG = 16


class MsgType(IntEnum):
    HELLO = 1
    SPAKE_B = 2
    REVEAL_A = 3
    CONFIRM_B = 4
    DEVICE = 5
    RESULT = 6
    ABORT = 7
    MEMBER = 8  # A -> B, sealed: the member and root B consents to (docs/pairing.md §5)


class AbortCode(IntEnum):
    NOT_HERE = 1  # no pairing with this tag here (or its code was used)
    BUSY = 2  # another pairing runs
    WRONG_CODE = 3  # the confirmation MAC did not verify
    SAS_REJECTED = 4  # the human said the numbers differ
    CODE_BURNT = 5  # too many wrong codes
    PROTOCOL = 6  # a malformed or unexpected message
    REFUSED = 7  # the approver could not or would not certify
    TIMEOUT = 8  # the human did not answer in time


class Reason(StrEnum):
    WRONG_CODE = "wrong code"
    NOT_HERE = "no device shows this code"
    BUSY = "the other device is pairing with someone else"
    CODE_BURNT = "too many wrong codes: the new device must show a new code"
    SAS_REJECTED = "the numbers were declared different on this device"
    PEER_SAS_REJECTED = "the numbers were declared different on the other device"
    REFUSED = "the other device refused to certify this one"
    CERTIFY_FAILED = "no certificate could be made"
    PROTOCOL = "protocol violation"
    PEER_PROTOCOL = "the other device reported a protocol violation"
    TIMEOUT = "timed out"
    CONNECTION = "connection lost"


PEER_ABORT_REASON = {
    AbortCode.NOT_HERE: Reason.NOT_HERE, AbortCode.BUSY: Reason.BUSY,
    AbortCode.WRONG_CODE: Reason.WRONG_CODE, AbortCode.SAS_REJECTED: Reason.PEER_SAS_REJECTED,
    AbortCode.CODE_BURNT: Reason.CODE_BURNT, AbortCode.PROTOCOL: Reason.PEER_PROTOCOL,
    AbortCode.REFUSED: Reason.REFUSED, AbortCode.TIMEOUT: Reason.TIMEOUT,
}  # fmt: skip


class PairingError(ValueError):
    """A pairing message is malformed, too large or fails its checks."""


# --- messages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    tag: int
    commit: bytes


@dataclass(frozen=True)
class SpakeB:
    element: bytes


@dataclass(frozen=True)
class RevealA:
    element: bytes
    mac: bytes


@dataclass(frozen=True)
class ConfirmB:
    mac: bytes


@dataclass(frozen=True)
class Sealed:
    """DEVICE, RESULT or MEMBER: ChaCha20-Poly1305 ciphertext (with its tag), session key."""

    kind: MsgType
    box: bytes


@dataclass(frozen=True)
class Abort:
    code: int  # an AbortCode; unknown codes are kept (a later version may add some)


Message = Hello | SpakeB | RevealA | ConfirmB | Sealed | Abort


def pack(value: Any) -> bytes:
    out: bytes = msgpack.packb(value, use_bin_type=True)
    return out


def encode(msg: Message) -> bytes:
    match msg:
        case Hello(tag, commit):
            return pack([VERSION, MsgType.HELLO, tag, commit])
        case SpakeB(element):
            return pack([VERSION, MsgType.SPAKE_B, element])
        case RevealA(element, mac):
            return pack([VERSION, MsgType.REVEAL_A, element, mac])
        case ConfirmB(mac):
            return pack([VERSION, MsgType.CONFIRM_B, mac])
        case Sealed(kind, box):
            return pack([VERSION, int(kind), box])
        case Abort(code):
            return pack([VERSION, MsgType.ABORT, int(code)])
    raise TypeError(f"not a pairing message: {msg!r}")


def _bin(value: Any, size: int, what: str) -> bytes:
    if type(value) is not bytes or len(value) != size:
        raise PairingError(f"{what} must be {size} bytes")
    return value


_FIELDS = {MsgType.HELLO: 4, MsgType.SPAKE_B: 3, MsgType.REVEAL_A: 4, MsgType.CONFIRM_B: 3,
           MsgType.DEVICE: 3, MsgType.RESULT: 3, MsgType.ABORT: 3, MsgType.MEMBER: 3}  # fmt: skip
_LIMIT = {MsgType.DEVICE: MAX_DEVICE_BYTES, MsgType.RESULT: MAX_MESSAGE_BYTES}


def decode(data: bytes) -> Message:
    """One pairing message from a frame's bytes; PairingError for anything else."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise PairingError("a message is bytes")
    if len(data) > MAX_MESSAGE_BYTES:
        raise PairingError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        top = unpack_plain(bytes(data))
    except MsgpackError as exc:
        raise PairingError(str(exc)) from None
    if type(top) is not list or len(top) < 2 or type(top[0]) is not int or top[0] != VERSION:
        raise PairingError("not a version 1 pairing message")
    if type(top[1]) is not int or top[1] not in _FIELDS:
        raise PairingError(f"unknown message type {top[1]!r}")
    kind = MsgType(top[1])
    if len(top) != _FIELDS[kind]:
        raise PairingError(f"{kind.name} has {_FIELDS[kind]} fields")
    if len(data) > _LIMIT.get(kind, MAX_CONTROL_BYTES):
        raise PairingError(f"{kind.name} over its size limit")
    if kind is MsgType.HELLO:
        if type(top[2]) is not int or not 0 <= top[2] <= MAX_TAG:
            raise PairingError("the tag must be an int in 0..1023")
        return Hello(top[2], _bin(top[3], 32, "the commitment"))
    if kind is MsgType.SPAKE_B:
        return SpakeB(_bin(top[2], ELEMENT_BYTES, "an element"))
    if kind is MsgType.REVEAL_A:
        return RevealA(_bin(top[2], ELEMENT_BYTES, "an element"), _bin(top[3], MAC_BYTES, "a MAC"))
    if kind is MsgType.CONFIRM_B:
        return ConfirmB(_bin(top[2], MAC_BYTES, "a MAC"))
    if kind is MsgType.ABORT:
        if type(top[2]) is not int or not 0 <= top[2] <= 255:
            raise PairingError("an abort code is an int in 0..255")
        return Abort(top[2])
    if type(top[2]) is not bytes or len(top[2]) < _AEAD_TAG:
        raise PairingError("a sealed message holds a ciphertext")
    return Sealed(kind, top[2])


def commitment(element: bytes) -> bytes:
    return hashlib.sha256(CONTEXT + b" commit" + element).digest()


def seal(keys: Keys, kind: MsgType, plain: bytes) -> bytes:
    nonce = bytes(11) + bytes([kind])  # one key per session, one message per kind
    aad = CONTEXT + bytes([VERSION, kind]) + keys.transcript_hash
    return encode(Sealed(kind, ChaCha20Poly1305(keys.encryption).encrypt(nonce, plain, aad)))


def open_sealed(keys: Keys, msg: Sealed) -> list[Any]:
    nonce = bytes(11) + bytes([msg.kind])
    aad = CONTEXT + bytes([VERSION, msg.kind]) + keys.transcript_hash
    try:
        plain = ChaCha20Poly1305(keys.encryption).decrypt(nonce, msg.box, aad)
        top = unpack_plain(plain)
    except (InvalidTag, MsgpackError):
        raise PairingError(f"the sealed {msg.kind.name} does not open") from None
    if type(top) is not list or any(type(x) is not bytes for x in top):
        raise PairingError(f"the sealed {msg.kind.name} is malformed")
    return top


def device_signed_bytes(keys: Keys) -> bytes:
    """What the new device signs with its device key (proof that it holds the key)."""
    return DEVICE_SIG_CONTEXT + keys.transcript_hash
