"""A lab's shared machine: several members on one node, each in a *seat* (docs/rpc.md, "A
shared machine"; docs/keys.md, "Seats").

The first member keeps `DATA/member.keys` (label `main`); each further one
`DATA/members/<label>/member.keys`. A caller opens a seat with the member's passphrase
(`seat_open`) and gets a token it sends as `seat` with every request: the request then runs in
a `Service` copy whose key ring, follows and read marks are that member's. Tokens live in
memory only: a restart ends every seat.

Mixed into `Service` (node/service/api.py), which provides the attributes declared below.
"""

from __future__ import annotations

import copy
import logging
import math
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from node.identity import make_private_dir
from node.ingest.pipeline import now_ms
from node.keys import member as member_keys
from node.keys.keyfile import KeyFileError, KeyRing, WrongPassphrase
from node.keys.member import KeyState
from node.service import queries, unlock_ops
from node.service.errors import ServiceError
from node.service.identity_ops import RING_LOCK
from node.service.moderation import Moderation
from node.service.unlock_ops import _ATTEMPT_LOCK, UnlockAttempts
from node.store import Store
from node.store.read import U64, prefix_keys
from protocols.objects import SignedObject

log = logging.getLogger(__name__)

MAIN: Final = "main"  # the first member's seat: DATA/member.keys
MEMBERS_DIR: Final = "members"
LABEL_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_LABEL_CHARS: Final = 32
# A lab's unread count stops here (the labs list shows "99").
UNREAD_COUNT_CAP: Final = 99
NO_SEAT_MESSAGE: Final = "this member is no longer signed in here; choose again"
# Meta keys: the main member keeps the follows of before seats ("follow:<hex>").
_FOLLOW: Final = "follow"
_READ: Final = "read@"
_READ_BASE: Final = "readbase@"
# Events of the activity log that moderation may leave out (as project views do).
_ACTIVITY_KINDS: Final = ("comment", "tag", "pledge")


def seat_dir(data_dir: Path, label: str) -> Path:
    return data_dir if label == MAIN else data_dir / MEMBERS_DIR / label


def seat_labels(data_dir: Path) -> list[str]:
    """The members of this machine: `main` first (when it has a key), then by label."""
    labels = [MAIN] if member_keys.key_state(data_dir) is not KeyState.NONE else []
    root = data_dir / MEMBERS_DIR
    if root.is_dir():
        labels += sorted(
            p.name for p in root.iterdir()
            if LABEL_RE.match(p.name) and p.name != MAIN
            and member_keys.key_state(p) is not KeyState.NONE
        )  # fmt: skip
    return labels


def follow_prefix(label: str) -> str:
    return f"{_FOLLOW}:" if label == MAIN else f"{_FOLLOW}@{label}:"


def label_of_name(name: str) -> str:
    """The default label of a member: a slug of its name ("Bob Smith" -> "bob-smith")."""
    slug = re.sub(r"[^a-z0-9_]+", "-", name.casefold()).strip("-_")
    return slug[:MAX_LABEL_CHARS].rstrip("-_")


class ReadMarks:
    """What one member has read, for the views of one read transaction: a project is unread
    when its activity is newer than both the member's mark on it and the seat's base (the
    time the seat was first opened)."""

    def __init__(self, store: Store, txn: Any, label: str) -> None:
        self.store, self.txn, self.label = store, txn, label
        raw = txn.get(f"{_READ_BASE}{label}".encode(), db=store.db["meta"])
        # No base yet (a primary whose node never started): nothing counts as unread.
        self.base = U64.unpack(raw)[0] if raw else math.inf

    def _mark(self, project: bytes) -> int:
        raw = self.txn.get(f"{_READ}{self.label}:{project.hex()}".encode(),
                           db=self.store.db["meta"])  # fmt: skip
        return U64.unpack(raw)[0] if raw else 0

    def unread(self, project: bytes, activity: int) -> bool:
        return activity > self.base and activity > self._mark(project)

    def lab_unread(self, lab: bytes, moderation: Moderation | None = None) -> int:
        """Projects of the lab with unread activity (at most UNREAD_COUNT_CAP): the lab's
        activity log newest first, down to the base. With `moderation`, as its lists: a
        project they leave out is not counted, nor a comment, tag or pledge they leave out
        (decoded only in a lab where one may be: `may_hide`)."""
        seen: set[bytes] = set()
        count = 0
        unlisted = moderation.unlisted(lab) if moderation is not None else {}
        judge = moderation is not None and moderation.may_hide(lab)
        for key in prefix_keys(self.txn, self.store.db["active"], lab, reverse=True):
            ts = U64.unpack(key[32:40])[0]
            if ts <= self.base:
                break
            project = bytes(key[40:72])
            if project in seen or project in unlisted:
                continue
            if judge and moderation is not None:
                event = queries.load_seq(self.store, self.txn, bytes(key[72:80]))
                if (event is not None and event.kind in _ACTIVITY_KINDS
                        and not moderation.listed(event)):  # fmt: skip
                    continue  # an older event of the project may be listed
            seen.add(project)  # its newest event comes first
            if ts > self._mark(project):
                count += 1
                if count >= UNREAD_COUNT_CAP:
                    break
        return count


class Seats:
    """Open seats (token -> seat Service) and each label's wrong passphrases."""

    def __init__(self) -> None:
        self.open: dict[str, Any] = {}
        self.attempts: dict[str, UnlockAttempts] = {}
        self.lock = threading.Lock()


class SeatMethods:
    """The seat side of `Service`: who is signed in, follows and read marks per member."""

    data_dir: Path
    key_dir: Path
    seat_label: str
    seat_token: str | None
    store: Store
    public: bytes | None
    ring: KeyRing | None
    seats: Seats
    on_follow: list[Callable[[bytes, bool], None]]
    _unlock_attempts: UnlockAttempts | None

    if TYPE_CHECKING:  # Service's own

        def m_whoami(self, params: Mapping[str, Any]) -> dict[str, Any] | None: ...

        def m_init(self, params: Mapping[str, Any]) -> dict[str, Any] | None: ...

        def _resolve(self, ref: str) -> SignedObject: ...

        def _views(self, txn: Any) -> queries.Views: ...

    # ---- seats ------------------------------------------------------------------------

    def seat(self, label: str, key_dir: Path) -> Any:
        """This Service for another member: same store, ingest, views and hooks; its own key
        ring (not unlocked), follows and read marks."""
        other = copy.copy(self)
        other.key_dir, other.seat_label, other.seat_token = key_dir, label, None
        other.public = member_keys.ring_public(key_dir)
        other.ring, other._unlock_attempts = None, None
        return other

    def for_seat(self, token: Any) -> Any:
        """The Service of the seat `token` (this one for None); `no_seat` when unknown."""
        if token is None:
            return self
        found = self.seats.open.get(token) if isinstance(token, str) else None
        if found is None:
            raise ServiceError("no_seat", NO_SEAT_MESSAGE)
        return found

    def seat_count(self) -> int:
        return len(seat_labels(self.data_dir))

    def m_seats(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        out = []
        for label in seat_labels(self.data_dir):
            key_dir = seat_dir(self.data_dir, label)
            who = self.seat(label, key_dir).m_whoami({})
            out.append({
                "label": label, "member": who["member"] if who else None,
                "name": who["name"] if who else "",
                "fingerprint": who["fingerprint"] if who else "",
                "encrypted": member_keys.key_state(key_dir) is KeyState.ENCRYPTED,
                "open": self.seat_token is not None and label == self.seat_label,
            })  # fmt: skip
        return out

    def _find_seat(self, ref: Any) -> dict[str, Any]:
        if not isinstance(ref, str) or not ref.strip():
            raise ServiceError("bad_request", "parameter 'member' (a label or name) is required")
        wanted = ref.strip().casefold()
        seats = self.m_seats({})
        found = [s for s in seats if s["label"] == wanted] or [
            s for s in seats if s["name"].casefold() == wanted]
        labels = ", ".join(s["label"] for s in seats) or "none"
        if not found:
            raise ServiceError("unknown_member", f"no member {ref!r} on this machine "
                               f"(members: {labels})")  # fmt: skip
        if len(found) > 1:
            raise ServiceError("ambiguous_member", f"{ref!r} names {len(found)} members here: "
                               "give a label (" + ", ".join(s["label"] for s in found) + ")")
        return found[0]

    def m_seat_open(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Sign a member in: its passphrase is always checked (node/keys/member.py
        open_seat), wrong ones counted per label as `unlock` counts them."""
        found = self._find_seat(params.get("member"))
        label, key_dir = found["label"], seat_dir(self.data_dir, found["label"])
        text = params.get("passphrase")
        if text is not None and not isinstance(text, str):
            raise ServiceError("bad_request", "parameter 'passphrase' must be a string")
        if found["encrypted"] and not text:
            raise ServiceError("bad_request", f"the key of member {label!r} is encrypted: "
                               "give its passphrase")  # fmt: skip
        with _ATTEMPT_LOCK:
            attempts = self.seats.attempts.setdefault(label, UnlockAttempts())
            wait = attempts.wait_s(unlock_ops._clock())  # (a clock tests replace)
            if wait > 0:
                raise ServiceError("too_many_attempts", "too many wrong passphrases: try "
                                   f"again in {math.ceil(wait)} s")  # fmt: skip
            try:
                ring = member_keys.open_seat(key_dir, text)
            except WrongPassphrase:
                attempts.failed(unlock_ops._clock())
                log.info("seat_open %s: wrong passphrase", label)
                raise ServiceError("wrong_passphrase", "wrong passphrase") from None
            except KeyFileError as exc:
                raise ServiceError("identity", str(exc)) from exc
            attempts.succeeded()
        seat = self.seat(label, key_dir)
        seat.ring = ring
        seat.seat_token = token = secrets.token_hex(16)
        with self.seats.lock:
            self.seats.open[token] = seat
        seat.ensure_read_base()
        log.info("seat %s opened", label)
        return {"seat": token, "label": label, "member": found["member"], "name": found["name"]}

    def m_seat_close(self, params: Mapping[str, Any]) -> bool:
        token = params.get("seat", self.seat_token)
        if isinstance(token, str):
            with self.seats.lock:
                self.seats.open.pop(token, None)
        return True

    def m_seat_add(self, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """A new member on this machine: members/<label>/ with a new root and device key, its
        certificate and profile published (as `init` does for the first member)."""
        if self.public is None and self.seat_label == MAIN:
            raise ServiceError("no_identity", "this machine has no member yet: `init` makes "
                               "the first one")  # fmt: skip
        name = params.get("name")
        label = params.get("label") or (label_of_name(name) if isinstance(name, str) else "")
        if not isinstance(label, str) or not LABEL_RE.match(label) or label == MAIN:
            raise ServiceError("bad_label", f"{label!r} is not a member label: 1 to 32 of a-z, "
                               "0-9, '-' and '_', starting with a letter or digit, not 'main'")
        if params.get("passphrase") is None and params.get("unencrypted") is not True:
            raise ServiceError("bad_request", "a new member's key needs 'passphrase' (or "
                               "'unencrypted': true)")  # fmt: skip
        key_dir = seat_dir(self.data_dir, label)
        with RING_LOCK:
            if member_keys.key_state(key_dir) is not KeyState.NONE:
                raise ServiceError("label_taken", f"a member of this machine is already "
                                   f"labelled {label!r}")  # fmt: skip
            make_private_dir(self.data_dir / MEMBERS_DIR)
            make_private_dir(key_dir)
            fields = ("name", "about", "passphrase", "unencrypted", "device_name")
            who: dict[str, Any] | None = self.seat(label, key_dir).m_init(
                {k: params[k] for k in fields if k in params})
        log.info("member %s added", label)
        return who

    # ---- follows ----------------------------------------------------------------------

    def follows(self) -> set[bytes]:
        """This member's followed labs."""
        prefix = follow_prefix(self.seat_label)
        return {bytes.fromhex(k[len(prefix):]) for k, _ in self.store.meta_prefix(prefix)}

    def all_follows(self) -> set[bytes]:
        """The labs any member of this machine follows: what the node subscribes to and
        reconciles."""
        labels = set(seat_labels(self.data_dir)) | {MAIN}
        out: set[bytes] = set()
        for key, _ in self.store.meta_prefix(_FOLLOW):
            head, _, lab = key.rpartition(":")
            label = MAIN if head == _FOLLOW else head.removeprefix(_FOLLOW + "@")
            if label in labels and len(lab) == 64:
                try:
                    out.add(bytes.fromhex(lab))
                except ValueError:
                    continue
        return out

    def follow(self, lab: bytes, on: bool) -> None:
        self.store.meta_put(follow_prefix(self.seat_label) + lab.hex(), b"1" if on else None)
        if not on and lab in self.all_follows():
            return  # another member still follows it: the node stays subscribed
        for hook in self.on_follow:
            hook(lab, on)

    # ---- unread -----------------------------------------------------------------------

    def read_marks(self, txn: Any) -> ReadMarks:
        return ReadMarks(self.store, txn, self.seat_label)

    def ensure_read_base(self) -> None:
        """Set this member's read base at its first seat (or the node's first start): what
        was there before counts as read."""
        key = f"{_READ_BASE}{self.seat_label}"
        with self.store.read() as txn:
            known = txn.get(key.encode(), db=self.store.db["meta"]) is not None
        if not known and not self.store.readonly:
            self.store.meta_put(key, U64.pack(now_ms()))

    def m_mark_read(self, params: Mapping[str, Any]) -> bool:
        ref = params.get("id")
        if not isinstance(ref, str):
            raise ServiceError("bad_request", "parameter 'id' (a project) is required")
        obj = self._resolve(ref)
        if obj.kind != "project":
            raise ServiceError("not_found", f"{ref} is a {obj.kind}, not a project")
        with self.store.read() as txn:
            activity = self._views(txn).thread_stats(obj)[1]
        self.ensure_read_base()
        self.store.meta_put(f"{_READ}{self.seat_label}:{obj.id.hex()}", U64.pack(activity))
        return True
