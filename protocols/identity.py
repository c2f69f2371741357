"""Identity kinds: a member is a long-lived root key; devices sign (docs/identity.md).

Five kinds, all in the public scope (no `lab`). This module declares them (`KINDS`) and
protocols/kinds.py registers them with the core kinds, so they are always known (kinds.py
imports this module, never the reverse: no import circle).

- `device`: a root of `member` certifies the key `device`; the device consents by signing
  DEVICE_DOMAIN + member + device + author (`device_sig`).
- `revoke`: a root withdraws a device from `since` on, and disowns listed objects by id.
- `recovery`: a root names 1..7 recovery contacts (member ids) and a threshold.
- `rotation`: the new root replaces `old`; voluntary (the old root signs ROTATION_DOMAIN +
  member + old + new as `old_sig`) or by recovery (endorsed by the contacts, old_sig nil).
- `endorsement`: a recovery contact backs a recovery rotation.

Every rule here reads the object's bytes alone (validity is context-free): a bad consent
signature makes the object hidden, never rejected. Who speaks for whom is the view's job
(protocols/attribution.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import nacl.bindings
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import errors
from protocols.fields import Choice, Field, Integer, ListOf, ObjectRef, Text
from protocols.limits import (
    KEY_BYTES,
    MAX_DISOWN,
    MAX_NAME_CHARS,
    MAX_REASON_CHARS,
    MAX_RECOVERY_CONTACTS,
    MAX_TS_MS,
    SIG_BYTES,
)
from protocols.objects import SignedObject, public_key_bytes

DEVICE_DOMAIN = b"percolab/device/v1\x00"
ROTATION_DOMAIN = b"percolab/rotation/v1\x00"
VOLUNTARY = "voluntary"
RECOVERY = "recovery"
MODES = (VOLUNTARY, RECOVERY)
IDENTITY_KINDS = ("device", "revoke", "recovery", "rotation", "endorsement")


@dataclass(frozen=True)
class Bin:
    """A byte string of exactly `size` bytes (a public key, a signature), or nil if
    `nullable`."""

    size: int
    nullable: bool = False
    required: bool = True

    def check(self, name: str, value: Any) -> None:
        if value is None and self.nullable:
            return
        if type(value) is not bytes or len(value) != self.size:
            raise errors.BadFieldType(f"{name} must be {self.size} bytes")


KEY = Bin(KEY_BYTES)
# Optional on every kind: the id of the `device` certificate that lets the author (a device
# key) speak for a member. Version 2 of the core kinds added it.
CERT = ObjectRef(required=False)


@dataclass(frozen=True)
class IdentityKind:
    """What protocols/kinds.py needs to register a kind as a KindSpec."""

    name: str
    fields: Mapping[str, Field]
    refs: tuple[str, ...] = ()
    extra_check: Callable[[Mapping[str, Any]], None] | None = field(default=None)
    object_check: Callable[[SignedObject], None] | None = field(default=None)


def verify_detached(key: bytes, message: bytes, sig: bytes) -> bool:
    """Ed25519 as objects are verified (libsodium's strict rule, docs/protocol.md §1.2)."""
    try:
        nacl.bindings.crypto_sign_open(sig + message, key)
    except Exception:  # BadSignatureError, or ValueError for a malformed key
        return False
    return True


def device_message(member: bytes, device: bytes, root: bytes) -> bytes:
    return DEVICE_DOMAIN + member + device + root


def rotation_message(member: bytes, old: bytes, new: bytes) -> bytes:
    return ROTATION_DOMAIN + member + old + new


# ---- checks (context-free) --------------------------------------------------------------


def _check_device(obj: SignedObject) -> None:
    b = obj.body
    if b["device"] == obj.author:
        raise errors.BadValue("device.device must differ from the certifying root (author)")
    if not verify_detached(b["device"], device_message(b["member"], b["device"], obj.author),
                           b["device_sig"]):  # fmt: skip
        raise errors.BadValue("device.device_sig is not the device key's consent signature")


def _check_recovery(body: Mapping[str, Any]) -> None:
    if body["member"] in body["contacts"]:
        raise errors.BadValue("recovery.contacts may not name the member itself")
    if body["threshold"] > len(body["contacts"]):
        raise errors.BadValue("recovery.threshold exceeds the number of contacts")


def _check_rotation(obj: SignedObject) -> None:
    b = obj.body
    if b["old"] == obj.author:
        raise errors.BadValue("rotation.old must differ from the new root (author)")
    if b["mode"] == RECOVERY:
        if b["old_sig"] is not None:
            raise errors.BadValue("rotation.old_sig must be nil for a recovery rotation")
        return
    if b["old_sig"] is None:
        raise errors.BadValue("a voluntary rotation needs old_sig")
    if not verify_detached(b["old"], rotation_message(b["member"], b["old"], obj.author),
                           b["old_sig"]):  # fmt: skip
        raise errors.BadValue("rotation.old_sig is not the old root's signature")


DEVICE = IdentityKind(
    "device",
    {
        "member": KEY,
        "device": KEY,
        "name": Text(MAX_NAME_CHARS, allow_empty=False),
        "device_sig": Bin(SIG_BYTES),
    },
    object_check=_check_device,
)
REVOKE = IdentityKind(
    "revoke",
    {
        "member": KEY,
        "device": KEY,
        "since": Integer(0, MAX_TS_MS),
        "disown": ListOf(ObjectRef(), MAX_DISOWN, unique=True),
        "reason": Text(MAX_REASON_CHARS, multiline=True),
    },
)
RECOVERY_SET = IdentityKind(
    "recovery",
    {
        "member": KEY,
        "contacts": ListOf(KEY, MAX_RECOVERY_CONTACTS, min_items=1, unique=True),
        "threshold": Integer(1, MAX_RECOVERY_CONTACTS),
    },
    extra_check=_check_recovery,
)
ROTATION = IdentityKind(
    "rotation",
    {
        "member": KEY,
        "old": KEY,
        "mode": Choice(MODES),
        "old_sig": Bin(SIG_BYTES, nullable=True),
    },
    object_check=_check_rotation,
)
ENDORSEMENT = IdentityKind(
    "endorsement", {"member": KEY, "rotation": ObjectRef(), "cert": CERT}, refs=("rotation", "cert")
)
KINDS = (DEVICE, REVOKE, RECOVERY_SET, ROTATION, ENDORSEMENT)


# ---- builders (what a client signs) ------------------------------------------------------


def device_body(
    root_key: Ed25519PrivateKey, member: bytes, device_key: Ed25519PrivateKey, name: str
) -> dict[str, Any]:
    """The body of a `device` certificate that `root_key` will sign, with the device's
    consent signature (the device key must be at hand)."""
    device = public_key_bytes(device_key)
    sig = device_key.sign(device_message(member, device, public_key_bytes(root_key)))
    return {"member": member, "device": device, "name": name, "device_sig": sig}


def revoke_body(
    member: bytes, device: bytes, since: int, disown: Iterable[bytes] = (), reason: str = ""
) -> dict[str, Any]:
    return {"member": member, "device": device, "since": since,
            "disown": sorted(set(disown)), "reason": reason}  # fmt: skip


def recovery_body(member: bytes, contacts: Iterable[bytes], threshold: int) -> dict[str, Any]:
    return {"member": member, "contacts": sorted(set(contacts)), "threshold": threshold}


def voluntary_rotation_body(
    member: bytes, old_key: Ed25519PrivateKey, new: bytes
) -> dict[str, Any]:
    """A rotation to the key `new` (its author), signed off by the old root."""
    old = public_key_bytes(old_key)
    return {"member": member, "old": old, "mode": VOLUNTARY,
            "old_sig": old_key.sign(rotation_message(member, old, new))}  # fmt: skip


def recovery_rotation_body(member: bytes, old: bytes) -> dict[str, Any]:
    """A rotation away from the lost root `old`, to be endorsed by the recovery contacts."""
    return {"member": member, "old": old, "mode": RECOVERY, "old_sig": None}


def endorsement_body(member: bytes, rotation: bytes, cert: bytes | None = None) -> dict[str, Any]:
    return with_cert({"member": member, "rotation": rotation}, cert)


def with_cert(body: Mapping[str, Any], cert: bytes | None) -> dict[str, Any]:
    """`body` signed by a device: it names the device's certificate."""
    return dict(body) if cert is None else {**body, "cert": cert}


def cert_of(obj: SignedObject) -> bytes | None:
    """The certificate an object names, for any kind (known or not): its body's `cert` when
    that is a 32-byte id, else None."""
    cert = obj.body.get("cert")
    return cert if type(cert) is bytes and len(cert) == KEY_BYTES else None
