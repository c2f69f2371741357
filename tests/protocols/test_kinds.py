"""Kinds, field validation and limits, each at its edge; the extension registry."""

from __future__ import annotations

import uuid
from typing import Any

import msgpack
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import errors, kinds, limits, objects
from protocols.fields import Integer, Label, ListOf, ObjectRef, Text, normalize_label

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
TS = 1_700_000_000_000
LAB = bytes([0x11]) * 32
TARGET = bytes([0x22]) * 32
PARENT = bytes([0x33]) * 32


def base(kind: str) -> dict[str, Any]:
    """A valid body of each core kind."""
    return {
        "profile": {"name": "Ada", "about": ""},
        "lab": {"name": "Fablab", "description": "", "place": "", "theme": ""},
        "project": {
            "lab": LAB,
            "title": "Solar oven",
            "summary": "",
            "body": "",
            "stage": "idea",
            "needs": [],
        },
        "comment": {"lab": LAB, "target": TARGET, "parent": None, "body": "nice"},
        "tag": {"lab": LAB, "target": TARGET, "labels": ["solar"]},
        "retraction": {"lab": LAB, "target": TARGET},
    }[kind]


CORE = ("profile", "lab", "project", "comment", "tag", "retraction")


def check(kind: str, body: dict[str, Any], *, ts: int = TS, now: int = TS) -> None:
    """Sign and run the whole validation a node applies (decode + validate + verify)."""
    obj = objects.sign(KEY, kind, ts, body)
    again = objects.decode(obj.raw)
    kinds.validate(again, now)
    objects.check_signature(again)


def with_(kind: str, **changes: Any) -> dict[str, Any]:
    body = dict(base(kind))
    for k, v in changes.items():
        if v is _DROP:
            body.pop(k)
        else:
            body[k] = v
    return body


_DROP = object()


@pytest.mark.parametrize("kind", CORE)
def test_base_bodies_are_valid(kind: str) -> None:
    check(kind, base(kind))
    assert kind in kinds.registered_kinds()


# ---- object size ---------------------------------------------------------------------------


def _project_of_size(size: int) -> tuple[dict[str, Any], bytes]:
    """A project body whose signed object is exactly `size` bytes (3-byte '€' fills it)."""
    probe = with_("project", body="a" * 1000)
    overhead = len(objects.sign(KEY, "project", TS, probe).raw) - 1000
    n = size - overhead  # bytes of the body text (str16 header either way)
    text = "€" * (n // 3) + "a" * (n % 3)
    assert len(text) <= limits.MAX_BODY_CHARS
    body = with_("project", body=text)
    unsigned = msgpack.packb(
        [1, "project", objects.public_key_bytes(KEY), TS, objects.canonical(body)],
        use_bin_type=True,
    )
    sig = KEY.sign(objects.SIGN_DOMAIN + unsigned)
    raw = msgpack.packb(
        [1, "project", objects.public_key_bytes(KEY), TS, objects.canonical(body), sig],
        use_bin_type=True,
    )
    assert len(raw) == size
    return body, raw


def test_object_size_limit_exactly_at_the_limit_passes() -> None:
    body, raw = _project_of_size(limits.MAX_OBJECT_BYTES)
    obj = objects.sign(KEY, "project", TS, body)
    assert obj.raw == raw and len(raw) == limits.MAX_OBJECT_BYTES
    kinds.validate(objects.decode(raw), TS)
    assert objects.verify(objects.decode(raw))


def test_object_size_limit_one_over_fails() -> None:
    body, raw = _project_of_size(limits.MAX_OBJECT_BYTES + 1)
    with pytest.raises(errors.TooLarge):
        objects.sign(KEY, "project", TS, body)
    with pytest.raises(errors.TooLarge):
        objects.decode(raw)


# ---- string lengths ------------------------------------------------------------------------


def _text_fields() -> list[tuple[str, str, int]]:
    out = []
    for kind in CORE:
        for name, fld in kinds.kind_spec(kind).fields.items():
            if isinstance(fld, Text):
                out.append((kind, name, fld.max_chars))
    return out


EXPECTED_TEXT_LIMITS = {
    ("profile", "name"): limits.MAX_NAME_CHARS,
    ("profile", "about"): limits.MAX_ABOUT_CHARS,
    ("lab", "name"): limits.MAX_NAME_CHARS,
    ("lab", "description"): limits.MAX_ABOUT_CHARS,
    ("lab", "place"): limits.MAX_PLACE_CHARS,
    ("lab", "theme"): limits.MAX_PLACE_CHARS,
    ("project", "title"): limits.MAX_TITLE_CHARS,
    ("project", "summary"): limits.MAX_SUMMARY_CHARS,
    ("project", "body"): limits.MAX_BODY_CHARS,
    ("comment", "body"): limits.MAX_COMMENT_CHARS,
}


def test_text_fields_use_the_named_limits() -> None:
    assert {(k, n): m for k, n, m in _text_fields()} == EXPECTED_TEXT_LIMITS


@pytest.mark.parametrize(("kind", "name", "limit"), _text_fields())
def test_string_length_at_limit_passes_and_one_over_fails(kind, name, limit) -> None:
    check(kind, with_(kind, **{name: "é" * limit}))  # counted in code points, not bytes
    with pytest.raises(errors.StringTooLong):
        check(kind, with_(kind, **{name: "é" * (limit + 1)}))


def test_need_length_at_limit() -> None:
    check("project", with_("project", needs=["n" * limits.MAX_NEED_CHARS]))
    with pytest.raises(errors.StringTooLong):
        check("project", with_("project", needs=["n" * (limits.MAX_NEED_CHARS + 1)]))


@pytest.mark.parametrize(
    ("kind", "name"),
    [("profile", "name"), ("lab", "name"), ("project", "title"), ("comment", "body")],
)
def test_required_text_must_not_be_empty(kind, name) -> None:
    for empty in ("", "   "):
        with pytest.raises(errors.EmptyString):
            check(kind, with_(kind, **{name: empty}))


def test_control_characters_and_single_lines() -> None:
    with pytest.raises(errors.BadText):
        check("project", with_("project", title="a\x00b"))
    with pytest.raises(errors.BadText):
        check("project", with_("project", summary="a\x7fb"))
    with pytest.raises(errors.BadText):
        check("project", with_("project", title="two\nlines"))
    with pytest.raises(errors.BadText):
        check("project", with_("project", title="tab\there"))
    check("project", with_("project", summary="two\nlines\twith tab"))


# ---- lists and labels ----------------------------------------------------------------------


def test_needs_count_at_limit() -> None:
    needs = [f"need {i}" for i in range(limits.MAX_NEEDS)]
    check("project", with_("project", needs=needs))
    with pytest.raises(errors.TooManyItems):
        check("project", with_("project", needs=[*needs, "one more"]))
    with pytest.raises(errors.BadValue):
        check("project", with_("project", needs=["a", "a"]))
    with pytest.raises(errors.EmptyString):
        check("project", with_("project", needs=[" "]))


def test_labels_count_at_limit() -> None:
    labels = [f"l{i}" for i in range(limits.MAX_LABELS)]
    check("tag", with_("tag", labels=labels))
    with pytest.raises(errors.TooManyItems):
        check("tag", with_("tag", labels=[*labels, "extra"]))
    with pytest.raises(errors.TooManyItems):
        check("tag", with_("tag", labels=[]))
    with pytest.raises(errors.BadValue):
        check("tag", with_("tag", labels=["solar", "solar"]))


def test_label_length_at_limit() -> None:
    check("tag", with_("tag", labels=["a" * limits.MAX_LABEL_CHARS]))
    with pytest.raises(errors.BadLabel):
        check("tag", with_("tag", labels=["a" * (limits.MAX_LABEL_CHARS + 1)]))


@pytest.mark.parametrize("label", ["solar", "open-data", "a_b", "3d", "café", "x", "日本"])
def test_good_labels(label: str) -> None:
    check("tag", with_("tag", labels=[label]))
    assert normalize_label(label) == label


@pytest.mark.parametrize(
    "label",
    ["", "Solar", "-a", "_a", "a b", "a.b", "a#", "cafe\u0301", "a\n", "#solar", "ÉTÉ"],
)
def test_bad_labels(label: str) -> None:
    with pytest.raises(errors.BadLabel):
        check("tag", with_("tag", labels=[label]))


def test_label_not_a_string() -> None:
    with pytest.raises(errors.BadFieldType):
        check("tag", with_("tag", labels=[5]))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_normalized_labels_validate_or_fail_typed(text: str) -> None:
    label = normalize_label(text)
    try:
        kinds.validate_body(kinds.TAG, with_("tag", labels=[label]))
    except errors.ObjectError as exc:
        assert isinstance(exc, errors.BadLabel | errors.BadFieldType)


# ---- timestamps ----------------------------------------------------------------------------


def test_future_skew_exactly_at_the_limit_passes_and_one_more_fails() -> None:
    check("profile", base("profile"), ts=TS + limits.MAX_FUTURE_SKEW_MS, now=TS)
    with pytest.raises(errors.FutureTimestamp):
        check("profile", base("profile"), ts=TS + limits.MAX_FUTURE_SKEW_MS + 1, now=TS)
    check("profile", base("profile"), ts=0, now=TS)  # the past is fine


def test_ts_bounds() -> None:
    top = limits.MAX_TS_MS
    assert top == 2**48 - 1
    check("profile", base("profile"), ts=0)
    check("profile", base("profile"), ts=top, now=top)
    for ts in (-1, top + 1, -(2**63)):
        with pytest.raises(errors.BadTimestamp):
            check("profile", base("profile"), ts=ts, now=top)


# ---- fields: unknown, missing, types, nullable refs ----------------------------------------


@pytest.mark.parametrize("kind", CORE)
def test_unknown_fields_are_kept_unread(kind: str) -> None:
    """A field a later release adds is no error: the object is valid and keeps it."""
    obj = objects.sign(KEY, kind, TS, with_(kind, extra="x", zzz={"a": [1, b"b"]}))
    again = objects.decode(obj.raw)
    assert kinds.validate(again, TS) is kinds.kind_spec(kind)
    assert again.body["extra"] == "x" and again.raw == obj.raw


@pytest.mark.parametrize(("kind", "name"), [(k, n) for k in CORE for n in base(k)])
def test_missing_field(kind: str, name: str) -> None:
    with pytest.raises(errors.MissingField):
        check(kind, with_(kind, **{name: _DROP}))


@pytest.mark.parametrize(
    ("kind", "name", "value"),
    [
        ("profile", "name", 5),
        ("profile", "about", None),
        ("lab", "name", b"Fablab"),
        ("project", "lab", None),
        ("project", "title", ["t"]),
        ("project", "stage", 1),
        ("project", "needs", "mirrors"),
        ("project", "needs", {"a": 1}),
        ("project", "needs", [1]),
        ("comment", "target", None),
        ("comment", "parent", "x"),
        ("tag", "labels", "solar"),
        ("tag", "target", True),
        ("retraction", "target", None),
    ],
)
def test_wrong_types(kind: str, name: str, value: Any) -> None:
    with pytest.raises(errors.BadFieldType):
        check(kind, with_(kind, **{name: value}))


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("project", LAB.hex()),
        ("project", LAB[:31]),
        ("project", LAB + b"\0"),
        ("comment", 0),
        ("retraction", []),
        ("profile", "lab"),  # `lab` is the scope of every kind, declared or not
    ],
)
def test_scope_field_shape_is_an_envelope_rule(kind: str, value: Any) -> None:
    with pytest.raises(errors.BadScope):
        check(kind, with_(kind, lab=value))


def test_nullable_refs() -> None:
    check("comment", with_("comment", lab=None, parent=None))
    check("comment", with_("comment", parent=PARENT))
    check("tag", with_("tag", lab=None))
    check("retraction", with_("retraction", lab=None))
    with pytest.raises(errors.BadValue):  # a comment's parent is not its own target
        check("comment", with_("comment", parent=TARGET))


def test_stage_is_a_choice() -> None:
    for stage in kinds.STAGES:
        check("project", with_("project", stage=stage))
    with pytest.raises(errors.BadValue):
        check("project", with_("project", stage="Idea"))


def test_unknown_kind() -> None:
    with pytest.raises(errors.UnknownKind):
        check("no-such-kind", {})
    with pytest.raises(errors.UnknownKind):
        kinds.kind_spec("Project")


def test_scope() -> None:
    assert kinds.PROJECT.scope(base("project")) == LAB
    assert kinds.COMMENT.scope(with_("comment", lab=None)) == kinds.PUBLIC_SCOPE
    assert kinds.LAB.scope(base("lab")) == kinds.PUBLIC_SCOPE
    assert kinds.PROFILE.scope(base("profile")) == kinds.PUBLIC_SCOPE


def test_create_validates_before_returning() -> None:
    with pytest.raises(errors.MissingField):
        kinds.create(KEY, "project", with_("project", title=_DROP), TS)
    obj = kinds.create(KEY, "project", base("project"), TS)
    assert objects.verify(obj)


# ---- extension registry --------------------------------------------------------------------


def _no_thirteen(body: Any) -> None:
    if body.get("level") == 13:
        raise errors.BadValue("unlucky")


def test_extension_kind_registers_and_validates() -> None:
    name = f"test-ext-{uuid.uuid4().hex[:8]}"
    spec = kinds.register_kind(
        kinds.KindSpec(
            name,
            {
                "lab": ObjectRef(nullable=True),
                "about": ObjectRef(),
                "level": Integer(0, 100),
                "note": Text(20, required=False),
                "words": ListOf(Label(), 3),
            },
            lab_field="lab",
            target_field="about",
            refs=("about",),
            extra_check=_no_thirteen,
        )
    )
    assert name in kinds.registered_kinds() and kinds.kind_spec(name) is spec
    good = {"lab": LAB, "about": TARGET, "level": 100, "words": ["a", "b", "c"]}
    check(name, good)
    check(name, good | {"note": "n" * 20, "lab": None, "level": 0})
    assert spec.scope(good) == LAB
    assert spec.scope(good | {"lab": None}) == kinds.PUBLIC_SCOPE
    for bad, error in [
        (good | {"level": 101}, errors.IntOutOfRange),
        (good | {"level": -1}, errors.IntOutOfRange),
        (good | {"level": True}, errors.BadFieldType),
        (good | {"level": 13}, errors.BadValue),  # its extra_check
        (good | {"note": "n" * 21}, errors.StringTooLong),
        (good | {"words": ["a", "b", "c", "d"]}, errors.TooManyItems),
        ({k: v for k, v in good.items() if k != "level"}, errors.MissingField),
    ]:
        with pytest.raises(error):
            check(name, bad)
    check(name, good | {"extra": 1})  # fields of a later version of the kind: kept, unread
    # Registering the same name twice is refused, and the first spec stays.
    with pytest.raises(ValueError, match="already registered"):
        kinds.register_kind(kinds.KindSpec(name, {}))
    assert kinds.kind_spec(name) is spec


@pytest.mark.parametrize("kind", CORE)
def test_core_kinds_cannot_be_replaced(kind: str) -> None:
    spec = kinds.kind_spec(kind)
    with pytest.raises(ValueError):
        kinds.register_kind(kinds.KindSpec(kind, {}))
    assert kinds.kind_spec(kind) is spec


def test_integer_bounds_default_to_signed_64_bit() -> None:
    fld = Integer()
    fld.check("n", limits.MAX_INT)
    fld.check("n", limits.MIN_INT)
    for bad in (limits.MAX_INT + 1, limits.MIN_INT - 1):
        with pytest.raises(errors.IntOutOfRange):
            fld.check("n", bad)
