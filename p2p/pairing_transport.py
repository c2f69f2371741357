"""``/percolab/pair/1.0.0`` over libp2p streams: the thin adapter around protocols/pairing.py.

B (the new device) serves the protocol: ``pairing_handler`` (or ``serve_pairing`` per stream)
answers with the node's current `JoinerSession`, if any. A (the existing device) runs
``approve_pairing``: with a ticket (the QR) it dials B's addresses and talks to B alone; with a
bare code it asks each peer it is connected to, sending the code's tag in HELLO: every peer
not showing a code with that tag answers ABORT(NOT_HERE) at once, so only B goes on.

Frames are those of p2p/framing.py (one message per frame, END after the last). Humans are
async callbacks: ``confirm_sas(sas) -> bool`` shows the numbers and waits for the answer
(cancelled if the pairing ends meanwhile); each waits at most ``HUMAN_TIMEOUT_S``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio

from p2p.framing import FRAME_TOO_LARGE, TIMEOUT, FrameError, read_frame, write_end, write_frame
from p2p.sync_transport import peer_of
from protocols.pairing import (
    PAIR_PROTOCOL_ID,
    Approved,
    Approver,
    Certified,
    CertifyRequest,
    Event,
    Failed,
    JoinerSession,
    Send,
    ShowSas,
)
from protocols.pairing_code import PairingCode, Ticket
from protocols.pairing_messages import MAX_MESSAGE_BYTES, Abort, AbortCode, Reason, encode

logger = logging.getLogger(__name__)

FRAME_TIMEOUT_S = 30.0  # one protocol step with no human in it
HUMAN_TIMEOUT_S = 120.0  # one human comparing the numbers
PAIRING_TIMEOUT_S = 300.0  # a whole pairing, end to end (rendezvous included)
END_TIMEOUT_S = 5.0  # waiting for the peer's END after the end
DIAL_TIMEOUT_S = 15.0  # reaching one address of a ticket
MAX_RENDEZVOUS_PEERS = 64  # connected peers asked for a bare code's tag
_HUMAN_STATES = frozenset({"sas", "wait_result", "certifying"})

ConfirmSas = Callable[[str], Awaitable[bool]]
OnCertificate = Callable[[bytes], Awaitable[None]]
# (device key, device name, the device's consent signature: b"" without an identity)
CertificateFactory = Callable[[bytes, str, bytes], Awaitable[bytes]]
Identity = tuple[bytes, bytes]  # (member id, root public key) the approver certifies for


@dataclass(frozen=True)
class Timeouts:
    frame: float = FRAME_TIMEOUT_S
    human: float = HUMAN_TIMEOUT_S
    pairing: float = PAIRING_TIMEOUT_S


@dataclass(frozen=True)
class PairingOutcome:
    """How one pairing ended, on this side. ``ok``: B got (A sent) the certificate."""

    ok: bool
    reason: Reason | None = None
    peer_id: str = ""
    detail: str = ""
    device_pk: bytes = b""  # A: the device certified
    device_name: str = ""
    certificate: bytes = b""  # B: the certificate received

    @classmethod
    def failed(cls, reason: Reason, peer_id: str = "", detail: str = "") -> PairingOutcome:
        return cls(False, reason, peer_id, detail)


async def _finish(stream: Any, frame_timeout: float) -> None:
    """Write END, wait a little for the peer's END, close (never raises)."""
    with contextlib.suppress(FrameError):
        await write_end(stream)
        with trio.move_on_after(min(END_TIMEOUT_S, frame_timeout)):
            while await read_frame(stream, max_frame=MAX_MESSAGE_BYTES) is not None:
                pass
    with contextlib.suppress(Exception):
        await stream.close()


def _frame_failure(exc: FrameError) -> Reason:
    if exc.code == TIMEOUT:
        return Reason.TIMEOUT
    return Reason.PROTOCOL if exc.code == FRAME_TOO_LARGE else Reason.CONNECTION


async def _drive(
    stream: Any,
    machine: Any,  # Approver | Joiner: receive / sas_decision / certificate / fail
    initial: list[Event],
    confirm_sas: ConfirmSas,
    certify: CertificateFactory | None,
    t: Timeouts,
) -> Certified | Approved | Failed:
    """Run a machine on a stream until its terminal event: frames in, events out, humans
    and the certificate factory as concurrent tasks."""
    lock = trio.Lock()
    async with trio.open_nursery() as nursery:

        async def handle(events: list[Event]) -> None:
            # The nursery is cancelled only by the batch holding the terminal event, after
            # its sends: a task that merely sees the machine finished must not cut them off.
            terminal = False
            for ev in events:
                if isinstance(ev, Send):
                    async with lock:
                        try:
                            await write_frame(stream, ev.data)
                        except FrameError as exc:
                            machine.fail(Reason.CONNECTION, str(exc))
                            terminal = True
                            break
                elif isinstance(ev, ShowSas):
                    nursery.start_soon(human, ev.sas)
                elif isinstance(ev, CertifyRequest):
                    nursery.start_soon(make_certificate, ev)
                elif isinstance(ev, Certified | Approved | Failed):
                    terminal = True
            if terminal:
                nursery.cancel_scope.cancel()

        async def human(sas: str) -> None:
            same = False
            with trio.move_on_after(t.human) as scope:
                try:
                    same = bool(await confirm_sas(sas))
                except Exception:
                    logger.exception("confirm_sas failed; taken as a refusal")
            await handle(machine.sas_decision(same, timed_out=scope.cancelled_caught))

        async def make_certificate(req: CertifyRequest) -> None:
            assert certify is not None
            cert: bytes | None = None
            try:
                cert = await certify(req.device_pk, req.device_name, req.consent)
            except Exception:
                logger.exception("the certificate factory failed")
            await handle(machine.certificate(cert))

        async def reader() -> None:
            while not machine.finished:
                wait = t.frame + (t.human if machine.state in _HUMAN_STATES else 0.0)
                try:
                    data = await read_frame(stream, max_frame=MAX_MESSAGE_BYTES, timeout=wait)
                except FrameError as exc:
                    await handle(machine.fail(_frame_failure(exc), str(exc)))
                    return
                if data is None:
                    await handle(machine.fail(Reason.CONNECTION, "END before the pairing ended"))
                    return
                await handle(machine.receive(data))

        await handle(initial)
        if not machine.finished:
            nursery.start_soon(reader)
    result = machine.result
    assert isinstance(result, Certified | Approved | Failed)
    return result


# --- B: the new device ---------------------------------------------------------------------


async def serve_pairing(
    stream: Any,
    session: JoinerSession | None,
    confirm_sas: ConfirmSas,
    on_certificate: OnCertificate,
    *,
    timeouts: Timeouts = Timeouts(),
) -> PairingOutcome:
    """Answer one inbound pairing stream with ``session`` (None: no code is shown here).
    ``on_certificate(cert)`` is awaited with the certificate once A sent it."""
    peer = peer_of(stream)
    outcome: PairingOutcome | None = None
    with trio.move_on_after(timeouts.pairing):
        outcome = await _serve(stream, peer, session, confirm_sas, on_certificate, timeouts)
    if outcome is None:
        with contextlib.suppress(Exception):
            await stream.reset()
        return PairingOutcome.failed(Reason.TIMEOUT, peer, "the pairing took too long")
    await _finish(stream, timeouts.frame)
    return outcome


async def _serve(
    stream: Any, peer: str, session: JoinerSession | None, confirm_sas: ConfirmSas,
    on_certificate: OnCertificate, t: Timeouts,
) -> PairingOutcome:  # fmt: skip
    try:
        first = await read_frame(stream, max_frame=MAX_MESSAGE_BYTES, timeout=t.frame)
    except FrameError as exc:
        return PairingOutcome.failed(_frame_failure(exc), peer, str(exc))
    if first is None:
        return PairingOutcome.failed(Reason.CONNECTION, peer, "END before HELLO")
    if session is None:
        with contextlib.suppress(FrameError):
            await write_frame(stream, encode(Abort(AbortCode.NOT_HERE)))
        return PairingOutcome.failed(Reason.NOT_HERE, peer)
    joiner, events = session.open(peer, first)
    if joiner is None:
        for ev in events:
            if isinstance(ev, Send):
                with contextlib.suppress(FrameError):
                    await write_frame(stream, ev.data)
        failed = next(ev for ev in events if isinstance(ev, Failed))
        return PairingOutcome.failed(failed.reason, peer, failed.detail)
    try:
        result = await _drive(stream, joiner, events, confirm_sas, None, t)
    finally:  # also when the whole pairing's deadline cancels it: the session is free again
        session.close(joiner)
    if isinstance(result, Failed):
        return PairingOutcome.failed(result.reason, peer, result.detail)
    assert isinstance(result, Certified)
    try:
        await on_certificate(result.certificate)
    except Exception as exc:
        logger.exception("on_certificate failed")
        return PairingOutcome.failed(Reason.CERTIFY_FAILED, peer, f"storing it failed: {exc}")
    return PairingOutcome(True, None, peer, certificate=result.certificate)


def pairing_handler(
    get_session: Callable[[], JoinerSession | None],
    confirm_sas: ConfirmSas,
    on_certificate: OnCertificate,
    on_outcome: Callable[[PairingOutcome], Awaitable[None]] | None = None,
    *,
    timeouts: Timeouts = Timeouts(),
) -> Callable[[Any], Awaitable[None]]:
    """A stream handler for ``P2PNode.set_stream_handler(PAIR_PROTOCOL_ID, ...)``."""

    async def handler(stream: Any) -> None:
        outcome = await serve_pairing(
            stream, get_session(), confirm_sas, on_certificate, timeouts=timeouts
        )
        if outcome.reason not in (None, Reason.NOT_HERE):
            logger.info("pairing with %s: %s", outcome.peer_id, outcome.reason)
        if on_outcome is not None:
            await on_outcome(outcome)

    return handler


# --- A: the existing device ----------------------------------------------------------------

_approving: set[str] = set()  # peer ids of local nodes running an approval
# Which failure to report when no peer paired: the most telling one.
_RANK = [Reason.WRONG_CODE, Reason.CODE_BURNT, Reason.BUSY, Reason.PEER_PROTOCOL,
         Reason.PROTOCOL, Reason.TIMEOUT, Reason.CONNECTION, Reason.NOT_HERE]  # fmt: skip
_KEEP_LOOKING = frozenset(_RANK)


def _rank(outcome: PairingOutcome) -> int:
    return _RANK.index(outcome.reason) if outcome.reason in _KEEP_LOOKING else len(_RANK)


async def _approve_one(
    p2p: Any, peer: str, code: PairingCode, certify: CertificateFactory,
    confirm_sas: ConfirmSas, t: Timeouts, identity: Identity | None = None,
) -> PairingOutcome:  # fmt: skip
    try:
        with trio.fail_after(t.frame):
            stream = await p2p.new_stream(peer, [PAIR_PROTOCOL_ID])
    except Exception as exc:  # no such protocol there, connection gone, too slow
        return PairingOutcome.failed(Reason.NOT_HERE, peer, f"no pairing stream: {exc}")
    approver = Approver(code, p2p.peer_id, peer, identity=identity)
    try:
        result = await _drive(stream, approver, approver.start(), confirm_sas, certify, t)
    except BaseException:
        with contextlib.suppress(Exception):
            await stream.reset()
        raise
    await _finish(stream, t.frame)
    if isinstance(result, Failed):
        return PairingOutcome.failed(result.reason, peer, result.detail)
    assert isinstance(result, Approved)
    return PairingOutcome(True, None, peer, device_pk=result.device_pk,
                          device_name=result.device_name)  # fmt: skip


async def _reach(p2p: Any, ticket: Ticket, t: Timeouts) -> bool:
    if any(p["peer_id"] == ticket.peer_id for p in p2p.connected_peers()):
        return True
    for addr in ticket.dial_addrs():
        with contextlib.suppress(Exception), trio.fail_after(DIAL_TIMEOUT_S):
            await p2p.connect(addr)
            return True
    return False


async def approve_pairing(
    p2p_node: Any,
    peer_info: Ticket | None,
    code: PairingCode,
    device_cert_factory: CertificateFactory,
    confirm_sas: ConfirmSas,
    *,
    timeouts: Timeouts = Timeouts(),
    identity: Identity | None = None,
) -> PairingOutcome:
    """Pair the device showing ``code``: B of the ticket, or whichever connected peer shows
    it. ``device_cert_factory(device_pk, device_name, consent)`` signs the certificate once
    both humans confirmed (an exception or empty bytes: nothing is certified). With
    ``identity`` (member id, root key), B is told them and must send its consent signature
    (a `device` certificate's `device_sig`), checked before the factory is called."""
    me = p2p_node.peer_id
    if me in _approving:
        return PairingOutcome.failed(Reason.BUSY, "", "this device is already pairing")
    _approving.add(me)
    try:
        with trio.move_on_after(timeouts.pairing):
            return await _approve(p2p_node, peer_info, code, device_cert_factory, confirm_sas,
                                  timeouts, identity)  # fmt: skip
        return PairingOutcome.failed(Reason.TIMEOUT, "", "the pairing took too long")
    finally:
        _approving.discard(me)


async def _approve(
    p2p: Any, ticket: Ticket | None, code: PairingCode, certify: CertificateFactory,
    confirm_sas: ConfirmSas, t: Timeouts, identity: Identity | None = None,
) -> PairingOutcome:  # fmt: skip
    if ticket is not None:
        if not await _reach(p2p, ticket, t):
            return PairingOutcome.failed(
                Reason.CONNECTION, ticket.peer_id, "the new device cannot be reached"
            )
        candidates = [ticket.peer_id]
    else:
        seen: dict[str, None] = {}
        for p in p2p.connected_peers():
            if p["peer_id"] != p2p.peer_id:
                seen[p["peer_id"]] = None
        candidates = list(seen)[:MAX_RENDEZVOUS_PEERS]
    best: PairingOutcome | None = None
    for peer in candidates:
        outcome = await _approve_one(p2p, peer, code, certify, confirm_sas, t, identity)
        if outcome.ok or outcome.reason not in _KEEP_LOOKING:
            return outcome
        if best is None or _rank(outcome) < _rank(best):
            best = outcome
    if best is None or best.reason is Reason.NOT_HERE:
        return PairingOutcome.failed(
            Reason.NOT_HERE, "", f"none of {len(candidates)} connected peers shows this code"
        )
    return best
