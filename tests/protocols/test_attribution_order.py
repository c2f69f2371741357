"""Property: the attribution view is a function of the set of identity objects. Random
scenarios (members, devices, certificates, revocations, rotations of both modes, recovery
sets, endorsements, ordinary objects) give every object the same attribution whether the
identity objects are added at once, in any permutation, or in incremental batches with
queries in between."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import identity as idn
from protocols import objects
from protocols.attribution import Attribution, Directory
from protocols.objects import SignedObject

KEYS = [Ed25519PrivateKey.from_private_bytes(bytes([i + 1]) * 32) for i in range(8)]
PUBS = [objects.public_key_bytes(k) for k in KEYS]
MEMBERS = 4  # keys 0-3 are members' genesis roots; 4-7 new roots or devices
T0 = 1_767_225_600_000

_key = st.integers(0, len(KEYS) - 1)
_member = st.integers(0, MEMBERS - 1)
_ts = st.integers(0, 9)
_pick = st.integers(0, 1000)  # an index into earlier objects, modulo their number
OPS = st.one_of(
    st.tuples(st.just("cert"), _key, _member, _key, _ts),
    st.tuples(st.just("revoke"), _key, _member, _key, _ts, _ts, st.lists(_pick, max_size=2)),
    st.tuples(st.just("recovery"), st.one_of(st.none(), _key), _member,
              st.lists(_member, min_size=1, max_size=3, unique=True), st.integers(1, 2),
              st.integers(0, 4)),
    # old None: the member's genesis root (so rotations often chain, compete and dispute)
    st.tuples(st.just("rotation"), _key, _member, st.one_of(st.none(), _key), st.booleans(),
              _ts),
    # member None: the member the endorsed rotation names
    st.tuples(st.just("endorse"), st.one_of(_member, _key), st.one_of(st.none(), _member), _pick,
              st.one_of(st.none(), _pick), _ts),
    st.tuples(st.just("post"), _key, _ts, st.one_of(st.none(), _pick)),
    # a whole recovery: the set (by the genesis root), the rotation, and endorsements by the
    # listed keys (contacts' roots mostly: cycles between members who recover each other)
    st.tuples(st.just("recover"), _member, _key,
              st.lists(_member, min_size=1, max_size=3, unique=True), st.integers(1, 2),
              st.lists(_key, max_size=3), _ts, _ts, _ts),
)  # fmt: skip


def _sign(k: int, kind: str, body: dict[str, Any], ts: int) -> SignedObject:
    return objects.sign(KEYS[k], kind, T0 + ts * 60_000, body)


def build(ops: list[tuple[Any, ...]]) -> tuple[list[SignedObject], list[SignedObject]]:
    """Identity objects (hidden ones included: they must be ignored) and ordinary ones."""
    ident: list[SignedObject] = []
    posts: list[SignedObject] = []
    certs: list[bytes] = []
    rotations: list[SignedObject] = []
    for op in ops:
        kind = op[0]
        if kind == "cert":
            _, root, member, dev, ts = op
            if dev == root:
                continue
            body = idn.device_body(KEYS[root], PUBS[member], KEYS[dev], f"d{dev}")
            ident.append(_sign(root, "device", body, ts))
            certs.append(ident[-1].id)
        elif kind == "revoke":
            _, root, member, dev, since, ts, picks = op
            done = ident + posts
            disown = {done[p % len(done)].id for p in picks} if done else set()
            body = idn.revoke_body(PUBS[member], PUBS[dev], T0 + since * 60_000, disown)
            ident.append(_sign(root, "revoke", body, ts))
        elif kind == "recovery":
            _, root, member, contacts, threshold, ts = op
            root = member if root is None else root
            others = [PUBS[c] for c in contacts if c != member]
            if others:
                body = idn.recovery_body(PUBS[member], others, min(threshold, len(others)))
                ident.append(_sign(root, "recovery", body, ts))
        elif kind == "rotation":
            _, new, member, old, voluntary, ts = op
            old = member if old is None else old
            if new == old:
                continue
            body = (idn.voluntary_rotation_body(PUBS[member], KEYS[old], PUBS[new]) if voluntary
                    else idn.recovery_rotation_body(PUBS[member], PUBS[old]))  # fmt: skip
            ident.append(_sign(new, "rotation", body, ts))
            rotations.append(ident[-1])
        elif kind == "endorse":
            _, author, member, rot, cert, ts = op
            if rotations:
                c = None if cert is None or not certs else certs[cert % len(certs)]
                r = rotations[rot % len(rotations)]
                named = r.body["member"] if member is None else PUBS[member]
                body = idn.endorsement_body(named, r.id, c)
                ident.append(_sign(author, "endorsement", body, ts))
        elif kind == "recover":
            _, member, new, contacts, threshold, endorsers, t_set, t_rot, t_end = op
            others = [PUBS[c] for c in contacts if c != member]
            if others:
                body = idn.recovery_body(PUBS[member], others, min(threshold, len(others)))
                ident.append(_sign(member, "recovery", body, t_set))
            if new == member:
                continue
            body = idn.recovery_rotation_body(PUBS[member], PUBS[member])
            rotation = _sign(new, "rotation", body, t_rot)
            ident.append(rotation)
            rotations.append(rotation)
            for e in endorsers:
                body = idn.endorsement_body(PUBS[member], rotation.id)
                ident.append(_sign(e, "endorsement", body, t_end))
        else:
            _, author, ts, cert = op
            c = None if cert is None or not certs else certs[cert % len(certs)]
            posts.append(_sign(author, "profile", idn.with_cert({"name": "x", "about": ""}, c),
                               ts))  # fmt: skip
    return ident, posts


def _view(d: Directory, objs: list[SignedObject]) -> list[Attribution]:
    return [d.attribute_object(o) for o in objs]


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@PROPERTY
@given(ops=st.lists(OPS, min_size=1, max_size=18), data=st.data())
def test_any_order_and_batching_gives_the_same_view(ops: list[tuple[Any, ...]],
                                                   data: st.DataObject) -> None:  # fmt: skip
    ident, posts = build(ops)
    everything = ident + posts
    want = _view(Directory(ident), everything)
    perm = data.draw(st.permutations(ident), label="order")
    assert _view(Directory(perm), everything) == want
    cuts = sorted(data.draw(st.lists(st.integers(0, len(perm)), max_size=4), label="cuts"))
    d = Directory()
    start = 0
    for cut in [*cuts, len(perm)]:
        for obj in perm[start:cut]:
            d.add(obj)
        start = max(start, cut)
        _view(d, everything)  # queries between batches must not change the outcome
    assert _view(d, everything) == want
    for member in PUBS[:MEMBERS]:  # the other queries agree too
        assert d.member_keys(member) == Directory(ident).member_keys(member)
        assert d.status(member) == Directory(ident).status(member)


def test_the_generator_reaches_effective_recovery() -> None:
    """A sanity check of the strategy's vocabulary: a 1-of-1 recovery endorsed by a contact."""
    ops: list[tuple[Any, ...]] = [
        ("recovery", 0, 0, [1], 1, 1), ("rotation", 4, 0, None, False, 2),
        ("endorse", 1, None, 0, None, 3), ("post", 4, 4, None),
    ]  # fmt: skip
    ident, posts = build(ops)
    assert Directory(ident).attribute_object(posts[0]).member == PUBS[0]
