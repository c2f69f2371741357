"""The reconciliation state machine shared by both sides (sans-I/O); protocols/reconcile.py
has the API, docs/sync.md ("The algorithm") the rules.

A reply is filled within the negotiated `Limits` (protocols/reconcile_fill.py):

1. **What I owe first.** Every DIFF and HAVE of the peer's message is taken before anything
   else (they carry what each side learns). A DIFF naming entries I listed that the peer
   lacks is answered with a HAVE; those HAVEs are chosen in order while they take at most
   1/OWED_SHARE of the message. A DIFF left over is *re-opened*: I send my fingerprint of its
   range instead and the range is reconciled again (only when the peer lacks nearly all I
   listed).
2. **Requests in order.** FINGERPRINT, IDLIST and SKIP ranges are answered in key order
   (split, list, DIFF...) while the answer plus the reserve for folding the rest fits.
3. **Fold the rest** (echoes or groups, see reconcile_fill).

So every message answers at least its lowest request and everything below the lowest range
still open is settled: a session always progresses. A side's last message
(`Limits.is_final`) requests nothing; what it could not settle without a request is left
open, and the initiator records the lowest such bound (``resume_from``) so that a new
session can continue from there.
"""

from __future__ import annotations

import hashlib
import itertools
from bisect import bisect_left

from protocols.reconcile_fill import (
    GROUPS,
    NO_COST,
    OWED_HAVE,
    OWED_SHARE,
    PLAN_SHARE,
    QUIET,
    RANGE_BYTES,
    REQUEST,
    Cost,
    Folder,
    Out,
    Plan,
    fold_bytes,
    fold_reserve,
    have_cost,
)
from protocols.reconcile_limits import SHORT_ID_BYTES, V1_0, Limits
from protocols.reconcile_store import (
    ID_BYTES,
    Bound,
    ItemStore,
    Key,
    Windowed,
    fingerprint,
    minimal_bound,
)
from protocols.reconcile_wire import (
    Message,
    Mode,
    Range,
    ReconcileError,
    SessionCode,
    decode_message,
    encode_message,
)

# A DIFF of mine awaiting a HAVE: its upper bound, the short ids it lacked, and whether a
# missing HAVE leaves the range open (False for a partial DIFF: the entries it lacked may all
# lie past its cut, and then no HAVE comes).
_Pending = tuple[Bound, set[bytes], bool]


def short_id(salt: bytes, item_id: bytes) -> bytes:
    """Salted short id used in IDLIST ranges: SHA-256(salt || id)[:SHORT_ID_BYTES]."""
    return hashlib.sha256(salt + item_id).digest()[:SHORT_ID_BYTES]


class Session:
    """State and logic shared by both sides (the protocol is symmetric after message 0)."""

    def __init__(
        self, store: ItemStore, salt: bytes, lower: Bound, upper: Bound,
        need_limit: int | None = None, limits: Limits = V1_0,
    ) -> None:  # fmt: skip
        if not lower < upper:
            raise ValueError("lower must be below upper")
        self.limits = limits
        # Ids the peer says we lack are the one thing a peer can make us remember without
        # bound (a liar names made-up ids round after round): `need_limit` caps how many this
        # side keeps at once (None: no cap); `take_need` hands them over and forgets them.
        self._need_limit = need_limit
        self._fresh_need: list[bytes] = []
        self.need_learnt = 0  # ids learnt as needed over the session (taken or not)
        self.need_dropped = 0  # ids learnt beyond need_limit, not kept
        self._store = store  # as given
        # Every query goes through the window: nothing outside it is offered or compared.
        self._view: ItemStore = Windowed(store, lower, upper)
        self._salt = salt
        self._have: set[bytes] = set()
        self._need: set[bytes] = set()
        self._lower: Bound = lower  # the session's bounds (the responder narrows them to
        self._upper: Bound = upper  # what message 0 covers)
        self._lists: dict[Bound, tuple[Bound, list[Key]]] = {}  # my IDLISTs awaiting a DIFF
        self._diffs: dict[Bound, _Pending] = {}  # my DIFFs awaiting a HAVE
        self._next_index = 0
        self._last_index = -1
        # Lowest bound of a range left open because a last message could not request it.
        self._open_from: Bound | None = None
        self.done = False
        self.bytes_sent = 0
        self.bytes_received = 0

    @property
    def have(self) -> frozenset[bytes]:
        """Ids this side holds that the peer lacks (complete once ``done``)."""
        return frozenset(self._have)

    @property
    def need(self) -> frozenset[bytes]:
        """Ids the peer holds that this side lacks and that were not taken with `take_need`
        (complete once ``done`` if nothing was taken and no `need_limit` was hit)."""
        return frozenset(self._need)

    def take_need(self) -> list[bytes]:
        """The needed ids learnt since the last call, in order; this side forgets them
        (the caller owns them now, and a repeat is the caller's to spot)."""
        fresh, self._fresh_need = self._fresh_need, []
        self._need.difference_update(fresh)
        return fresh

    def _add_need(self, ids: list[bytes]) -> None:
        for item_id in ids:
            if item_id in self._need:
                continue
            self.need_learnt += 1
            if self._need_limit is not None and len(self._need) >= self._need_limit:
                self.need_dropped += 1
                continue
            self._need.add(item_id)
            self._fresh_need.append(item_id)

    @property
    def rounds(self) -> int:
        """Round trips so far (= initiator messages sent)."""
        return self._last_index // 2 + 1 if self._last_index >= 0 else 0

    def _leave_open(self, lower: Bound) -> None:
        if self._open_from is None or lower < self._open_from:
            self._open_from = lower

    # --- outgoing ---------------------------------------------------------------------

    def _emit(self, index: int, out: Out, salt: bytes | None = None) -> bytes:
        if index >= self.limits.max_index:
            raise ReconcileError(
                "reconciliation did not finish within MAX_ROUNDS", SessionCode.TOO_MANY_ROUNDS
            )
        lower, ranges = out.finish()
        data = encode_message(Message(index, lower, ranges, salt), self.limits)
        expects_reply = bool(self._diffs) or any(
            r.mode in (Mode.FINGERPRINT, Mode.IDLIST) for r in ranges
        )
        self.done = not expects_reply
        self._last_index = index
        self._next_index = index + 1
        self.bytes_sent += len(data)
        return data

    def _list_plan(self, lo: Bound, up: Bound) -> Plan:
        keys = list(self._view.iter_keys(lo, up, self.limits.idlist_threshold))
        ids = b"".join(short_id(self._salt, k[1]) for k in keys)
        return Plan([Range(Mode.IDLIST, up, ids)], lists=[(lo, up, keys)], requests=True)

    def _split_plan(self, lo: Bound, up: Bound) -> Plan | None:
        """Cut a range into up to `buckets` sub-ranges; None if the store found no cut."""
        points = [p for p in self._view.split_points(lo, up, self.limits.buckets) if lo < p < up]
        if not points or any(a >= b for a, b in itertools.pairwise(points)):
            return None
        plan = Plan([], requests=True)
        for a, b in itertools.pairwise([lo, *points, up]):
            sub = self._view.count_and_sum(a, b)
            if sub.count == 0:  # an empty list costs less than a fingerprint
                plan.ranges.append(Range(Mode.IDLIST, b, b""))
                plan.lists.append((a, b, []))
            else:
                plan.ranges.append(Range(Mode.FINGERPRINT, b, fingerprint(sub)))
        return plan

    def _own_fingerprint(self, lo: Bound, up: Bound) -> Range:
        return Range(Mode.FINGERPRINT, up, fingerprint(self._view.count_and_sum(lo, up)))

    def _commit(self, plan: Plan, out: Out) -> None:
        for rng in plan.ranges:
            out.add(rng)
        for lo, up, keys in plan.lists:
            self._lists[lo] = (up, keys)
        if plan.diff is not None:
            lo, up, unmatched = plan.diff
            self._diffs[lo] = (up, unmatched, plan.cut is None)
        self._have.update(plan.have)

    # --- incoming ---------------------------------------------------------------------

    def _decode(self, data: bytes) -> Message:
        if self.done:
            raise ReconcileError(
                "message received after the session finished", SessionCode.AFTER_DONE
            )
        msg = decode_message(data, self.limits)
        self.bytes_received += len(data)
        if msg.index != self._next_index:
            raise ReconcileError(
                f"expected message {self._next_index}, got {msg.index}", SessionCode.WRONG_INDEX
            )
        if (
            self.limits.final_requests_checked
            and self.limits.is_final(msg.index)
            and any(r.mode in (Mode.FINGERPRINT, Mode.IDLIST) for r in msg.ranges)
        ):
            raise ReconcileError(
                "the last message of a session requests an answer", SessionCode.TOO_MANY_ROUNDS
            )
        self._last_index = msg.index
        if msg.index > 0:
            self._check_scope(msg)
        return msg

    def _check_scope(self, msg: Message) -> None:
        if msg.lower < self._lower or (msg.ranges and msg.ranges[-1].upper > self._upper):
            raise ReconcileError("ranges outside the session's bounds", SessionCode.OUT_OF_BOUNDS)

    def _answer(self, msg: Message) -> bytes | None:
        """Answer every range of ``msg`` within the limits (see the module docstring)."""
        limits = self.limits
        lists, diffs = self._lists, self._diffs
        self._lists, self._diffs = {}, {}
        index = msg.index + 1
        final = limits.is_final(index)
        answerable = index + 1 < limits.max_index  # a DIFF of mine could still get a HAVE
        n = len(msg.ranges)
        uppers = [r.upper for r in msg.ranges]
        lowers = [msg.lower, *uppers[:-1]]
        kinds, haves, must_reply = self._take_owed(msg, lowers, lists, diffs, final)
        owed = {i: len(ids) for i, ids in haves.items()}
        fold = fold_bytes(msg.lower, uppers)

        def reserve(group: int, by_closers: bool = True) -> list[Cost]:
            return fold_reserve(uppers, kinds, owed, fold, group, by_closers)

        out = Out(msg.lower)
        # The reserve that decisions keep: folds in groups of `buckets`, or smaller groups
        # (echoes) if folding all this message's requests so takes a small share.
        plan_group = next(
            (g for g in GROUPS if out.fits(limits, NO_COST, _scaled(reserve(g)[0], PLAN_SHARE))),
            limits.buckets,
        )
        kept = reserve(plan_group)
        last_resort = reserve(n + 1, by_closers=False)  # one fold per gap between my HAVEs
        folder = Folder(out, self._own_fingerprint)
        progressed = False  # a request of this message answered

        def start_folding(start: int, extra: int) -> None:
            """Fold from position ``start`` on (``extra`` bytes more for a fold already
            begun) with the smallest group that fits, or one fold per gap between HAVEs."""
            extra_cost = (extra, 1 if extra else 0, 0)
            for group in (*GROUPS, limits.buckets):
                if group <= plan_group and out.fits(limits, extra_cost, reserve(group)[start]):
                    folder.start(group, True)
                    return
            folder.start(n + 1, False)

        for i, r in enumerate(msg.ranges):
            lo, up, kind = lowers[i], r.upper, kinds[i]
            if kind == OWED_HAVE:
                folder.close(lo)
                out.add(Range(Mode.HAVE, up, b"".join(haves[i])))
                self._have.update(haves[i])
                continue
            if kind == QUIET and folder.by_closers:
                folder.close(lo)
                out.skip(up)
                continue
            if folder.active:
                folder.add(lo, up)
                continue
            plan = self._plan(lo, r, final, answerable, out, kept[i + 1], fold)
            if plan is None:  # what my last message cannot answer is left open
                self._leave_open(lo)
                out.skip(up)
                continue
            cost = out.cost(plan.ranges)
            if plan.cut is None and out.fits(limits, cost, kept[i + 1]):
                self._commit(plan, out)
                progressed = progressed or plan.requests
                continue
            with_fold = (cost[0] + fold, cost[1] + 1, cost[2])
            # A partial DIFF, sized to fit: the rest of its range is folded. Not in my last
            # message: with no fold after it, its only 0 bits could lie past the cut, and a
            # first-release peer would then not reply although it is expected to.
            cut = plan.cut if plan.ranges and not final else None
            if cut is not None and out.fits(limits, with_fold, kept[i + 1]):
                self._commit(plan, out)
                progressed = True
                start_folding(i + 1, fold)
                folder.add(cut, up)
                continue
            if final:
                self._leave_open(lo)
                out.skip(up)
            elif not progressed and plan.cut is None and out.fits(limits, cost, last_resort[i + 1]):
                self._commit(plan, out)  # every message answers at least one request
                progressed = True
                folder.start(n + 1, False)
            else:
                start_folding(i, 0)
                folder.add(lo, up)
        folder.close(uppers[-1] if uppers else msg.lower)
        must_reply = (
            must_reply
            or any(r.mode in (Mode.FINGERPRINT, Mode.IDLIST) for r in msg.ranges)
            or any(r.mode == Mode.HAVE for r in out.ranges)
        )
        data = self._emit(index, out) if must_reply else None
        self.done = self.done or data is None
        if self.done:
            # My IDLISTs and DIFFs the peer never answered stay open. A partial DIFF needs
            # a HAVE only if the peer lacks entries below its cut: none came, none needed (it
            # is never in my last message, whose answer may drop HAVEs).
            for open_lo in itertools.chain(lists, (lo for lo, d in diffs.items() if d[2])):
                self._leave_open(open_lo)
        return data

    def _take_owed(
        self,
        msg: Message,
        lowers: list[Bound],
        lists: dict[Bound, tuple[Bound, list[Key]]],
        diffs: dict[Bound, _Pending],
        final: bool,
    ) -> tuple[list[int], dict[int, list[bytes]], bool]:
        """Take every DIFF and HAVE of ``msg`` (what each side learns) and check every IDLIST;
        classify the ranges and choose the HAVEs I send: in order, while they (with a fold
        and a skip each) take at most 1/OWED_SHARE of the message. Also whether a DIFF has
        a 0 bit over my list's entries (then the message expects a reply, even an empty one)."""
        limits = self.limits
        kinds = [REQUEST] * len(msg.ranges)
        haves: dict[int, list[bytes]] = {}
        share = (
            limits.max_message_bytes // OWED_SHARE,
            limits.max_ranges // OWED_SHARE,
            limits.max_ids // OWED_SHARE,
        )
        owed = NO_COST
        full = zero_bit = False
        for i, r in enumerate(msg.ranges):
            if r.mode == Mode.IDLIST:
                sids = r.chunks(SHORT_ID_BYTES)
                if len(set(sids)) != len(sids):
                    raise ReconcileError(
                        "duplicate short id in IDLIST", SessionCode.DUPLICATE_SHORT_ID
                    )
            elif r.mode == Mode.HAVE:
                self._on_have(lowers[i], r, diffs)
                kinds[i] = QUIET
            elif r.mode == Mode.DIFF:
                missing, zero = self._on_diff(lowers[i], r, lists)
                zero_bit = zero_bit or zero
                if not missing:
                    kinds[i] = QUIET
                    continue
                have = have_cost(r.upper, len(missing))
                cost = (have[0] + 2 * (RANGE_BYTES + ID_BYTES) + 18, have[1] + 2, have[2])
                owed = (owed[0] + cost[0], owed[1] + cost[1], owed[2] + cost[2])
                full = full or any(o > s for o, s in zip(owed, share, strict=True))
                if not full:
                    kinds[i] = OWED_HAVE
                    haves[i] = missing
                elif final:  # no HAVE and no request possible: the range stays open
                    kinds[i] = QUIET
                    self._leave_open(lowers[i])
        return kinds, haves, zero_bit

    def _plan(
        self, lo: Bound, r: Range, final: bool, answerable: bool, out: Out, reserve: Cost,
        fold: int,
    ) -> Plan | None:  # fmt: skip
        """My answer to one request range (None: my last message may not answer it)."""
        up = r.upper
        limits = self.limits
        if r.mode == Mode.SKIP:
            return Plan([Range(Mode.SKIP, up)])
        if r.mode == Mode.DIFF:  # a DIFF whose HAVE did not fit: re-open its range
            return None if final else Plan([self._own_fingerprint(lo, up)], requests=True)
        if r.mode == Mode.IDLIST:
            if not answerable:
                return None
            room_bytes = (
                limits.max_message_bytes - out.size - reserve[0] - fold
                - 2 * RANGE_BYTES - len(up[1]) - limits.max_bitmap_bytes
            )  # fmt: skip
            room = min(room_bytes // ID_BYTES, limits.max_ids - out.ids - reserve[2])
            return self._diff_plan(lo, r, max(0, room))
        agg = self._view.count_and_sum(lo, up)
        if fingerprint(agg) == r.data:
            return Plan([Range(Mode.SKIP, up)])
        if final:
            return None
        if agg.count <= limits.idlist_threshold:
            return self._list_plan(lo, up)
        split = self._split_plan(lo, up)
        return split if split is not None else Plan([self._own_fingerprint(lo, up)], requests=True)

    def _diff_plan(self, lo: Bound, r: Range, room: int) -> Plan:
        """Answer an IDLIST with a DIFF carrying at most ``room`` extra ids. If more are
        needed, the DIFF stops at a cut (``cut``: the rest of the range is folded); with no
        key before the cut, the plan has no range at all (fold the whole range)."""
        theirs = r.chunks(SHORT_ID_BYTES)
        index = {sid: j for j, sid in enumerate(theirs)}
        bits = bytearray((len(theirs) + 7) // 8)
        extras: list[bytes] = []
        prev: Key | None = None
        cut: Key | None = None
        for key in self._view.iter_keys(lo, r.upper, len(theirs) + room + 1):
            hit = index.get(short_id(self._salt, key[1]))
            if hit is not None:
                bits[hit >> 3] |= 1 << (hit & 7)
            elif len(extras) < room:
                extras.append(key[1])
            else:
                cut = key
                break
            prev = key
        if cut is not None and prev is None:
            return Plan([], cut=lo)
        up = r.upper if cut is None or prev is None else minimal_bound(prev, cut)
        unmatched = {sid for j, sid in enumerate(theirs) if not bits[j >> 3] >> (j & 7) & 1}
        return Plan(
            [Range(Mode.DIFF, up, b"".join(extras), bytes(bits))],
            diff=(lo, up, unmatched) if unmatched else None,
            have=extras,
            cut=None if cut is None else up,
        )

    def _on_diff(
        self, lo: Bound, r: Range, lists: dict[Bound, tuple[Bound, list[Key]]]
    ) -> tuple[list[bytes], bool]:
        """Take a DIFF answering my IDLIST: learn what I need; return the listed ids the
        peer lacks below its upper bound (owed in a HAVE), and whether any entry's bit is 0."""
        entry = lists.pop(lo, None)
        if entry is None or r.upper > entry[0]:
            raise ReconcileError("DIFF does not answer an IDLIST of ours", SessionCode.BAD_DIFF)
        keys = entry[1]
        if len(r.bitmap) != (len(keys) + 7) // 8:
            raise ReconcileError(
                "DIFF bitmap length does not match our IDLIST", SessionCode.BAD_DIFF
            )
        if len(keys) % 8 and r.bitmap[-1] >> (len(keys) % 8):
            raise ReconcileError("DIFF bitmap has bits beyond our IDLIST", SessionCode.BAD_DIFF)
        covered = bisect_left(keys, r.upper)
        missing = [keys[j][1] for j in range(covered) if not r.bitmap[j >> 3] >> (j & 7) & 1]
        listed = {k[1] for k in keys}
        extras = r.chunks(ID_BYTES)
        if any(x in listed for x in extras):
            raise ReconcileError("DIFF claims we lack an id we listed", SessionCode.BAD_DIFF)
        self._add_need(extras)
        zero = any(not r.bitmap[j >> 3] >> (j & 7) & 1 for j in range(len(keys)))
        return missing, zero

    def _on_have(self, lo: Bound, r: Range, diffs: dict[Bound, _Pending]) -> None:
        entry = diffs.pop(lo, None)
        if entry is None or entry[0] != r.upper:
            raise ReconcileError("HAVE does not answer a DIFF of ours", SessionCode.BAD_HAVE)
        unmatched = entry[1]
        for item_id in r.chunks(ID_BYTES):
            sid = short_id(self._salt, item_id)
            if sid not in unmatched:
                raise ReconcileError("HAVE lists an id we did not ask for", SessionCode.BAD_HAVE)
            unmatched.discard(sid)
            self._add_need([item_id])


def _scaled(cost: Cost, factor: int) -> Cost:
    return cost[0] * factor, cost[1] * factor, cost[2] * factor
