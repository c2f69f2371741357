"""Object kinds: their body schemas, the extension registry and `validate`.

A kind is a `KindSpec`: the exact set of body fields with their types, which field names the
object's lab (its gossip topic and sync scope), which fields reference other objects, and an
optional extra check. New kinds are added with `register_kind` from any module, without
editing this one (see docs/extending.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from protocols import errors
from protocols.fields import Choice, Field, Label, ListOf, ObjectRef, Text
from protocols.limits import (
    MAX_ABOUT_CHARS,
    MAX_BODY_CHARS,
    MAX_COMMENT_CHARS,
    MAX_FUTURE_SKEW_MS,
    MAX_LABELS,
    MAX_NAME_CHARS,
    MAX_NEED_CHARS,
    MAX_NEEDS,
    MAX_PLACE_CHARS,
    MAX_SUMMARY_CHARS,
    MAX_TITLE_CHARS,
    MAX_TS_MS,
)
from protocols.objects import SignedObject, sign

# Objects that belong to no lab (profiles, labs themselves) live in the public scope.
PUBLIC_SCOPE = bytes(32)
STAGES = ("idea", "design", "prototype", "testing", "running", "done", "paused")


@dataclass(frozen=True)
class KindSpec:
    name: str
    fields: Mapping[str, Field]
    # Body field holding the lab id this object belongs to (None: always public scope).
    lab_field: str | None = None
    # Body field naming the object this one is about (comments, tags, retractions).
    target_field: str | None = None
    # Body fields that reference other objects (fetched by id when missing).
    refs: tuple[str, ...] = ()
    extra_check: Callable[[Mapping[str, Any]], None] | None = field(default=None)

    def scope(self, body: Mapping[str, Any]) -> bytes:
        if self.lab_field is None:
            return PUBLIC_SCOPE
        lab = body.get(self.lab_field)
        return lab if isinstance(lab, bytes) else PUBLIC_SCOPE


_REGISTRY: dict[str, KindSpec] = {}


def register_kind(spec: KindSpec) -> KindSpec:
    """Add a kind. Registering a name twice is an error (kinds are part of the protocol)."""
    if spec.name in _REGISTRY:
        raise ValueError(f"object kind {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def kind_spec(name: str) -> KindSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise errors.UnknownKind(f"unknown object kind {name!r}") from None


def registered_kinds() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def validate(obj: SignedObject, now_ms: int) -> KindSpec:
    """Check envelope values and the body against the kind's schema. Returns the spec."""
    if not 0 <= obj.ts <= MAX_TS_MS:
        raise errors.IntOutOfRange(f"ts={obj.ts} is outside [0, {MAX_TS_MS}]")
    if obj.ts > now_ms + MAX_FUTURE_SKEW_MS:
        ahead = (obj.ts - now_ms) // 1000
        raise errors.FutureTimestamp(
            f"ts is {ahead} s in the future; the limit is {MAX_FUTURE_SKEW_MS // 1000} s"
        )
    spec = kind_spec(obj.kind)
    validate_body(spec, obj.body)
    return spec


def validate_body(spec: KindSpec, body: Mapping[str, Any]) -> None:
    fields = spec.fields
    for name in body:
        if name not in fields:
            raise errors.UnknownField(f"{spec.name} has no field {name!r}")
    for name, qualified, fld in _checks(spec):
        if name not in body:
            if fld.required:
                raise errors.MissingField(f"{spec.name} needs field {name!r}")
            continue
        fld.check(qualified, body[name])
    if spec.extra_check is not None:
        spec.extra_check(body)


# id(spec) -> (spec, [(field, "kind.field", Field)]): the names used in error messages, built
# once per kind rather than once per field of every object (the ingest hot path).
_CHECKS: dict[int, tuple[KindSpec, list[tuple[str, str, Field]]]] = {}


def _checks(spec: KindSpec) -> list[tuple[str, str, Field]]:
    cached = _CHECKS.get(id(spec))
    if cached is None or cached[0] is not spec:
        cached = (spec, [(n, f"{spec.name}.{n}", f) for n, f in spec.fields.items()])
        _CHECKS[id(spec)] = cached
    return cached[1]


def _no_self_parent(body: Mapping[str, Any]) -> None:
    if body.get("parent") is not None and body.get("parent") == body.get("target"):
        raise errors.BadValue("comment.parent must be a comment, not the target itself")


PROFILE = register_kind(
    KindSpec(
        "profile",
        {
            "name": Text(MAX_NAME_CHARS, allow_empty=False),
            "about": Text(MAX_ABOUT_CHARS, multiline=True),
        },
    )
)
LAB = register_kind(
    KindSpec(
        "lab",
        {
            "name": Text(MAX_NAME_CHARS, allow_empty=False),
            "description": Text(MAX_ABOUT_CHARS, multiline=True),
            "place": Text(MAX_PLACE_CHARS),
            "theme": Text(MAX_PLACE_CHARS),
        },
    )
)
PROJECT = register_kind(
    KindSpec(
        "project",
        {
            "lab": ObjectRef(),
            "title": Text(MAX_TITLE_CHARS, allow_empty=False),
            "summary": Text(MAX_SUMMARY_CHARS, multiline=True),
            "body": Text(MAX_BODY_CHARS, multiline=True),
            "stage": Choice(STAGES),
            "needs": ListOf(Text(MAX_NEED_CHARS, allow_empty=False), MAX_NEEDS, unique=True),
        },
        lab_field="lab",
        refs=("lab",),
    )
)
COMMENT = register_kind(
    KindSpec(
        "comment",
        {
            "lab": ObjectRef(nullable=True),
            "target": ObjectRef(),
            "parent": ObjectRef(nullable=True),
            "body": Text(MAX_COMMENT_CHARS, allow_empty=False, multiline=True),
        },
        lab_field="lab",
        target_field="target",
        refs=("target", "parent"),
        extra_check=_no_self_parent,
    )
)
TAG = register_kind(
    KindSpec(
        "tag",
        {
            "lab": ObjectRef(nullable=True),
            "target": ObjectRef(),
            "labels": ListOf(Label(), MAX_LABELS, min_items=1, unique=True),
        },
        lab_field="lab",
        target_field="target",
        refs=("target",),
    )
)
RETRACTION = register_kind(
    KindSpec(
        "retraction",
        {"lab": ObjectRef(nullable=True), "target": ObjectRef()},
        lab_field="lab",
        target_field="target",
    )
)


def create(key: Any, kind: str, body: Mapping[str, Any], ts: int) -> SignedObject:
    """Sign a new object as `key` (an Ed25519PrivateKey) and validate it before anyone sees it."""
    obj = sign(key, kind, ts, body)
    validate(obj, ts)
    return obj
