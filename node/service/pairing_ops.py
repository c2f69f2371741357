"""The key-ring side of pairing (docs/pairing.md, "Using it"), as blocking `Service` methods
that node/pairing.py calls from worker threads (the protocol itself runs on the trio loop).

- The new device (B): `pairing_device` makes (or reuses) a *device-only* key ring: seed
  "device", no root, protected as `init` would protect a new key; `pairing_store` checks and
  ingests the certificate A sent, then records the member id and certificate id in the ring.
  From then on B signs as that member's device; what only a root signs (certify, revoke,
  recovery, rotation) answers `no_root`.
- The existing device (A): `pairing_identity` (member id, root public key: what B consents
  to) and `pairing_certify`, the `device` certificate signed by the root, ingested and
  published.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.ingest.pipeline import now_ms
from node.keys import member as member_keys
from node.keys.keyfile import DEVICE, KeyRing, Secret
from node.keys.member import KeyState
from node.service.errors import ServiceError
from node.service.identity_ops import (
    DEVICE_CERT,
    DEVICE_NAME,
    MEMBER,
    RING_LOCK,
    IdentityMethods,
    default_device_name,
    has_device,
    ring_member,
)
from protocols import errors, kinds
from protocols.identity import device_message, verify_detached
from protocols.limits import MAX_NAME_CHARS
from protocols.objects import decode
from protocols.pairing_messages import MAX_DEVICE_NAME_BYTES


def device_name_param(params: Mapping[str, Any]) -> str:
    """`name`: one line, 1..64 bytes of UTF-8 (a pairing carries at most that)."""
    name = params.get("name")
    if name is None or name == "":
        name = default_device_name()
    if not isinstance(name, str):
        raise ServiceError("bad_request", "parameter 'name' must be a string")
    name = " ".join(name.split())[:MAX_NAME_CHARS]
    while len(name.encode("utf-8")) > MAX_DEVICE_NAME_BYTES:
        name = name[:-1]
    if not name:
        raise ServiceError("bad_request", "a device name needs at least one visible character")
    return name


class PairingMethods(IdentityMethods):
    """Mixed into `Service` (node/service/api.py)."""

    def _new_key_secret(self, params: Mapping[str, Any]) -> Secret:  # Service's own
        raise NotImplementedError

    # ---- B: the new device ----------------------------------------------------------

    def pairing_device(
        self, params: Mapping[str, Any]
    ) -> tuple[bytes, str, Callable[[bytes], bytes]]:
        """This machine's device key for a pairing: (public key, name, signer). Creates a
        device-only ring when there is no key ring here (`passphrase` / `unencrypted` as for
        `init`); refuses when the ring already speaks for a member."""
        name = device_name_param(params)
        with RING_LOCK:
            if member_keys.key_state(self.key_dir) is KeyState.NONE:
                secret = self._new_key_secret(params)
                seed = Ed25519PrivateKey.generate().private_bytes_raw()
                ring = KeyRing({DEVICE: seed}, {DEVICE_NAME: name})
                self.ring = member_keys.create(self.key_dir, secret, ring)
                self.public = ring.public_key(DEVICE)
            else:
                if self.ring is None:
                    self.ring = member_keys.unlock(self.key_dir)
                current = self.ring
                if current is None or current.has_root or has_device(current):
                    raise ServiceError(
                        "has_identity", "this machine already speaks for a member: add other "
                        "devices from here with `percolab device add CODE`")  # fmt: skip
                ring = current
                if ring.extra.get(DEVICE_NAME) != name:
                    ring = KeyRing(ring.seeds, {**ring.extra, DEVICE_NAME: name})
                    self._save(ring)
            device = ring.private_key(DEVICE)

        def sign(data: bytes) -> bytes:
            return device.sign(data)

        return ring.public_key(DEVICE), name, sign

    def pairing_store(self, raw: bytes) -> dict[str, Any]:
        """The certificate A sent: it must certify this machine's device key; stored, then
        the ring speaks for its member. Returns {member, cert, name}."""
        with RING_LOCK:
            ring = self.ring
            if ring is None or DEVICE not in ring.seeds or ring.has_root:
                raise ServiceError("not_pairing", "this machine has no device key waiting "
                                   "for a certificate")  # fmt: skip
            try:
                cert = decode(raw)
            except errors.ObjectError as exc:
                raise ServiceError("invalid_object", f"the certificate: {exc}") from exc
            body = cert.body
            if cert.kind != "device" or body.get("device") != ring.public_key(DEVICE):
                raise ServiceError("invalid_object", "the certificate is not for this device")
            self._publish(cert)  # ingest checks it; passed on by gossip too
            member: bytes = body["member"]
            self._save(KeyRing(ring.seeds, {**ring.extra, DEVICE_CERT: cert.id, MEMBER: member,
                                            DEVICE_NAME: body["name"]}))  # fmt: skip
        return {"member": member.hex(), "cert": cert.id_hex, "name": body["name"]}

    # ---- A: the device holding the root ----------------------------------------------

    def pairing_identity(self) -> tuple[bytes, bytes]:
        """(member id, root public key) a new device consents to; `no_root` on a ring
        without the root."""
        with RING_LOCK:
            ring = self._require_root("certify a device")
            return ring_member(ring), ring.public_key()

    def pairing_certify(self, device: bytes, name: str, consent: bytes) -> bytes:
        """A `device` certificate for `device` (its consent checked), signed by the root,
        stored and published; its bytes."""
        with RING_LOCK:
            ring = self._require_root("certify a device")
            member, root = ring_member(ring), ring.public_key()
            if not verify_detached(device, device_message(member, device, root), consent):
                raise ServiceError("invalid_object", "the device's consent does not verify")
            body = {"member": member, "device": device, "name": name, "device_sig": consent}
            cert = kinds.create(ring.private_key(), "device", body, now_ms())
            return self._publish(cert).raw
