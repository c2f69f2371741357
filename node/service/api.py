"""What a member can do, as blocking methods over the store: the one implementation behind
the CLI (no node running), the control-socket RPC and the HTTP API.

`Service.call(method, params)` takes the RPC method names of docs/rpc.md and returns plain
values (views); every failure is a `ServiceError` with a code and a one-line message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from node.identity import IdentityError, fingerprint
from node.ingest.pipeline import Ingest
from node.keys import member as member_keys
from node.keys.keyfile import UNENCRYPTED, KeyRing, Secret
from node.service import governance, living, members, pages, queries, search
from node.service.errors import ServiceError as ServiceError
from node.service.governance_ops import GovernanceMethods
from node.service.identity_ops import IdentityMethods, default_device_name
from node.service.living_ops import LivingMethods
from node.service.local_moderation_ops import LocalModerationMethods
from node.service.pairing_ops import PairingMethods
from node.service.seats import MAIN, SeatMethods, Seats
from node.service.unlock_ops import UnlockMethods
from node.store import UNINDEXED_COUNTERS, Store, StoreError, StoreFull, sync_index
from node.store.read import prefix_keys
from protocols import errors, kinds
from protocols.fields import normalize_label
from protocols.identity import IDENTITY_KINDS
from protocols.objects import SignedObject, decode
from protocols.rpc import MAX_RPC_FRAME

log = logging.getLogger(__name__)
# Signed bytes in one export page: half an RPC frame leaves room for the framing of each
# object, so any page fits one frame to the CLI.
EXPORT_PAGE_BYTES = MAX_RPC_FRAME // 2




def _str(params: Mapping[str, Any], name: str, default: str | None = None) -> str:
    value = params.get(name, default)
    if value is None:
        raise ServiceError("bad_request", f"missing parameter {name!r}")
    if not isinstance(value, str):
        raise ServiceError("bad_request", f"parameter {name!r} must be a string")
    return value


def _int(params: Mapping[str, Any], name: str, default: int) -> int:
    value = params.get(name, default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise ServiceError("bad_request", f"parameter {name!r} must be an integer")
    return value


def _hex_key(value: str) -> bytes:
    try:
        key = bytes.fromhex(value)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ServiceError("bad_request", f"{value!r} is not a public key (64 hex characters)")
    return key


def _strs(params: Mapping[str, Any], name: str) -> list[str]:
    value = params.get(name) or []
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ServiceError("bad_request", f"parameter {name!r} must be a list of strings")
    return list(value)


class Service(SeatMethods, PairingMethods, UnlockMethods, IdentityMethods, LivingMethods,
              GovernanceMethods, LocalModerationMethods):  # fmt: skip
    def __init__(self, data_dir: Path, store: Store, ingest: Ingest) -> None:
        self.data_dir, self.store, self.ingest = data_dir, store, ingest
        # Whose seat this is (node/service/seats.py): the first member's, unless `seat()`
        # made a copy for another member of this machine.
        self.key_dir, self.seat_label, self.seat_token = data_dir, MAIN, None
        self.seats = Seats()  # shared with every seat copy
        # The public key is read at once (no passphrase: a damaged key file is an error now);
        # the key ring is unlocked at the first signature (node/keys/member.py), and given a
        # device key then if it has none (node/service/identity_ops.py).
        self.public = member_keys.ring_public(data_dir)  # the device key in a device-only ring
        self.ring: KeyRing | None = None
        # The identity view (who each object speaks for), kept current by ingest.
        self.members = members.attach(store, ingest)
        # Project histories (revisions replayed into the current project), fed by ingest.
        self.living = living.attach(store, ingest, self.members)
        # Each lab's authority (its decisions replayed), for moderation: node/service/governance.
        self.governance = governance.attach(store, ingest, self.members)
        # Called with each object this member creates (the node publishes it by gossip).
        self.on_created: list[Callable[[SignedObject], None]] = []
        # Called when the member follows/unfollows a lab (the node (un)subscribes topics).
        self.on_follow: list[Callable[[bytes, bool], None]] = []

    # ---- dispatch ----------------------------------------------------------------------

    def call(self, method: str, params: Mapping[str, Any]) -> Any:
        if params.get("seat") is not None and method != "seat_close":  # another member's
            seat = self.for_seat(params["seat"])
            return seat.call(method, {k: v for k, v in params.items() if k != "seat"})
        handler = getattr(self, "m_" + method, None)
        if handler is None:
            raise ServiceError("unknown_method", f"unknown method {method!r}")
        try:
            return handler(params)
        except ServiceError:
            raise
        except queries.QueryError as exc:
            raise ServiceError(exc.code, str(exc)) from exc
        except errors.ObjectError as exc:
            raise ServiceError("invalid_object", str(exc), exc.code) from exc
        except IdentityError as exc:
            raise ServiceError("identity", str(exc)) from exc
        except StoreFull as exc:  # one line to the client, the node keeps serving reads
            raise ServiceError("store_full", str(exc)) from exc
        except StoreError as exc:
            raise ServiceError("store", str(exc)) from exc

    # ---- helpers -----------------------------------------------------------------------

    def _views(self, txn: Any, show_hidden: bool = False) -> queries.Views:
        return queries.Views(self.store, txn, self.follows(), self.members, self.living,
                             self.read_marks(txn), self._viewer(), show_hidden)  # fmt: skip

    def create(self, kind: str, body: Mapping[str, Any]) -> SignedObject:
        """Sign (with this machine's device key, naming its certificate) and store."""
        return self._sign(kind, body)

    def _resolve(self, ref: str) -> SignedObject:
        with self.store.read() as txn:
            oid = queries.resolve_id(self.store, txn, ref)
            obj = self.store.get(txn, oid)
        if obj is None:
            with self.store.read() as txn:
                code = self.store.unindexed_code(txn, oid)
            if code is not None:
                raise ServiceError(
                    "not_found", f"object {ref} is stored but not shown here ({code})"
                )
            raise ServiceError("not_found", f"object {ref} was withdrawn by its author")
        return obj

    def _scope_of(self, obj: SignedObject) -> bytes | None:
        if obj.kind == "lab":
            return obj.id
        scope = kinds.scope_of(obj.body)
        return None if scope == kinds.PUBLIC_SCOPE else scope

    # ---- identity ----------------------------------------------------------------------

    def m_whoami(self, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The member (its latest profile, from any of its keys), this machine's device key,
        its name and certificate; `author` is the member id (as before devices)."""
        who = self.identity()
        if who is None:
            return None
        member = bytes.fromhex(who["member"])
        with self.store.read() as txn:
            prof = self._views(txn).member_profile(member)
        return {
            "author": member.hex(),
            "name": prof.body["name"] if prof else "",
            "about": prof.body["about"] if prof else "",
            "fingerprint": fingerprint(member),
            **who,
        }

    def m_init(self, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """A new member: its root key, a device key for this machine certified by the root
        (the `device` certificate is published first), then the profile, by the device."""
        name, about = _str(params, "name"), _str(params, "about", "")
        device_name = _str(params, "device_name", default_device_name())
        kinds.validate_body(kinds.PROFILE, {"name": name, "about": about})
        secret = self._new_key_secret(params)
        root = KeyRing.create()
        ring, cert = self._device_ring(root, device_name, root.public_key())
        self.ring = member_keys.create(self.key_dir, secret, ring)
        self.public = ring.public_key()
        self._publish(cert)
        self.create("profile", {"name": name, "about": about})
        return self.m_whoami({})

    def _new_key_secret(self, params: Mapping[str, Any]) -> Secret:
        """init's `passphrase` (a string) or `unencrypted: true`, else what this process was
        given (node/keys/member.py)."""
        if params.get("passphrase") is not None:
            return _str(params, "passphrase")
        if params.get("unencrypted") is True:
            return UNENCRYPTED
        return member_keys.secret_for_new_key(self.key_dir)

    def m_profile_set(self, params: Mapping[str, Any]) -> str:
        current = self.m_whoami({}) or {}
        name = _str(params, "name", current.get("name"))
        about = _str(params, "about", current.get("about", ""))
        return self.create("profile", {"name": name, "about": about}).id_hex

    # ---- labs --------------------------------------------------------------------------

    def m_lab_list(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        with self.store.read() as txn:
            views = self._views(txn, self.show_hidden(params))
            labs = [
                views.view(o)
                for key in prefix_keys(txn, self.store.db["by_kind"], b"lab\0")
                if (o := self.store.get_seq(txn, key[-8:])) is not None and views.listed(o)
            ]
            self._lab_views(views, labs)  # role, queued, short_id, name_clash
        labs.sort(key=lambda v: (not v["followed"], v["name"].casefold(), v["id"]))
        return labs

    def m_lab_create(self, params: Mapping[str, Any]) -> str:
        body = {
            "name": _str(params, "name"),
            "description": _str(params, "description", ""),
            "place": _str(params, "place", ""),
            "theme": _str(params, "theme", ""),
        }
        posts = _str(params, "posts", "queued")
        if posts not in ("queued", "shown"):
            raise ServiceError("bad_request", "posts must be 'queued' (members only) or 'shown'")
        lab = self.create("lab", body)
        self._lab_created(lab, posts)  # members-only unless asked open
        self.follow(lab.id, True)
        return lab.id_hex

    def _lab(self, params: Mapping[str, Any], must_exist: bool = True) -> bytes:
        with self.store.read() as txn:
            return queries.resolve_lab(self.store, txn, _str(params, "lab"), must_exist=must_exist)

    def m_lab_follow(self, params: Mapping[str, Any]) -> bool:
        self.follow(self._lab(params, must_exist=False), True)
        return True

    def m_lab_unfollow(self, params: Mapping[str, Any]) -> bool:
        self.follow(self._lab(params, must_exist=False), False)
        return True

    # ---- projects, threads, tags ------------------------------------------------------

    def m_projects(self, params: Mapping[str, Any]) -> dict[str, Any]:
        lab = self._lab(params) if params.get("lab") else None
        author = _hex_key(_str(params, "author")) if params.get("author") else None
        tag = normalize_label(_str(params, "tag")) if params.get("tag") else None
        order = _str(params, "order", "newest")
        if order not in ("newest", "active"):
            raise ServiceError("bad_request", "order must be 'newest' or 'active'")
        cursor = params.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise ServiceError("bad_request", "cursor must be a string")
        with self.store.read() as txn:
            try:
                return pages.page_projects(
                    self.store, self._views(txn, self.show_hidden(params)), lab=lab,
                    order=order, tag=tag, author=author,
                    limit=_int(params, "limit", queries.DEFAULT_PAGE), cursor=cursor,
                )  # fmt: skip
            except ValueError as exc:
                raise ServiceError("bad_request", f"bad cursor: {exc}") from exc

    def m_project(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A project with its tags and threaded comments (the TUI's project screen)."""
        ref = _str(params, "id")
        obj = self._resolve(ref)
        if obj.kind != "project":
            raise ServiceError("not_found", f"{ref} is a {obj.kind}, not a project (use show)")
        return self._show(obj, self.show_hidden(params))

    def m_show(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Any object, under a key named after its kind, with its context (pages.show)."""
        return self._show(self._resolve(_str(params, "id")), self.show_hidden(params))

    def _show(self, obj: SignedObject, show_hidden: bool = False) -> dict[str, Any]:
        with self.store.read() as txn:
            views = self._views(txn, show_hidden)
            out = pages.show(self.store, views, obj)
            if obj.kind == "lab":
                self._lab_views(views, [out["lab"]])
            return out

    def m_post(self, params: Mapping[str, Any]) -> str:
        lab = self._lab(params)
        body = {
            "lab": lab,
            "title": _str(params, "title"),
            "summary": _str(params, "summary", ""),
            "body": _str(params, "body", ""),
            "stage": _str(params, "stage", "idea"),
            "needs": _strs(params, "needs"),
        }
        licence = _str(params, "licence", "")
        if licence:  # absent: no licence stated
            body["licence"] = licence
        labels = [normalize_label(t) for t in _strs(params, "tags")]
        if labels:  # check the labels before anything is signed
            kinds.validate_body(kinds.TAG, {"lab": lab, "target": bytes(32), "labels": labels})
        project = self.create("project", body)
        if labels:
            self.create("tag", {"lab": lab, "target": project.id, "labels": labels})
        if lab not in self.follows():
            self.follow(lab, True)
        return project.id_hex

    def m_comment(self, params: Mapping[str, Any]) -> str:
        target = self._resolve(_str(params, "target"))
        parent = self._resolve(_str(params, "parent")).id if params.get("parent") else None
        body = {
            "lab": self._scope_of(target),
            "target": target.id,
            "parent": parent,
            "body": _str(params, "body"),
        }
        return self.create("comment", body).id_hex

    def m_tag(self, params: Mapping[str, Any]) -> str:
        target = self._resolve(_str(params, "target"))
        labels = [normalize_label(t) for t in _strs(params, "labels")]
        body = {"lab": self._scope_of(target), "target": target.id, "labels": labels}
        return self.create("tag", body).id_hex

    def m_retract(self, params: Mapping[str, Any]) -> str:
        """Withdraw one of the member's objects. A retraction is final (stores ignore a
        retraction of one); a lab that still holds projects needs `force`, since its
        projects would stay, listed in no lab."""
        ref = _str(params, "id")
        target = self._resolve(ref)
        if target.kind in IDENTITY_KINDS:
            raise ServiceError("bad_request", f"{ref} is a {target.kind}: identity objects are "
                               "not withdrawn (`percolab device revoke`, `identity rotate`)")
        if target.kind == "retraction":
            raise ServiceError("bad_request", f"{ref} is a retraction: a withdrawal is final")
        force = params.get("force", False)
        if not isinstance(force, bool):
            raise ServiceError("bad_request", "parameter 'force' must be true or false")
        if target.kind == "lab" and not force:
            with self.store.read() as txn:
                projects = self.store.count(txn, lab=target.id)
            if projects:
                raise ServiceError(
                    "has_projects",
                    f"lab {target.body['name']!r} still holds {projects} project(s), which "
                    "would be left in no lab; withdraw them first, or force it "
                    "(`percolab retract --force`, RPC `force: true`)",
                )
        body = {"lab": self._scope_of(target), "target": target.id}
        return self._sign_as(target.author, "retraction", body).id_hex

    def m_tags(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        with self.store.read() as txn:
            return pages.tag_counts(self.store, txn, _int(params, "limit", 100),
                                      self._views(txn).moderation)

    def m_search(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        with self.store.read() as txn:
            return search.search(self.store, self._views(txn, self.show_hidden(params)),
                                 _str(params, "query"), _int(params, "limit", 50))  # fmt: skip

    # ---- bulk --------------------------------------------------------------------------

    def m_export(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """One page of the export: objects in append order after seq `after`, at most
        EXPORT_PAGE_BYTES of them (so a page fits one RPC frame); `next` is the `after` of
        the next page, None at the end."""
        lab = self._lab(params) if params.get("lab") else None
        after = _int(params, "after", 0)
        out: list[bytes] = []
        size, last = 0, after
        with self.store.read() as txn:
            for seq, raw in self.store.iter_objects(txn, after=after):
                if out and size + len(raw) > EXPORT_PAGE_BYTES:
                    return {"objects": out, "next": last}
                last = seq
                if lab is not None:
                    o = decode(raw)
                    if o.id != lab and kinds.scope_of(o.body) != lab:
                        continue
                out.append(raw)
                size += len(raw)
        return {"objects": out, "next": None}

    def m_import_objects(self, params: Mapping[str, Any]) -> dict[str, Any]:
        objects = params.get("objects")
        if not isinstance(objects, list) or not all(isinstance(o, bytes) for o in objects):
            raise ServiceError("bad_request", "objects must be a list of byte strings")
        result = self.ingest.ingest(objects)
        return {
            "accepted": len(result.stored),
            "known": result.known,
            "rejected": [
                {"index": r.index, "code": r.code, "reason": r.reason} for r in result.rejected
            ],
            # Stored and passed on, but not shown here: an unknown kind or envelope version
            # (opaque) or a known kind that breaks its schema (hidden).
            "unindexed": [
                {"index": r.index, "code": r.code, "reason": r.reason} for r in result.unindexed
            ],
        }

    # ---- status ------------------------------------------------------------------------

    def m_status(self, params: Mapping[str, Any]) -> dict[str, Any]:
        with self.store.read() as txn:
            counts = {k: self.store.count(txn, k) for k in kinds.registered_kinds()}
            total = self.store.count(txn)
            unindexed = {
                layer: self.store.count(txn, counter[len("count:"):])
                for layer, counter in UNINDEXED_COUNTERS.items()
            }
            # Sum of every scope's reconciliation total (sync_index keeps them up to date).
            n, digest = sync_index.digest(self.store, txn)
        status = {"counts": counts, "objects": total, "sync_items": n, "unindexed": unindexed,
                  "digest": digest.to_bytes(32, "big").hex()}  # fmt: skip
        who = self.identity()
        if who is not None:
            status["member"], status["device"] = who["member"], who["device"]
        status |= self.key_status()  # `locked`, or `new_key` (node/service/unlock_ops.py)
        status["seats"] = self.seat_count()  # members of this machine
        warning = member_keys.key_warning(self.key_dir)
        if warning is not None:  # the member key is stored unencrypted
            status["key_warning"] = warning
        return status
