"""Labs without a chief benchmark (issue 24, docs/governance.md): the replay of a lab's
decisions, and a members-only lab flooded with queued projects, seen through a real Service.

1. `replay` (protocols/lab_authority.py) of a lab with N decisions (default 10,000), real
   signed objects, handed over shuffled: admits, vouches (newcomers vouched in by two members,
   or at once by a steward), hides and unhides, approvals, suspensions, and proposals (a
   steward admitted, the rules changed) with the stewards' endorsements. A key is its own
   member (no identity objects). Figure `replay_ms`: the median of REPLAY_RUNS replays, limit
   100 ms (interactive: a lab's first view after a decision arrives).
2. A Service over a temp LMDB store (as tests/node/test_governance_service.py builds one): the
   viewer creates a members-only lab (`lab_create`) and admits MEMBERS keys; they post
   200 projects, then 1,000 throwaway keys (non-members, each signing its own projects
   properly) post 10,000, all queued. The objects are loaded by the store's batched `Ingest`
   with the node's registries listening. By default the flood is newer than every member's
   project (the worst case for the lab's first page: it walks the whole flood before the
   first member's project); `--interleave` mixes their timestamps. Figures, for the viewer (a
   member): `projects` (first page, limit 50, of the lab), `lab_members`, `queue` (first
   page, limit 50), `lab_list`,
   each warm (median of VIEW_RUNS after one warm-up), limit 50 ms, and cold (median of
   COLD_RUNS, each right after a new decision of the lab is stored, which drops the lab's
   authority and its held objects); `held_scan_ms`: the lab's scan of its objects
   (`Governance.held`), the part of a cold view that grows with the flood.

Ratios are limit / measured: >= 1 is within the limit.

    .venv/bin/python bench/governance.py              # 10,000 decisions, 10,000 queued
    .venv/bin/python bench/governance.py --quick --json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.ingest.pipeline import Ingest, now_ms
from node.service.api import Service
from node.store.store import Store
from protocols import kinds
from protocols.governance import decision_body
from protocols.lab_authority import replay
from protocols.objects import SignedObject, public_key_bytes

LIMIT_REPLAY_MS = 100.0
LIMIT_VIEW_MS = 50.0
REPLAY_RUNS = 7
VIEW_RUNS = 5
COLD_RUNS = 3
PAGE = 50
MAX_STEWARDS = 9
PROJECTS_EACH = 10  # projects per member and per throwaway key
DELIVERY_BATCH = 2_000  # objects per ingest call
VIEWS = ("projects", "lab_members", "queue", "lab_list")
WORDS = ("solar", "oven", "kiln", "filter", "frame", "glass", "sand", "valve", "pump", "seed",
         "board", "sensor", "beam", "hinge", "mould", "resin", "clay", "wick", "fan", "duct")


def _text(rng: random.Random, chars: int) -> str:
    out, n = [], 0
    while n < chars:
        w = rng.choice(WORDS)
        out.append(w)
        n += len(w) + 1
    return " ".join(out)[:chars]


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)


def _ratio(limit: float, measured: float) -> float:
    return round(limit / max(measured, 1e-3), 2)


# ---- 1. the replay ----------------------------------------------------------------------


def decisions(n: int, seed: int) -> tuple[SignedObject, list[SignedObject]]:
    """A lab and n decisions in the causal order a lab's life makes (then shuffled by the
    caller). The script tracks roughly who may do what; the replay decides what each did."""
    rng = random.Random(seed)
    creator = Ed25519PrivateKey.generate()
    clock = now_ms() - 10**9
    lab = kinds.create(creator, "lab", {"name": "Bench lab", "description": "", "place": "",
                                        "theme": ""}, clock)  # fmt: skip
    keys = {public_key_bytes(creator): creator}
    stewards, members = [public_key_bytes(creator)], [public_key_bytes(creator)]
    waiting: dict[bytes, set[bytes]] = {}  # newcomer -> vouchers
    suspended: set[bytes] = set()
    hidden: list[bytes] = []
    out: list[SignedObject] = []

    def fresh() -> bytes:
        k = Ed25519PrivateKey.generate()
        keys[public_key_bytes(k)] = k
        return public_key_bytes(k)

    def add(by: bytes, act: str, **fields: Any) -> SignedObject:
        nonlocal clock
        clock += rng.randint(1, 600)
        d = kinds.create(keys[by], "decision", decision_body(lab.id, act, **fields), clock)
        out.append(d)
        return d

    while len(out) < n:
        r, st = rng.random(), rng.choice(stewards)
        active = [m for m in members if m not in suspended]
        if r < 0.30:
            who = fresh()
            add(st, "admit", subject=who, role="member")
            members.append(who)
        elif r < 0.55:
            voucher = rng.choice(active)
            if waiting and rng.random() < 0.7:
                who = rng.choice(list(waiting))
            else:
                who = fresh()
                waiting[who] = set()
            add(voucher, "vouch", subject=who)
            waiting[who].add(voucher)
            if voucher in stewards or len(waiting[who]) >= 2:
                members.append(who)
                del waiting[who]
        elif r < 0.75:
            target = os.urandom(32)
            add(st, "hide", target=target, reason="spam")
            hidden.append(target)
        elif r < 0.80 and hidden:
            add(st, "unhide", target=hidden.pop(rng.randrange(len(hidden))))
        elif r < 0.87:
            add(rng.choice(active), "approve", target=os.urandom(32))
        elif r < 0.95:
            plain = [m for m in members if m not in stewards]
            if plain:
                who = rng.choice(plain)
                add(st, "unsuspend" if who in suspended else "suspend", subject=who)
                suspended ^= {who}
        else:  # a proposal, endorsed by enough of the other stewards to pass
            candidates = [m for m in active if m not in stewards]
            if len(stewards) < MAX_STEWARDS and candidates and rng.random() < 0.5:
                who = rng.choice(candidates)
                p = add(st, "admit", subject=who, role="steward")
            else:
                who = None
                rules = {"admit_vouches": rng.choice((1, 2, 3)),
                         "replies": rng.choice(("shown", "queued"))}
                p = add(st, "rules", rules=rules)
            others = [s for s in stewards if s != st]
            for e in rng.sample(others, len(stewards) // 2):
                add(e, "endorse", target=p.id)
            if who is not None:
                stewards.append(who)
                suspended.discard(who)
    return lab, out[:n]


def bench_replay(n: int, seed: int) -> dict[str, Any]:
    t = time.perf_counter()
    lab, ds = decisions(n, seed)
    gen_s = round(time.perf_counter() - t, 1)
    random.Random(seed + 1).shuffle(ds)

    def attribute(o: SignedObject) -> bytes:
        return o.author  # a key with no identity objects is its own member

    times, a = [], None
    for _ in range(REPLAY_RUNS):
        t = time.perf_counter()
        a = replay(lab, ds, attribute)
        times.append((time.perf_counter() - t) * 1000)
    assert a is not None and len(a.log) == n
    acts = Counter(d.body["act"] for d in ds)
    return {"decisions": n, "decisions_generate_s": gen_s,
            "replay_ms": round(statistics.median(times), 2),
            "replay_min_ms": round(min(times), 2),
            "acts": dict(acts.most_common()),
            "effects": dict(Counter(e.effect for e in a.log).most_common()),
            "replay_stewards": len(a.stewards), "replay_members": len(a.members),
            "replay_hidden": len(a.hidden)}  # fmt: skip


# ---- 2. a flooded members-only lab in a Service -------------------------------------------


def _projects(lab: bytes, authors: list[Ed25519PrivateKey], ts: list[int],
              rng: random.Random) -> list[SignedObject]:  # fmt: skip
    """PROJECTS_EACH ~1 KiB projects by each author, at the given timestamps."""
    out = []
    for i, t in enumerate(ts):
        body = {"lab": lab, "title": _text(rng, 40).title(), "summary": _text(rng, 200),
                "body": _text(rng, 650), "stage": "idea", "needs": []}  # fmt: skip
        out.append(kinds.create(authors[i // PROJECTS_EACH], "project", body, t))
    return out


def load_lab(svc: Service, ingest: Ingest, member_projects: int, queued: int,
             interleave: bool, seed: int) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """The viewer's members-only lab, its members' projects and the flood; returns the lab's
    id (hex) and facts."""
    rng = random.Random(seed)
    lab = svc.call("lab_create", {"name": "Flooded lab"})  # members-only by default
    lab_id = bytes.fromhex(lab)
    authors = max(1, member_projects // PROJECTS_EACH)
    members = [Ed25519PrivateKey.generate() for _ in range(authors)]
    for m in members:
        svc.call("lab_admit", {"lab": lab, "member": public_key_bytes(m).hex()})
    spammers = [Ed25519PrivateKey.generate() for _ in range(max(1, queued // PROJECTS_EACH))]
    t = time.perf_counter()
    base = now_ms() + 1
    stamps = list(range(base, base + member_projects + queued))
    if interleave:
        rng.shuffle(stamps)
    mine = _projects(lab_id, members, sorted(stamps[:member_projects]), rng)
    flood = _projects(lab_id, spammers, sorted(stamps[member_projects:]), rng)
    profiles = [kinds.create(m, "profile", {"name": f"Member {i}", "about": ""}, base)
                for i, m in enumerate(members)]  # fmt: skip
    gen_s = time.perf_counter() - t
    raws = [o.raw for o in profiles + mine + flood]
    random.Random(seed + 1).shuffle(raws)  # as sync delivers them: any order
    t = time.perf_counter()
    stored = 0
    for i in range(0, len(raws), DELIVERY_BATCH):
        # `now` past the newest ts: generating may take longer than the stamps' spread
        result = ingest.ingest(raws[i : i + DELIVERY_BATCH], now=now_ms() + 60_000)
        assert not result.rejected and not result.unindexed, (result.rejected, result.unindexed)
        stored += len(result.stored)
    assert stored == len(raws), stored
    return lab, {"members": len(members) + 1, "member_projects": member_projects,
                 "throwaway_keys": len(spammers), "queued": queued,
                 "order": "interleaved" if interleave else "flood newest",
                 "sign_s": round(gen_s, 1),
                 "load_s": round(time.perf_counter() - t, 2)}  # fmt: skip


def _call(svc: Service, method: str, lab: str) -> Any:
    if method == "projects":
        return svc.call("projects", {"lab": lab, "limit": PAGE})
    if method == "lab_list":
        return svc.call("lab_list", {})
    if method == "queue":
        return svc.call("queue", {"lab": lab, "limit": PAGE})
    return svc.call(method, {"lab": lab})


def _check(svc: Service, lab: str, facts: dict[str, Any]) -> None:
    """The views say what the lab holds: a full page of members' projects, the flood queued."""
    page = _call(svc, "projects", lab)
    assert len(page["items"]) == min(PAGE, facts["member_projects"]), len(page["items"])
    assert all(p["moderation"] == "shown" for p in page["items"])
    assert page["total"] == facts["member_projects"], page["total"]
    q = _call(svc, "queue", lab)
    assert len(q["objects"]) == min(PAGE, facts["queued"]), len(q["objects"])  # a page
    assert q["total"] == facts["queued"], q["total"]
    assert len(q["newcomers"]) == facts["throwaway_keys"], len(q["newcomers"])
    [v] = _call(svc, "lab_list", lab)
    assert v["role"] == "steward" and v["queued"] == facts["queued"], (v["role"], v["queued"])
    m = _call(svc, "lab_members", lab)
    assert len(m["members"]) == facts["members"], len(m["members"])


def bench_views(member_projects: int, queued: int, interleave: bool,
                seed: int) -> dict[str, Any]:  # fmt: skip
    fig: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="percolab-bench-") as tmp:
        store = Store(Path(tmp) / "store", map_size=1 << 32)
        ingest = Ingest(store, check_workers=0)
        try:
            svc = Service(Path(tmp) / "viewer", store, ingest)
            svc.call("init", {"name": "Viewer", "unencrypted": True})
            lab, facts = load_lab(svc, ingest, member_projects, queued, interleave, seed)
            fig |= facts
            _check(svc, lab, facts)

            def invalidate() -> None:  # a new decision of the lab: a member admitted
                who = public_key_bytes(Ed25519PrivateKey.generate()).hex()
                svc.call("lab_admit", {"lab": lab, "member": who})

            for method in VIEWS:
                fig[f"{method}_ms"] = _warm(partial(_call, svc, method, lab))
            for method in VIEWS:
                fig[f"{method}_cold_ms"] = _cold(partial(_call, svc, method, lab), invalidate)
            lab_id = bytes.fromhex(lab)
            scans = []
            for _ in range(COLD_RUNS):
                svc.governance.forget(lab_id)
                t = time.perf_counter()
                svc.governance.held(lab_id)
                scans.append((time.perf_counter() - t) * 1000)
            fig["held_scan_ms"] = round(statistics.median(scans), 2)
        finally:
            ingest.close()
            store.close()
    return fig


def _warm(call: Callable[[], Any]) -> float:
    call()  # the warm-up: the lab replayed, its held objects scanned
    times = []
    for _ in range(VIEW_RUNS):
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 2)


def _cold(call: Callable[[], Any], invalidate: Callable[[], None]) -> float:
    times = []
    for _ in range(COLD_RUNS):
        invalidate()
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decisions", type=int, default=10_000, help="decisions replayed")
    ap.add_argument("--queued", type=int, default=10_000, help="queued projects (the flood)")
    ap.add_argument("--member-projects", type=int, default=200, help="members' projects")
    ap.add_argument("--quick", action="store_true", help="a tenth of every size (under a minute)")
    ap.add_argument("--interleave", action="store_true",
                    help="mix the flood's timestamps with the members' (default: flood newest)")
    ap.add_argument("--json", action="store_true", help="figures as JSON on the last line")
    ap.add_argument("--seed", type=int, default=24)
    args = ap.parse_args()
    tenth = 10 if args.quick else 1
    fig = bench_replay(args.decisions // tenth, args.seed)
    fig["replay_ratio"] = _ratio(LIMIT_REPLAY_MS, fig["replay_ms"])
    fig |= bench_views(args.member_projects // tenth, args.queued // tenth, args.interleave,
                       args.seed)  # fmt: skip
    for method in VIEWS:
        fig[f"{method}_ratio"] = _ratio(LIMIT_VIEW_MS, fig[f"{method}_ms"])
        fig[f"{method}_cold_ratio"] = _ratio(LIMIT_VIEW_MS, fig[f"{method}_cold_ms"])
    _report(fig)
    if args.json:
        print(json.dumps(fig))


def _report(f: dict[str, Any]) -> None:
    print(f"replay of {f['decisions']} shuffled decisions (generated in "
          f"{f['decisions_generate_s']} s): {f['replay_ms']} ms median (min "
          f"{f['replay_min_ms']}), {f['replay_ratio']}x within the {LIMIT_REPLAY_MS:.0f} ms limit")
    print(f"  acts {f['acts']}")
    print(f"  effects {f['effects']}; {f['replay_stewards']} stewards, {f['replay_members']} "
          f"members, {f['replay_hidden']} hidden")
    print(f"members-only lab: {f['member_projects']} projects by {f['members'] - 1} members and "
          f"the viewer, {f['queued']} queued by {f['throwaway_keys']} throwaway keys "
          f"({f['order']}); signed in {f['sign_s']} s, loaded in {f['load_s']} s")
    for method in VIEWS:
        print(f"  {method:<12} warm {f[method + '_ms']:>8} ms ({f[method + '_ratio']}x the "
              f"{LIMIT_VIEW_MS:.0f} ms limit), cold {f[method + '_cold_ms']:>8} ms "
              f"({f[method + '_cold_ratio']}x)")
    print(f"  the lab's scan of its objects for its queue (Governance.held): "
          f"{f['held_scan_ms']} ms")


if __name__ == "__main__":
    main()
