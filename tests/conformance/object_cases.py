"""The object half of the conformance corpus: docs/conformance/objects.json.

Every rule of docs/protocol.md §1-5 at its edge, as object bytes and the verdict a receiver
must reach (docs/conformance/README.md explains the format and how to run it elsewhere).
Deterministic: fixed keys, timestamps and Ed25519 (deterministic) signatures, so
`python -m tests.conformance.object_cases` rewrites the file byte for byte, and the suite
checks the file is what this module makes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import errors, objects, topics
from protocols import identity as idn
from protocols.limits import MAX_FUTURE_SKEW_MS, MAX_OBJECT_BYTES, MAX_TS_MS
from tests.conformance import ed25519_cases

FORMAT = "percolab-conformance-objects/1"
OUT = Path(__file__).resolve().parents[2] / "docs" / "conformance" / "objects.json"
# The receiver's clock for every case (the deferral rule depends on it).
NOW_MS = 1_767_225_600_000
TS = NOW_MS - 60_000
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))  # docs/protocol.md §8's key
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
LAB = hashlib.sha256(b"percolab/conformance/lab").digest()
TARGET = hashlib.sha256(b"percolab/conformance/target").digest()
PARENT = hashlib.sha256(b"percolab/conformance/parent").digest()
# The extension kind the corpus declares (README.md): the only way to reach integer rules,
# as no core kind has an integer field.
EXTENSION_KIND = "conformance.counter"


def _sign(kind: str, body: dict[str, Any], *, ts: int = TS, key: Any = KEY) -> bytes:
    return objects.sign(key, kind, ts, body).raw


def _signed_v(v: int, kind: str, body: dict[str, Any]) -> bytes:
    """An envelope of version `v`, signed as every version signs (docs/protocol.md §1.2)."""
    author = objects.public_key_bytes(KEY)
    unsigned = msgpack.packb([v, kind, author, TS, objects.canonical(body)], use_bin_type=True)
    sig = KEY.sign(objects.SIGN_DOMAIN + unsigned)
    return bytes(msgpack.packb([v, kind, author, TS, objects.canonical(body), sig]))


def _envelope(items: list[Any]) -> bytes:
    return bytes(msgpack.packb(items, use_bin_type=True))


def _resigned_as(raw: bytes, author: bytes) -> bytes:
    """`raw` with its author replaced (the signature no longer matches)."""
    v, kind, _, ts, body, sig = msgpack.unpackb(raw)
    return _envelope([v, kind, author, ts, body, sig])


def profile(**change: Any) -> dict[str, Any]:
    return {"name": "Ada", "about": ""} | change


def lab(**change: Any) -> dict[str, Any]:
    return {"name": "Fablab", "description": "", "place": "Lyon", "theme": ""} | change


def project(**change: Any) -> dict[str, Any]:
    base = {"lab": LAB, "title": "Solar dryer", "summary": "", "body": "", "stage": "idea",
            "needs": []}  # fmt: skip
    return base | change


def comment(**change: Any) -> dict[str, Any]:
    return {"lab": LAB, "target": TARGET, "parent": None, "body": "Nice"} | change


def tag(**change: Any) -> dict[str, Any]:
    return {"lab": LAB, "target": TARGET, "labels": ["solar"]} | change


def _sized(size: int) -> bytes:
    """An object of an unknown kind exactly `size` bytes long (bin filler)."""
    probe = _signed_v(1, "x-blob", {"data": b"x" * 1000})
    raw = _signed_v(1, "x-blob", {"data": b"x" * (1000 + size - len(probe))})
    assert len(raw) == size
    return raw


class _Corpus:
    def __init__(self) -> None:
        self.cases: list[dict[str, str]] = []
        self.gossip: list[dict[str, str]] = []

    def add(self, name: str, rule: str, raw: bytes, verdict: str, code: str = "") -> None:
        case = {"name": name, "rule": rule, "hex": raw.hex(), "verdict": verdict}
        if code:
            case["code"] = code
        self.cases.append(case)

    def visible(self, name: str, rule: str, raw: bytes) -> None:
        self.add(name, rule, raw, "visible")

    def bad(self, err: type[errors.ObjectError], name: str, rule: str, raw: bytes) -> None:
        self.add(name, rule, raw, err.layer.value, err.code)


def _envelope_cases(c: _Corpus) -> None:
    good = _sign("profile", profile())
    v, kind, author, ts, body, sig = msgpack.unpackb(good)
    env = "§1 envelope"
    c.visible("envelope/profile", "§8 vector-style profile", good)
    for name, items in [
        ("five-items", [v, kind, author, ts, body]),
        ("seven-items", [v, kind, author, ts, body, sig, 0]),
        ("version-0", [0, kind, author, ts, body, sig]),
        ("version-65536", [65536, kind, author, ts, body, sig]),
        ("version-str", ["1", kind, author, ts, body, sig]),
        ("version-bool", [True, kind, author, ts, body, sig]),
        ("kind-bin", [v, kind.encode(), author, ts, body, sig]),
        ("kind-empty", [v, "", author, ts, body, sig]),
        ("kind-uppercase", [v, "Profile", author, ts, body, sig]),
        ("kind-starts-with-digit", [v, "1profile", author, ts, body, sig]),
        ("kind-33-chars", [v, "k" * 33, author, ts, body, sig]),
        ("kind-space", [v, "pro file", author, ts, body, sig]),
        ("author-31-bytes", [v, kind, author[:31], ts, body, sig]),
        ("author-str", [v, kind, author.hex(), ts, body, sig]),
        ("ts-str", [v, kind, author, str(ts), body, sig]),
        ("ts-bool", [v, kind, author, True, body, sig]),
        ("body-array", [v, kind, author, ts, [], sig]),
        ("sig-63-bytes", [v, kind, author, ts, body, sig[:63]]),
        ("sig-nil", [v, kind, author, ts, body, None]),
    ]:
        c.bad(errors.BadEnvelope, f"envelope/{name}", env, _envelope(items))
    c.bad(errors.BadEnvelope, "envelope/map", env, _envelope({"v": 1}))  # type: ignore[arg-type]
    for name, raw in [("empty", b""), ("reserved-byte", b"\xc1"), ("truncated", good[:-1]),
                      ("trailing-byte", good + b"\x00")]:  # fmt: skip
        c.bad(errors.Undecodable, f"envelope/undecodable-{name}", "§1 msgpack", raw)
    c.bad(errors.TooLarge, "size/65537", "§2 MAX_OBJECT_BYTES", _sized(MAX_OBJECT_BYTES + 1))
    c.add("size/65536", "§2 MAX_OBJECT_BYTES (inclusive)", _sized(MAX_OBJECT_BYTES), "opaque",
          errors.UnknownKind.code)  # fmt: skip
    canon = "§1.1 canonical encoding"
    wide_v = good[:1] + b"\xcc\x01" + good[2:]
    c.bad(errors.NonCanonical, "canonical/int-not-shortest", canon, wide_v)
    name_at = good.index(b"\xa3Ada")
    c.bad(errors.NonCanonical, "canonical/str8-for-short-str", canon,
          good[:name_at] + b"\xd9\x03Ada" + good[name_at + 4:])  # fmt: skip
    body_at = good.index(b"\x82\xa5about")
    swapped = b"\x82\xa4name\xa3Ada\xa5about\xa0"
    c.bad(errors.NonCanonical, "canonical/keys-unsorted", canon,
          good[:body_at] + swapped + good[body_at + len(swapped):])  # fmt: skip
    c.bad(errors.NonCanonical, "canonical/duplicate-key", canon,
          good[:body_at] + b"\x83\xa5about\xa0\xa4name\xa3Ada\xa4name\xa3Bob" +
          good[body_at + len(swapped):])  # fmt: skip
    model = "§1.1 value model"
    nested: Any = 1
    for _ in range(7):  # the body is level 1, these 7 arrays levels 2-8
        nested = [nested]
    c.add("depth/8-levels", "§2 MAX_DEPTH (inclusive)", _sign("x-deep", {"d": nested}),
          "opaque", errors.UnknownKind.code)  # fmt: skip
    c.bad(errors.TooDeep, "depth/9-levels", "§2 MAX_DEPTH", _sign("x-deep", {"d": [nested]}))
    c.bad(errors.ForbiddenType, "value/float", model, _sign("x-any", {"f": 1.5}))
    c.bad(errors.ForbiddenType, "value/ext", model, _sign("x-any", {"e": msgpack.ExtType(1, b"x")}))
    c.bad(errors.ForbiddenType, "value/int-map-key", model,
          _envelope([v, kind, author, ts, {1: "a"}, sig]))  # fmt: skip
    c.bad(errors.ForbiddenType, "value/bin-map-key", model,
          _envelope([v, kind, author, ts, {b"a": "a"}, sig]))  # fmt: skip
    c.add("value/all-types", model, _sign("x-any", {"a": [None, True, False, -1, 2**64 - 1,
          -(2**63), b"\x00", "é", {"k": {}}]}), "opaque", errors.UnknownKind.code)  # fmt: skip
    ts_rule = "§1 ts range"
    c.bad(errors.BadTimestamp, "ts/negative", ts_rule, _sign("profile", profile(), ts=-1))
    c.bad(errors.BadTimestamp, "ts/2^48", ts_rule, _sign("profile", profile(), ts=MAX_TS_MS + 1))
    c.visible("ts/0", ts_rule, _sign("profile", profile(), ts=0))
    scope = "§3 scope field"
    for name, value in [("31-bytes", LAB[:31]), ("hex-str", LAB.hex()), ("int", 0), ("array", [])]:
        c.bad(errors.BadScope, f"scope/lab-{name}", scope, _sign("project", project(lab=value)))
    c.bad(errors.BadScope, "scope/unknown-kind-lab-str", scope, _sign("x-note", {"lab": "x"}))
    sig_rule = "§1.2 signature"
    flipped = bytearray(good)
    flipped[-1] ^= 0x01
    c.bad(errors.BadSignature, "signature/bit-flip", sig_rule, bytes(flipped))
    other = objects.public_key_bytes(OTHER)
    c.bad(errors.BadSignature, "signature/other-author", sig_rule, _resigned_as(good, other))
    for case in ed25519_cases.cases():
        if case["verdict"] == "visible":
            c.visible(case["name"], case["rule"], bytes.fromhex(case["hex"]))
        else:
            c.bad(errors.BadSignature, case["name"], case["rule"], bytes.fromhex(case["hex"]))


def _layer_cases(c: _Corpus) -> None:
    clock = "§4 deferral"
    c.visible(
        "future/skew-limit", clock, _sign("profile", profile(), ts=NOW_MS + MAX_FUTURE_SKEW_MS)
    )
    c.bad(errors.FutureTimestamp, "future/skew-limit-plus-1", clock,
          _sign("profile", profile(), ts=NOW_MS + MAX_FUTURE_SKEW_MS + 1))  # fmt: skip
    c.bad(errors.FutureTimestamp, "future/one-year", clock,
          _sign("profile", profile(), ts=NOW_MS + 365 * 86_400_000))  # fmt: skip
    fwd = "§3.2 forward compatibility"
    c.bad(errors.UnknownKind, "opaque/unknown-kind", fwd, _sign("x.future", {"lab": LAB, "x": 1}))
    c.bad(errors.UnknownKind, "opaque/unknown-kind-dotted", fwd, _sign("org.example.note", {}))
    c.bad(errors.UnsupportedVersion, "opaque/version-2", fwd, _signed_v(2, "profile", profile()))
    c.bad(errors.UnsupportedVersion, "opaque/version-2-unknown-kind", fwd,
          _signed_v(2, "x.future", {"lab": LAB}))  # fmt: skip
    c.visible("fields/unknown-field-in-project", fwd,
              _sign("project", project(x_future="CC-BY-SA-4.0")))  # fmt: skip
    c.visible("fields/unknown-map-field-in-profile", fwd,
              _sign("profile", profile(links={"web": "https://example.org"})))  # fmt: skip
    c.visible(
        "fields/lab-in-profile", "§3 scope field: any kind", _sign("profile", profile(lab=LAB))
    )


def _kind_cases(c: _Corpus) -> None:
    ok, hide = c.visible, c.bad
    ok("kind/profile", "§3 profile", _sign("profile", profile()))
    ok("kind/lab", "§3 lab", _sign("lab", lab()))
    ok("kind/project", "§3 project", _sign("project", project(stage="prototype", needs=["glass"])))
    ok("kind/comment", "§3 comment", _sign("comment", comment()))
    ok(
        "kind/comment-reply-public",
        "§3 comment",
        _sign("comment", comment(lab=None, parent=PARENT)),
    )
    ok("kind/tag", "§3 tag", _sign("tag", tag(lab=None, labels=["solar", "open-data"])))
    ok("kind/retraction", "§3 retraction", _sign("retraction", {"lab": LAB, "target": TARGET}))
    s = "§3 schema"
    hide(errors.MissingField, "schema/profile-without-about", s, _sign("profile", {"name": "Ada"}))
    hide(errors.MissingField, "schema/retraction-without-target", s,
         _sign("retraction", {"lab": LAB}))  # fmt: skip
    hide(errors.BadFieldType, "schema/name-int", s, _sign("profile", profile(name=5)))
    hide(errors.BadFieldType, "schema/target-31-bytes", s, _sign("tag", tag(target=TARGET[:31])))
    hide(errors.BadFieldType, "schema/project-lab-nil", s, _sign("project", project(lab=None)))
    hide(errors.BadFieldType, "schema/label-int", s, _sign("tag", tag(labels=[1])))
    ok("limit/name-80", "§2 MAX_NAME_CHARS", _sign("profile", profile(name="é" * 80)))
    hide(errors.StringTooLong, "limit/name-81", s, _sign("profile", profile(name="é" * 81)))
    ok("limit/title-140", "§2", _sign("project", project(title="t" * 140)))
    hide(errors.StringTooLong, "limit/title-141", s, _sign("project", project(title="t" * 141)))
    ok("limit/needs-16", "§2", _sign("project", project(needs=[f"n{i}" for i in range(16)])))
    hide(errors.TooManyItems, "limit/needs-17", s,
         _sign("project", project(needs=[f"n{i}" for i in range(17)])))  # fmt: skip
    hide(errors.TooManyItems, "limit/labels-0", s, _sign("tag", tag(labels=[])))
    hide(errors.TooManyItems, "limit/labels-33", s,
         _sign("tag", tag(labels=[f"l{i}" for i in range(33)])))  # fmt: skip
    hide(errors.BadValue, "schema/stage-capitalised", s, _sign("project", project(stage="Idea")))
    hide(errors.BadValue, "schema/needs-duplicate", s,
         _sign("project", project(needs=["glass", "glass"])))  # fmt: skip
    hide(errors.BadValue, "schema/comment-parent-is-target", s,
         _sign("comment", comment(parent=TARGET)))  # fmt: skip
    text = "§2 text"
    for name, value in [
        ("empty", ""),
        ("space", " "),
        ("nbsp", "\xa0"),
        ("nel", "\x85"),
        ("bom", "\ufeff"),
        ("zwsp", "\u200b"),
        ("ideographic", "\u3000"),
    ]:
        hide(
            errors.EmptyString,
            f"text/blank-name-{name}",
            text,
            _sign("profile", profile(name=value)),
        )
    hide(errors.EmptyString, "text/blank-comment", text, _sign("comment", comment(body="\n\t ")))
    for name, value in [("newline", "a\nb"), ("tab", "a\tb"), ("cr", "a\rb"), ("nul", "a\x00b"),
                        ("del", "a\x7fb"), ("c1-nel", "a\x85b"), ("rlo", "a\u202eb"),
                        ("lri", "a\u2066b"), ("line-separator", "a\u2028b"),
                        ("zwsp", "a\u200bb"), ("word-joiner", "a\u2060b"),
                        ("bom", "a\ufeffb")]:  # fmt: skip
        hide(errors.BadText, f"text/name-{name}", text, _sign("profile", profile(name=value)))
    for name, value in [("rlo", "a\u202eb"), ("pdi", "a\u2069b"), ("cr", "a\r\nb"), ("c1", "\x9b")]:
        hide(errors.BadText, f"text/about-{name}", text, _sign("profile", profile(about=value)))
    for name, value in [
        ("newline-tab", "line 1\n\tline 2"),
        ("zwsp", "a\u200bb"),
        ("lrm", "a\u200eb"),
    ]:
        ok(f"text/about-{name}", text, _sign("profile", profile(about=value)))
    for name, value in [("zwj-emoji", "\U0001f469\u200d\U0001f527 Ada"), ("zwnj", "می\u200cخواهم"),
                        ("lrm", "Ada\u200e"), ("rtl", "مختبر")]:  # fmt: skip
        ok(f"text/name-{name}", text, _sign("profile", profile(name=value)))
    label = "§2 labels"
    for value in ("solar", "open-data", "x_2", "café", "हिन्दी", "ǆ", "日本", "٣d", "l" * 48):
        ok(f"label/ok-{value[:12]}", label, _sign("tag", tag(labels=[value])))
    for value in ("Solar", "x²", "½", "①", "ǅ", "-x", "_x", "a b", "a.b", "cafe\u0301", "\u0301a",
                  "l" * 49, "", "İ"):  # fmt: skip
        hide(errors.BadLabel, f"label/bad-{value[:12] or 'empty'}", label,
             _sign("tag", tag(labels=[value])))  # fmt: skip
    ext = f"§3.1 the corpus's extension kind {EXTENSION_KIND}"
    ok("extension/counter-100", ext, _sign(EXTENSION_KIND, {"lab": None, "n": 100}))
    hide(
        errors.IntOutOfRange,
        "extension/counter-101",
        ext,
        _sign(EXTENSION_KIND, {"lab": None, "n": 101}),
    )
    hide(errors.IntOutOfRange, "extension/counter-negative", ext,
         _sign(EXTENSION_KIND, {"lab": None, "n": -1}))  # fmt: skip


def _gossip_cases(c: _Corpus) -> None:
    lab_topic = topics.lab_topic(LAB)
    rule = "§5 topic = scope"
    for name, raw, topic, ok in [
        ("project-on-its-lab", _sign("project", project()), lab_topic, True),
        ("project-on-public", _sign("project", project()), topics.PUBLIC_TOPIC, False),
        ("project-on-other-lab", _sign("project", project()), topics.lab_topic(TARGET), False),
        ("profile-on-public", _sign("profile", profile()), topics.PUBLIC_TOPIC, True),
        ("profile-on-a-lab", _sign("profile", profile()), lab_topic, False),
        ("profile-with-lab-on-lab", _sign("profile", profile(lab=LAB)), lab_topic, True),
        ("profile-with-lab-on-public", _sign("profile", profile(lab=LAB)), topics.PUBLIC_TOPIC,
         False),
        ("unknown-kind-on-its-lab", _sign("x.future", {"lab": LAB}), lab_topic, True),
        ("unknown-kind-on-public", _sign("x.future", {"lab": LAB}), topics.PUBLIC_TOPIC, False),
        ("comment-nil-lab-on-public", _sign("comment", comment(lab=None)), topics.PUBLIC_TOPIC,
         True),
    ]:  # fmt: skip
        case = {"name": f"topic/{name}", "rule": rule, "topic": topic, "hex": raw.hex(),
                "verdict": "accepted" if ok else "rejected"}  # fmt: skip
        if not ok:
            case["code"] = topics.WRONG_TOPIC
        c.gossip.append(case)


def _identity_cases(c: _Corpus) -> None:
    """The identity kinds (docs/identity.md §3) and the `cert` field of every kind."""
    ok, hide, rule = c.visible, c.bad, "identity.md §3"
    member, other = objects.public_key_bytes(KEY), objects.public_key_bytes(OTHER)
    ok("cert/comment", rule, _sign("comment", comment(cert=PARENT)))
    hide(errors.BadFieldType, "cert/31-bytes", rule, _sign("profile", profile(cert=PARENT[:31])))
    hide(errors.BadFieldType, "cert/nil", rule, _sign("tag", tag(cert=None)))
    device = idn.device_body(KEY, member, OTHER, "laptop")
    ok("kind/device", rule, _sign("device", device))
    hide(errors.BadValue, "device/sig-over-other-root", rule,
         _sign("device", idn.device_body(OTHER, member, OTHER, "laptop")))  # fmt: skip
    hide(errors.BadValue, "device/sig-flipped", rule,
         _sign("device", device | {"device_sig": bytes(64)}))  # fmt: skip
    hide(errors.BadValue, "device/device-is-author", rule,
         _sign("device", idn.device_body(OTHER, member, OTHER, "x"), key=OTHER))  # fmt: skip
    hide(errors.EmptyString, "device/name-empty", rule, _sign("device", device | {"name": " "}))
    hide(errors.BadFieldType, "device/sig-63-bytes", rule,
         _sign("device", device | {"device_sig": device["device_sig"][:63]}))  # fmt: skip
    revoke = idn.revoke_body(member, other, TS, [TARGET], "lost")
    ok("kind/revoke", rule, _sign("revoke", revoke))
    ok("revoke/disown-256", rule, _sign("revoke", revoke | {
        "disown": [hashlib.sha256(bytes([i, 1])).digest() for i in range(256)]}))  # fmt: skip
    hide(errors.TooManyItems, "revoke/disown-257", rule, _sign("revoke", revoke | {
        "disown": [hashlib.sha256(i.to_bytes(2)).digest() for i in range(257)]}))  # fmt: skip
    hide(errors.IntOutOfRange, "revoke/since-negative", rule,
         _sign("revoke", revoke | {"since": -1}))  # fmt: skip
    contacts = [hashlib.sha256(bytes([i, 2])).digest() for i in range(8)]
    ok("kind/recovery", rule, _sign("recovery", idn.recovery_body(member, contacts[:3], 2)))
    ok("recovery/7-contacts", rule, _sign("recovery", idn.recovery_body(member, contacts[:7], 7)))
    hide(errors.TooManyItems, "recovery/8-contacts", rule,
         _sign("recovery", idn.recovery_body(member, contacts, 1)))  # fmt: skip
    hide(errors.TooManyItems, "recovery/no-contacts", rule,
         _sign("recovery", idn.recovery_body(member, [], 1)))  # fmt: skip
    hide(errors.BadValue, "recovery/threshold-above-contacts", rule,
         _sign("recovery", idn.recovery_body(member, contacts[:3], 4)))  # fmt: skip
    hide(errors.IntOutOfRange, "recovery/threshold-0", rule,
         _sign("recovery", idn.recovery_body(member, contacts[:3], 0)))  # fmt: skip
    hide(errors.BadValue, "recovery/member-is-contact", rule,
         _sign("recovery", idn.recovery_body(member, [member, other], 1)))  # fmt: skip
    hide(errors.BadValue, "recovery/duplicate-contact", rule, _sign("recovery", {
        "member": member, "contacts": [other, other], "threshold": 1}))  # fmt: skip
    voluntary = idn.voluntary_rotation_body(member, KEY, other)
    ok("kind/rotation-voluntary", rule, _sign("rotation", voluntary, key=OTHER))
    ok("kind/rotation-recovery", rule,
       _sign("rotation", idn.recovery_rotation_body(member, member), key=OTHER))  # fmt: skip
    hide(errors.BadValue, "rotation/voluntary-without-old-sig", rule,
         _sign("rotation", voluntary | {"old_sig": None}, key=OTHER))  # fmt: skip
    elsewhere = idn.voluntary_rotation_body(member, KEY, member)  # signed off for another key
    hide(errors.BadValue, "rotation/old-sig-for-another-new-root", rule,
         _sign("rotation", elsewhere, key=OTHER))  # fmt: skip
    hide(errors.BadValue, "rotation/recovery-with-old-sig", rule,
         _sign("rotation", voluntary | {"mode": "recovery"}, key=OTHER))  # fmt: skip
    hide(errors.BadValue, "rotation/old-is-author", rule,
         _sign("rotation", idn.recovery_rotation_body(member, member)))  # fmt: skip
    hide(errors.BadValue, "rotation/mode-unknown", rule,
         _sign("rotation", voluntary | {"mode": "forced"}, key=OTHER))  # fmt: skip
    ok("kind/endorsement", rule, _sign("endorsement", idn.endorsement_body(member, TARGET)))
    ok("endorsement/by-device", rule,
       _sign("endorsement", idn.endorsement_body(member, TARGET, PARENT)))  # fmt: skip
    hide(errors.MissingField, "endorsement/without-rotation", rule,
         _sign("endorsement", {"member": member}))  # fmt: skip


BUILDERS: list[Callable[[_Corpus], None]] = [
    _envelope_cases, _layer_cases, _kind_cases, _identity_cases, _gossip_cases,
]  # fmt: skip


def corpus() -> dict[str, Any]:
    c = _Corpus()
    for build in BUILDERS:
        build(c)
    names = [case["name"] for case in c.cases + c.gossip]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ValueError(f"duplicate case names: {sorted(dupes)}")
    return {
        "format": FORMAT,
        "now_ms": NOW_MS,
        "extension_kinds": {
            EXTENSION_KIND: {"lab": "ref?", "n": "integer 0..100", "scope_field": "lab"}
        },
        "objects": c.cases,
        "gossip": c.gossip,
    }


def render() -> str:
    return json.dumps(corpus(), indent=1, ensure_ascii=True) + "\n"


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render(), encoding="ascii")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
