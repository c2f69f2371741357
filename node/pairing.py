"""Adding a device by pairing, in the node (docs/pairing.md, "Using it"): the RPC methods
`device_join`, `device_add`, `pairing_confirm`, `pairing_status`, `pairing_cancel`, the
`/percolab/pair/1.0.0` stream handler, and `pairing` pushes to subscribers.

One pairing at a time per node, either role: B (`device_join`) shows a code until a device
of the member pairs with it, the pairing fails, it is cancelled or PAIRING_TIMEOUT_S passed;
A (`device_add`) runs `approve_pairing` in the background. Both ask their human through the
state `sas` (pushed, and read by `pairing_status`) and wait for `pairing_confirm`.
Key-ring work (a device-only ring on B, the certificate on A) is Service's, in threads
(node/service/pairing_ops.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import trio

from node.rpc_server import HandlerError
from node.service.api import Service, ServiceError
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

    # ---- lifetime ---------------------------------------------------------------------

    async def run(self, p2p: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
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
        """The end of the pairing (`done` or `failed`): the code is no longer shown."""
        self._session = None
        if self._answer is not None:  # a question still open: it is moot
            self._answer.send_nowait(False)
            self._answer = None
        if self._scope is not None:
            self._scope.cancel()
            self._scope = None
        self._set({"role": self._state.get("role"), **end})

    def _busy(self) -> None:
        if self._state["state"] in RUNNING:
            raise HandlerError("busy", "a pairing is already running on this node "
                               "(`pairing_cancel` stops it)")  # fmt: skip

    # ---- RPC --------------------------------------------------------------------------

    async def call(self, method: str, params: Mapping[str, Any]) -> Any:
        try:
            if method == "pairing_status":
                return self.status()
            if method == "pairing_confirm":
                return self._confirm_answer(params)
            if method == "pairing_cancel":
                if self._state["state"] in RUNNING:
                    self._finish({"state": "failed", "reason": "cancelled"})
                return self.status()
            if method == "device_join":
                return await self._join(params)
            return await self._add(params)
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

    async def _join(self, params: Mapping[str, Any]) -> dict[str, Any]:
        self._busy()
        if self.p2p is None or self._nursery is None:
            raise HandlerError("unavailable", "the node is starting")
        pk, name, sign = await trio.to_thread.run_sync(self.service.pairing_device, params)
        self._busy()  # (another call may have started one meanwhile)
        session = JoinerSession(self.p2p.peer_id, pk, name, sign, member_required=True)
        ticket = Ticket.create(session.code, self.p2p.peer_id, self.p2p.listen_addrs())
        self._session = session
        self._set({"state": "waiting", "role": "join", "code": session.code.display(),
                   "ticket": ticket.encode(), "qr": render_qr(ticket.encode()),
                   "device": name})  # fmt: skip
        self._start(self._expire)
        return self.status()

    async def _add(self, params: Mapping[str, Any]) -> dict[str, Any]:
        self._busy()
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
        identity = await trio.to_thread.run_sync(self.service.pairing_identity)
        self._busy()
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
        self._stored = await trio.to_thread.run_sync(self.service.pairing_store, cert)

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
            self.service.pairing_certify, device, name, consent
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
