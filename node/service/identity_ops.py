"""The member side of identities (docs/identity.md) in `Service`: the device key this machine
signs with, its certificate, and the RPC methods of `device` and `recovery` commands and of
`identity rotate` (docs/rpc.md).

The key ring (node/keys) holds seed "root" (the member's current root) and seed "device" (this
machine's device key), and in "extra": "device_cert" (its certificate's id), "device_name",
"member" (the member id, when it is not the root's own key: after a rotation) and
"retired_roots" (seeds of the roots rotated away from, to withdraw objects they signed).
Every object is signed by the device key and names its certificate (`cert`); certificates and
identity decisions (revoke, recovery, rotation) are signed by the root.
"""

from __future__ import annotations

import functools
import logging
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.identity import fingerprint
from node.ingest.pipeline import Ingest, now_ms
from node.keys import keyfile
from node.keys import member as member_keys
from node.keys.keyfile import KeyRing
from node.service.errors import ServiceError
from node.service.members import Members
from node.store import Store
from protocols import kinds
from protocols.attribution import MemberStatus
from protocols.identity import (
    RECOVERY,
    device_body,
    endorsement_body,
    recovery_body,
    recovery_rotation_body,
    revoke_body,
    voluntary_rotation_body,
    with_cert,
)
from protocols.limits import MAX_NAME_CHARS
from protocols.objects import SignedObject, public_key_bytes

log = logging.getLogger(__name__)
DEVICE = "device"
DEVICE_CERT = "device_cert"
DEVICE_NAME = "device_name"
MEMBER = "member"
RETIRED = "retired_roots"
DEFAULT_DEVICE_NAME = "this device"
NOT_PAIRED = ("this machine waits to be added to a member (`percolab device join`, then "
              "`percolab device add CODE` on a device of the member)")
# What only the root key signs, for the error on a device-only ring (docs/pairing.md).
ROOT_ONLY = {"device": "certify a device", "revoke": "revoke a device",
             "recovery": "name recovery contacts", "rotation": "rotate or recover the root key"}
# Changes to the ring (a new device, a rotation) happen one at a time: RPC calls run in
# several worker threads.
RING_LOCK = threading.RLock()


def default_device_name() -> str:
    """The hostname (one line, at most MAX_NAME_CHARS), else "this device"."""
    try:
        name = " ".join(socket.gethostname().split())[:MAX_NAME_CHARS]
    except OSError:
        name = ""
    return name or DEFAULT_DEVICE_NAME


def ring_member(ring: KeyRing) -> bytes:
    member = ring.extra.get(MEMBER)
    if isinstance(member, bytes) and len(member) == 32:
        return member
    if not ring.has_root:
        raise _fail("not_paired", NOT_PAIRED)
    return ring.public_key()


def paired(ring: KeyRing) -> bool:
    """A ring that speaks for a member: it holds a root, or a certified device (pairing)."""
    return ring.has_root or (has_device(ring) and isinstance(ring.extra.get(MEMBER), bytes))


def has_device(ring: KeyRing) -> bool:
    return DEVICE in ring.seeds and isinstance(ring.extra.get(DEVICE_CERT), bytes)


def _key_of(hex_value: Any, what: str) -> bytes:
    try:
        key = bytes.fromhex(hex_value) if isinstance(hex_value, str) else b""
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ServiceError("bad_request", f"{what} must be 64 hex characters, not {hex_value!r}")
    return key


F = TypeVar("F", bound=Callable[..., Any])


def _ring_change(fn: F) -> F:
    """A method that changes the key ring: under RING_LOCK."""

    @functools.wraps(fn)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with RING_LOCK:
            return fn(*args, **kwargs)

    return cast(F, locked)


def _fail(code: str, message: str) -> ServiceError:
    return ServiceError(code, message)


class IdentityMethods:
    """Mixed into `Service` (node/service/api.py), which provides these attributes."""

    data_dir: Path
    key_dir: Path  # where the ring is: data_dir, or a seat's (node/service/seats.py)
    store: Store
    ingest: Ingest
    members: Members
    public: bytes | None
    ring: KeyRing | None
    on_created: list[Callable[[SignedObject], None]]

    # ---- the ring and signing -------------------------------------------------------

    def _require_ring(self) -> KeyRing:
        """The unlocked ring, given a device key (and its certificate) the first time it is
        used without one (a ring from before devices, or restored from a recovery phrase)."""
        with RING_LOCK:
            if self.ring is None and self.public is not None:
                self.ring = member_keys.unlock(self.key_dir)
            if self.ring is None:
                raise _fail("no_identity", "no identity here yet: run `percolab init --name NAME`")
            if not paired(self.ring):
                raise _fail("not_paired", NOT_PAIRED)
            if not has_device(self.ring):
                member = ring_member(self.ring)
                if MEMBER not in self.ring.extra:  # restored from a phrase after a rotation
                    member = self.members.member_of_root(member) or member
                self._new_device(self.ring, default_device_name(), member)
            return self.ring

    def _publish(self, obj: SignedObject) -> SignedObject:
        result = self.ingest.ingest([obj.raw])
        if result.rejected:
            rej = result.rejected[0]
            raise ServiceError("invalid_object", rej.reason, rej.code)
        for hook in self.on_created:
            hook(obj)
        return obj

    def _sign(self, kind: str, body: Mapping[str, Any], *, root: bool = False,
              key_name: str | None = None) -> SignedObject:  # fmt: skip
        """Sign with the device key (naming its certificate) or, `root`, the root."""
        ring = self._require_ring()
        if root or not has_device(ring):
            self._require_root(ROOT_ONLY.get(kind, f"sign a {kind}"))
            return self._publish(kinds.create(ring.private_key(), kind, body, now_ms()))
        cert = ring.extra[DEVICE_CERT]
        device = ring.private_key(DEVICE)
        return self._publish(kinds.create(device, kind, with_cert(body, cert), now_ms()))

    def _require_root(self, what: str) -> KeyRing:
        """The ring, which must hold the member's root key (not a device-only ring)."""
        ring = self._require_ring()
        if not ring.has_root:
            raise _fail("no_root", f"only the member's root key can {what}; do it on a device "
                        "that holds it")  # fmt: skip
        return ring

    def _sign_as(self, author: bytes, kind: str, body: Mapping[str, Any]) -> SignedObject:
        """Sign with whichever key of the ring is `author` (a retraction must be by the
        withdrawn object's own key): the device, the root or a retired root."""
        ring = self._require_ring()
        if has_device(ring) and ring.public_key(DEVICE) == author:
            return self._sign(kind, body)
        root_seed = ring.seeds.get("root")
        seeds = [*([root_seed] if root_seed else []), *ring.extra.get(RETIRED, [])]
        for seed in seeds:
            key = Ed25519PrivateKey.from_private_bytes(seed)
            if public_key_bytes(key) == author:
                return self._publish(kinds.create(key, kind, body, now_ms()))
        raise _fail("not_author", "only an object's author can withdraw it")

    def _device_ring(self, ring: KeyRing, name: str, member: bytes) -> tuple[KeyRing, SignedObject]:
        """`ring` with a new device key, and its certificate (signed by the root, unsent)."""
        device = Ed25519PrivateKey.generate()
        root = ring.private_key()
        cert = kinds.create(root, "device", device_body(root, member, device, name), now_ms())
        extra = {**ring.extra, DEVICE_CERT: cert.id, DEVICE_NAME: name}
        if member != ring.public_key():
            extra[MEMBER] = member
        return KeyRing({**ring.seeds, DEVICE: device.private_bytes_raw()}, extra), cert

    def _new_device(self, ring: KeyRing, name: str, member: bytes) -> None:
        new, cert = self._device_ring(ring, name, member)
        if not member_keys.save_ring(self.key_dir, new):
            log.warning("the key ring cannot be saved yet (a legacy member.key): signing with "
                        "the root key until it is migrated")  # fmt: skip
            return
        self.ring = new
        log.info("device key %s certified (%s)", fingerprint(public_key_bytes(
            new.private_key(DEVICE))), cert.id.hex()[:12])  # fmt: skip
        self._publish(cert)

    def _save(self, ring: KeyRing) -> None:
        if not member_keys.save_ring(self.key_dir, ring):
            raise _fail("identity", "the key ring cannot be changed before a legacy member.key "
                        "is migrated (give a passphrase)")  # fmt: skip
        self.ring = ring

    # ---- who am I -------------------------------------------------------------------

    def identity(self) -> dict[str, Any] | None:
        """Member id, device key, device name and certificate id; without the passphrase
        (the ring's header and the directory) when the ring is not unlocked here."""
        if self.public is None:
            return None
        ring = self.ring
        if ring is not None and not paired(ring):
            return None  # a device-only ring waiting for its pairing
        if ring is not None:
            device = ring.public_key(DEVICE) if has_device(ring) else None
            cert, name = ring.extra.get(DEVICE_CERT), ring.extra.get(DEVICE_NAME)
            member = ring_member(ring)
        else:
            path = member_keys.ring_path(self.key_dir)
            publics = keyfile.public_keys(path) if path.is_file() else {}
            device = publics.get(DEVICE)
            certs = self.members.certs_of(device) if device is not None else []
            latest = max(certs, key=lambda c: (c.ts, c.cert)) if certs else None
            cert, name = (latest.cert, latest.name) if latest else (None, None)
            if latest is None and keyfile.ROOT not in publics and publics:
                return None  # a device-only ring waiting for its pairing
            member = latest.member if latest else (self.members.member_of_root(self.public)
                                                   or self.public)  # fmt: skip
        return {"member": member.hex(), "device": device.hex() if device else None,
                "device_name": name if isinstance(name, str) else None,
                "cert": cert.hex() if isinstance(cert, bytes) else None}  # fmt: skip

    def _my_member(self) -> bytes:
        who = self.identity()
        if who is None:
            raise _fail("no_identity", "no identity here yet: run `percolab init --name NAME`")
        return bytes.fromhex(who["member"])

    # ---- devices --------------------------------------------------------------------

    def m_device_list(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        member = self._my_member()
        mine = (self.identity() or {}).get("device")
        return [{"name": d.name, "key": d.key.hex(), "fingerprint": fingerprint(d.key),
                 "cert": d.cert.hex(), "certified": d.ts, "valid": d.valid,
                 "revoked_since": d.revoked_since, "this": d.key.hex() == mine}
                for d in self.members.devices(member)]  # fmt: skip

    @_ring_change
    def m_device_revoke(self, params: Mapping[str, Any]) -> dict[str, Any]:
        ref = params.get("device")
        if not isinstance(ref, str) or not ref:
            raise _fail("bad_request", "parameter 'device' (a name or key) is required")
        devices = self.m_device_list({})
        found = [d for d in devices if d["name"] == ref] or [
            d for d in devices if len(ref) >= 8 and d["key"].startswith(ref.lower())]
        keys = {d["key"] for d in found}
        if not keys:
            raise _fail("not_found", f"no device of yours is named or numbered {ref!r}")
        if len(keys) > 1:
            raise _fail("ambiguous", f"{ref!r} names {len(keys)} devices: give its key")
        target = found[0]
        force = params.get("force") is True
        if target["this"] and not force:
            raise _fail("own_device", "that is this machine's own device key: revoking it "
                        "stops what it signs from counting as yours; use --force to do it "
                        "(a new device key is made at the next signature)")  # fmt: skip
        since = params.get("since")
        since = now_ms() if since is None else since
        if not isinstance(since, int) or isinstance(since, bool) or since < 0:
            raise _fail("bad_request", "parameter 'since' must be a time in ms")
        disown = [_key_of(x, "a disowned object id") for x in params.get("disown") or []]
        reason = params.get("reason") or ""
        if not isinstance(reason, str):
            raise _fail("bad_request", "parameter 'reason' must be a string")
        member = self._my_member()
        body = revoke_body(member, bytes.fromhex(target["key"]), since, disown, reason)
        obj = self._sign("revoke", body, root=True)
        ring = self.ring
        if target["this"] and ring is not None:  # the next signature makes a new device
            seeds = {k: v for k, v in ring.seeds.items() if k != DEVICE}
            extra = {k: v for k, v in ring.extra.items() if k not in (DEVICE_CERT, DEVICE_NAME)}
            self._save(KeyRing(seeds, extra))
        return {"id": obj.id_hex, "device": target["key"], "name": target["name"],
                "since": since}  # fmt: skip

    # ---- recovery -------------------------------------------------------------------

    def m_recovery_set(self, params: Mapping[str, Any]) -> dict[str, Any]:
        contacts = [_key_of(c, "a contact") for c in params.get("contacts") or []]
        threshold = params.get("threshold")
        if not isinstance(threshold, int) or isinstance(threshold, bool):
            raise _fail("bad_request", "parameter 'threshold' must be an integer")
        body = recovery_body(self._my_member(), contacts, threshold)
        obj = self._sign("recovery", body, root=True)
        return {"id": obj.id_hex, "contacts": [c.hex() for c in sorted(set(contacts))],
                "threshold": threshold}  # fmt: skip

    def m_recovery_show(self, params: Mapping[str, Any]) -> dict[str, Any]:
        member = _key_of(params["member"], "member") if params.get("member") else self._my_member()
        sets = self.members.recoveries(member)
        latest = sets[-1] if sets else None
        status = self.members.status(member)
        roots = {k.key for k in self.members.member_keys(member) if k.role == "root"}
        rotations = []
        for r in self.members.rotations(member):
            backers = sorted({e.author.hex() for e in self.members.endorsements(r.id)})
            rotations.append({"id": r.id_hex, "mode": r.body["mode"], "old": r.body["old"].hex(),
                              "new": r.author.hex(), "ts": r.ts, "endorsements": backers,
                              "effective": r.author in roots,
                              "disputed": r.id in status.rotations})  # fmt: skip
        return {"member": member.hex(), **_status_view(status),
                "recovery": None if latest is None else {
                    "id": latest.id_hex, "ts": latest.ts, "threshold": latest.body["threshold"],
                    "contacts": [c.hex() for c in latest.body["contacts"]]},
                "rotations": rotations}  # fmt: skip

    def m_recovery_endorse(self, params: Mapping[str, Any]) -> dict[str, Any]:
        rid = _key_of(params.get("rotation"), "rotation")
        with self.store.read() as txn:
            rot = self.store.get(txn, rid)
        if rot is None or rot.kind != "rotation" or rot.body.get("mode") != RECOVERY:
            raise _fail("not_found", f"no recovery rotation {rid.hex()[:16]}… is known here "
                        "(wait for it to arrive, or import it)")  # fmt: skip
        member: bytes = rot.body["member"]
        obj = self._sign("endorsement", endorsement_body(member, rid))
        return {"id": obj.id_hex, "member": member.hex(), "rotation": rid.hex()}

    @_ring_change
    def m_recovery_rotate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """On a machine whose ring holds a new root: claim `member`, whose root is lost, for
        it. The contacts' endorsements make it effective; this ring then speaks for
        `member` with a new device certified by the new root."""
        member = _key_of(params.get("member"), "member")
        ring = self._require_ring()
        if ring_member(ring) == member:
            raise _fail("bad_request", "this machine already speaks for that member")
        if params.get("old"):
            old = _key_of(params["old"], "old")
        else:
            roots = self.members.current_roots(member)
            if len(roots) != 1:
                raise _fail("bad_request", f"member {member.hex()[:16]}… has {len(roots)} "
                            "current roots here: name the lost one (`old`)")  # fmt: skip
            old = roots[0]
        rot = self._sign("rotation", recovery_rotation_body(member, old), root=True)
        name = params.get("device_name") or default_device_name()
        new, cert = self._device_ring(ring, str(name), member)
        self._save(new)
        self._publish(cert)
        return {"rotation": rot.id_hex, "member": member.hex(), "old": old.hex(),
                "new": ring.public_key().hex(), "cert": cert.id_hex}  # fmt: skip

    @_ring_change
    def m_identity_rotate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A voluntary rotation: a new root, signed into place by the old one; the old root's
        seed is kept (retired) and the device stays certified."""
        ring = self._require_root(ROOT_ONLY["rotation"])
        member, old = ring_member(ring), ring.private_key()
        new = Ed25519PrivateKey.generate()
        new_pub = public_key_bytes(new)
        body = voluntary_rotation_body(member, old, new_pub)
        rot = kinds.create(new, "rotation", body, now_ms())
        retired = [*ring.extra.get(RETIRED, []), ring.seeds["root"]]
        self._save(KeyRing({**ring.seeds, "root": new.private_bytes_raw()},
                           {**ring.extra, MEMBER: member, RETIRED: retired}))  # fmt: skip
        self.public = new_pub
        self._publish(rot)
        return {"rotation": rot.id_hex, "member": member.hex(), "old": public_key_bytes(old).hex(),
                "new": new_pub.hex()}  # fmt: skip

    # ---- any member -----------------------------------------------------------------

    def m_member(self, params: Mapping[str, Any]) -> dict[str, Any]:
        member = _key_of(params.get("id"), "id")
        keys = self.members.member_keys(member)
        roots = [{"key": k.key.hex(), "start": k.start if k.start >= 0 else None, "end": k.end,
                  "disputed": k.disputed} for k in keys if k.role == "root"]  # fmt: skip
        devices = [{"name": d.name, "key": d.key.hex(), "cert": d.cert.hex(), "certified": d.ts,
                    "valid": d.valid, "revoked_since": d.revoked_since}
                   for d in self.members.devices(member)]  # fmt: skip
        return {"member": member.hex(), "fingerprint": fingerprint(member),
                **_status_view(self.members.status(member)), "roots": roots,
                "devices": devices}  # fmt: skip


def _status_view(status: MemberStatus) -> dict[str, Any]:
    return {"status": status.state, "disputed_since": status.since,
            "competing": [r.hex() for r in status.rotations]}  # fmt: skip
