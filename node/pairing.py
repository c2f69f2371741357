"""Adding a device by pairing, in the node (docs/pairing.md, "Using it"): the RPC methods
`device_join`, `device_add`, `pairing_confirm`, `pairing_status`, `pairing_cancel`, the
`/percolab/pair/1.0.0` stream handler, and `pairing` pushes to subscribers.

One pairing at a time per node, either role: B (`device_join`) shows a code until a device
of the member pairs with it, the pairing fails, it is cancelled or PAIRING_TIMEOUT_S passed;
A (`device_add`) runs `approve_pairing` in the background. Both ask their human through the
state `sas` (pushed, and read by `pairing_status`) and wait for `pairing_confirm`.
Key-ring work (a device-only ring on B, the certificate on A) is Service's, in threads
(node/service/pairing_ops.py): the Service of the caller's seat (a member of a shared machine,
node/service/seats.py). `device_join` with `member` (a new label) joins into a new seat: its
ring is made in `members/.pairing-<label>/` (not a seat yet: `seats` does not list it) and
renamed to `members/<label>/` when the pairing is done; removed when it fails or is cancelled.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import trio

from node.identity import make_private_dir
from node.keys import member as member_keys
from node.keys.member import KeyState
from node.rpc_server import HandlerError
from node.service.api import Service, ServiceError
from node.service.identity_ops import RING_LOCK
from node.service.seats import LABEL_RE, MAIN, MEMBERS_DIR, seat_dir
from p2p.pairing_transport import (
    PAIRING_TIMEOUT_S,
    PairingOutcome,
    approve_pairing,
    pairing_handler,
)
from protocols.pairing import PAIR_PROTOCOL_ID, JoinerSession
from protocols.pairing_code import PairingCodeError, Ticket, parse_pairing_input, render_qr
from protocols.pairing_messages import Reason

log = logging.getLogger(__name__)

METHODS = frozenset({"device_join", "device_add", "pairing_confirm", "pairing_status",
                     "pairing_cancel"})  # fmt: skip
PUSH_KIND = "pairing"
RUNNING = frozenset({"waiting", "sas"})
# Failures on B that do not end the code shown: a peer probing another tag, a second HELLO.
_NOT_OURS = frozenset({Reason.NOT_HERE, Reason.BUSY})
# Where a seat being joined keeps its ring until the pairing is done (no label starts so).
STAGING_PREFIX = ".pairing-"


def new_seat(primary: Service, params: Mapping[str, Any]) -> tuple[Service, Path]:
    """The Service of a new seat `member` for `device_join`, its ring to be made in a staging
    directory (0700): (seat Service, staging dir). Blocking."""
    label = params.get("member")
    if not isinstance(label, str) or not LABEL_RE.match(label) or label == MAIN:
        raise ServiceError("bad_label", f"{label!r} is not a member label: 1 to 32 of a-z, "
                           "0-9, '-' and '_', starting with a letter or digit, not 'main'")
    # The node's own passphrase must not protect another member's key: ask for one.
    if params.get("passphrase") is None and params.get("unencrypted") is not True:
        raise ServiceError("bad_request", "the new member's key needs 'passphrase' (or "
                           "'unencrypted': true)")  # fmt: skip
    if primary.public is None:  # as `seat_add`: the first member is the machine's own
        raise ServiceError("no_identity", "this machine has no member yet: join without "
                           "`member` to make it a device of yours")  # fmt: skip
    members = primary.data_dir / MEMBERS_DIR
    staging = members / (STAGING_PREFIX + label)
    with RING_LOCK:
        if member_keys.key_state(seat_dir(primary.data_dir, label)) is not KeyState.NONE:
            raise ServiceError("label_taken", f"a member of this machine is already "
                               f"labelled {label!r}")  # fmt: skip
        shutil.rmtree(staging, ignore_errors=True)  # a pairing the node did not finish
        make_private_dir(members)
        make_private_dir(staging)
    seat: Service = primary.seat(label, staging)
    return seat, staging


def promote_seat(data_dir: Path, staging: Path, label: str) -> None:
    """The pairing is done: the staging ring becomes the seat `label` (an empty directory
    there, left by a failed `seat_add`, is replaced). OSError when the label was taken
    meanwhile."""
    with RING_LOCK:
        staging.rename(seat_dir(data_dir, label))


def discard_seat(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)


def discard_unfinished(data_dir: Path) -> None:
    """Seats whose pairing the node did not finish (it stopped meanwhile)."""
    root = data_dir / MEMBERS_DIR
    if root.is_dir():
        for staging in root.glob(STAGING_PREFIX + "*"):
            log.info("removing %s: a pairing that did not finish", staging)
            discard_seat(staging)


class PairingManager:
    """The node's one pairing (B's session or A's approval) and what its client sees."""

    def __init__(self, service: Service, push: Callable[[str, Any], None]) -> None:
        self.service = service
        self._push = push
        self.p2p: Any = None
        self._nursery: trio.Nursery | None = None
        self._state: dict[str, Any] = {"state": "idle"}
        self._session: JoinerSession | None = None
        self._scope: trio.CancelScope | None = None  # the running approval or code expiry
        self._answer: trio.MemorySendChannel[bool] | None = None
        self._stored: dict[str, Any] = {}  # B: what pairing_store returned
        self._starting = False  # a device_join / device_add between its checks and its state
        self._with: Service = service  # the Service (a member's seat) of the running pairing
        self._seat: tuple[Path, str] | None = None  # B into a new seat: (staging dir, label)

    # ---- lifetime ---------------------------------------------------------------------

    async def run(self, p2p: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await trio.to_thread.run_sync(discard_unfinished, self.service.data_dir)
        self.p2p = p2p
        p2p.set_stream_handler(
            PAIR_PROTOCOL_ID,
            pairing_handler(self._get_session, self._confirm, self._store, self._b_outcome),
        )
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    # ---- state ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return dict(self._state)

    def _set(self, state: dict[str, Any]) -> None:
        self._state = state
        self._push(PUSH_KIND, dict(state))

    def _finish(self, end: dict[str, Any]) -> None:
        """The end of the pairing (`done` or `failed`): the code is no longer shown. A new
        seat becomes a member of this machine, or is removed."""
        self._session = None
        if self._seat is not None:
            (staging, label), self._seat = self._seat, None
            end = self._end_seat(staging, label, end)
        if self._answer is not None:  # a question still open: it is moot
            self._answer.send_nowait(False)
            self._answer = None
        if self._scope is not None:
            self._scope.cancel()
            self._scope = None
        self._set({"role": self._state.get("role"), **end})

    def _end_seat(self, staging: Path, label: str, end: dict[str, Any]) -> dict[str, Any]:
        if end.get("state") == "done":
            try:
                promote_seat(self.service.data_dir, staging, label)
                log.info("paired: member %s is now in seat %s", end.get("member"), label)
                return {**end, "label": label}
            except OSError as exc:
                log.warning("pairing into seat %s: %s", label, exc)
                end = {"state": "failed", "reason": f"the label {label!r} was taken meanwhile "
                       "(the device is certified: revoke it from another of your devices)"}
        discard_seat(staging)
        return end

    def _busy(self) -> None:
        if self._starting or self._state["state"] in RUNNING:
            raise HandlerError("busy", "a pairing is already running on this node "
                               "(`pairing_cancel` stops it)")  # fmt: skip

    # ---- RPC --------------------------------------------------------------------------

    async def call(self, method: str, params: Mapping[str, Any],
                   service: Service | None = None) -> Any:  # fmt: skip
        """One pairing method, for the member of `service` (the caller's seat; default: the
        node's first member)."""
        try:
            if method == "pairing_status":
                return self.status()
            if method == "pairing_confirm":
                return self._confirm_answer(params)
            if method == "pairing_cancel":
                if self._state["state"] in RUNNING:
                    self._finish({"state": "failed", "reason": "cancelled"})
                return self.status()
            self._busy()
            self._starting = True  # (the checks below run in threads)
            try:
                if method == "device_join":
                    return await self._join(params, service or self.service)
                return await self._add(params, service or self.service)
            finally:
                self._starting = False
        except ServiceError as exc:
            raise HandlerError(exc.code, exc.message) from exc

    def _confirm_answer(self, params: Mapping[str, Any]) -> dict[str, Any]:
        accept = params.get("accept")
        if not isinstance(accept, bool):
            raise HandlerError("bad_request", "parameter 'accept' must be true or false")
        if self._state["state"] != "sas" or self._answer is None:
            raise HandlerError("no_question", "no pairing waits for an answer about numbers")
        self._answer.send_nowait(accept)
        self._answer = None
        self._set({**self._state, "answered": accept})
        return self.status()

    async def _join(self, params: Mapping[str, Any], service: Service) -> dict[str, Any]:
        if self.p2p is None or self._nursery is None:
            raise HandlerError("unavailable", "the node is starting")
        seat: tuple[Path, str] | None = None
        if params.get("member") is not None:  # into a new seat of this machine
            service, staging = await trio.to_thread.run_sync(new_seat, self.service, params)
            seat = (staging, service.seat_label)
        try:
            pk, name, sign = await trio.to_thread.run_sync(service.pairing_device, params)
        except BaseException:
            if seat is not None:
                discard_seat(seat[0])
            raise
        session = JoinerSession(self.p2p.peer_id, pk, name, sign, member_required=True)
        ticket = Ticket.create(session.code, self.p2p.peer_id, self.p2p.listen_addrs())
        self._session, self._with, self._seat = session, service, seat
        label = {"label": seat[1]} if seat is not None else {}
        self._set({"state": "waiting", "role": "join", "code": session.code.display(),
                   "ticket": ticket.encode(), "qr": render_qr(ticket.encode()),
                   "device": name, **label})  # fmt: skip
        self._start(self._expire)
        return self.status()

    async def _add(self, params: Mapping[str, Any], service: Service) -> dict[str, Any]:
        if self.p2p is None or self._nursery is None:
            raise HandlerError("unavailable", "the node is starting")
        text = params.get("code")
        if not isinstance(text, str) or not text.strip():
            raise HandlerError("bad_request", "parameter 'code' (a pairing code or ticket) "
                               "is required")  # fmt: skip
        try:
            code, ticket = parse_pairing_input(text)
        except PairingCodeError as exc:
            raise HandlerError("bad_code", str(exc)) from exc
        identity = await trio.to_thread.run_sync(service.pairing_identity)
        self._with = service  # the member whose root certifies the device
        self._set({"state": "waiting", "role": "add", "code": code.display()})

        async def approve() -> None:
            outcome = await approve_pairing(self.p2p, ticket, code, self._certify, self._confirm,
                                            identity=identity)  # fmt: skip
            self._scope = None  # ends by itself: nothing to cancel
            self._a_outcome(outcome, identity[0])

        self._start(approve)
        return self.status()

    def _start(self, fn: Callable[[], Any]) -> None:
        assert self._nursery is not None
        scope = self._scope = trio.CancelScope()

        async def task() -> None:
            with scope:
                await fn()

        self._nursery.start_soon(task)

    # ---- the two sides ----------------------------------------------------------------

    def _get_session(self) -> JoinerSession | None:
        return self._session

    async def _expire(self) -> None:
        await trio.sleep(PAIRING_TIMEOUT_S)
        if self._session is not None and not self._session.busy:
            self._scope = None
            self._finish({"state": "failed", "reason": "timed out: no device paired with "
                          "this code"})  # fmt: skip

    async def _confirm(self, sas: str) -> bool:
        """The human compares the numbers: state `sas` until `pairing_confirm` (this task is
        cancelled if the pairing ends meanwhile)."""
        send, recv = trio.open_memory_channel[bool](1)
        self._answer = send
        self._set({**self._state, "state": "sas", "sas": sas, "answered": None})
        try:
            return await recv.receive()
        finally:
            if self._answer is send:
                self._answer = None

    async def _store(self, cert: bytes) -> None:
        self._stored = await trio.to_thread.run_sync(self._with.pairing_store, cert)

    async def _b_outcome(self, outcome: PairingOutcome) -> None:
        if outcome.reason in _NOT_OURS or self._state.get("role") != "join":
            return
        if self._state["state"] not in RUNNING:
            return
        if outcome.ok:
            stored = self._stored
            log.info("paired: this machine is a device of member %s", stored.get("member"))
            self._finish({"state": "done", "member": stored.get("member"),
                          "cert": stored.get("cert")})  # fmt: skip
        else:
            self._finish({"state": "failed", "reason": _why(outcome)})

    async def _certify(self, device: bytes, name: str, consent: bytes) -> bytes:
        raw: bytes = await trio.to_thread.run_sync(
            self._with.pairing_certify, device, name, consent
        )
        return raw

    def _a_outcome(self, outcome: PairingOutcome, member: bytes) -> None:
        if outcome.ok:
            log.info("device %r certified by pairing", outcome.device_name)
            self._finish({"state": "done", "member": member.hex(),
                          "device": outcome.device_name, "key": outcome.device_pk.hex()})
        else:
            self._finish({"state": "failed", "reason": _why(outcome)})


def _why(outcome: PairingOutcome) -> str:
    reason = str(outcome.reason) if outcome.reason is not None else "failed"
    if outcome.reason in (Reason.NOT_HERE, Reason.CONNECTION) and outcome.detail:
        return f"{reason} ({outcome.detail})"
    return reason
