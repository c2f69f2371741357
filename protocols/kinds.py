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

from protocols import errors, governance, identity, living
from protocols.fields import Field, Label, ListOf, ObjectRef, Text
from protocols.limits import (
    MAX_ABOUT_CHARS,
    MAX_COMMENT_CHARS,
    MAX_FUTURE_SKEW_MS,
    MAX_LABELS,
    MAX_NAME_CHARS,
    MAX_PLACE_CHARS,
)
from protocols.objects import VERSION, SignedObject, decode, sign

# Optional on every kind: the `device` certificate of an author that signs as a device
# (docs/identity.md). Version 2 of the six first kinds added it.
CERT = identity.CERT

# Objects that belong to no lab (profiles, labs themselves) live in the public scope.
PUBLIC_SCOPE = bytes(32)
# The one body field every kind uses for its lab (scope); objects.decode checks its shape.
SCOPE_FIELD = "lab"
STAGES = living.STAGES


def scope_of(body: Mapping[str, Any]) -> bytes:
    """The sync scope and gossip topic of any object, known kind or not: the body's `lab`
    field when it holds a lab id, else the public scope (docs/protocol.md §3)."""
    lab = body.get(SCOPE_FIELD)
    return lab if type(lab) is bytes else PUBLIC_SCOPE


@dataclass(frozen=True)
class KindSpec:
    name: str
    fields: Mapping[str, Field]
    # The kind declares the scope field `lab` ("lab" or None). The scope itself is the same
    # rule for every kind (`scope_of`), so it never depends on knowing the kind.
    lab_field: str | None = None
    # Body field naming the object this one is about (comments, tags, retractions).
    target_field: str | None = None
    # Body fields that reference other objects (fetched by id when missing).
    refs: tuple[str, ...] = ()
    extra_check: Callable[[Mapping[str, Any]], None] | None = field(default=None)
    # Bumped by a release that adds rules to a registered kind (a new optional field): a node
    # re-checks its stored objects of the kind once when it sees a new version
    # (node/store/unindexed.py).
    version: int = 1
    # A check of the whole object, for rules that read the envelope too (an identity
    # certificate's signature binds its author: protocols/identity.py). Still context-free:
    # the object's bytes alone decide. Runs after the body's fields and `extra_check`.
    object_check: Callable[[SignedObject], None] | None = field(default=None)

    def scope(self, body: Mapping[str, Any]) -> bytes:
        return scope_of(body)


_REGISTRY: dict[str, KindSpec] = {}


def register_kind(spec: KindSpec) -> KindSpec:
    """Add a kind. Registering a name twice is an error (kinds are part of the protocol)."""
    if spec.name in _REGISTRY:
        raise ValueError(f"object kind {spec.name!r} is already registered")
    if spec.lab_field not in (None, SCOPE_FIELD):
        raise ValueError(f"the scope field of every kind is {SCOPE_FIELD!r}")
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
    """The checks after the envelope and signature (docs/protocol.md §4, steps 5-7): the
    timestamp against the receiver's clock, then the kind, then its schema. Returns the spec.
    `protocols.validity.check` runs the whole order, signature included."""
    if obj.ts > now_ms + MAX_FUTURE_SKEW_MS:
        ahead = (obj.ts - now_ms) // 1000
        raise errors.FutureTimestamp(
            f"ts is {ahead} s in the future; the limit is {MAX_FUTURE_SKEW_MS // 1000} s"
        )
    return understand(obj)


def understand(obj: SignedObject) -> KindSpec:
    """Whether this release understands an (envelope-valid) object: envelope version, kind,
    schema. Raises an OPAQUE or HIDE layer error otherwise."""
    if obj.v != VERSION:
        raise errors.UnsupportedVersion(
            f"envelope version {obj.v} is newer than this release ({VERSION})"
        )
    spec = kind_spec(obj.kind)
    try:
        validate_body(spec, obj.body)
        if spec.object_check is not None:
            spec.object_check(obj)
    except errors.SchemaError:
        raise
    except errors.ObjectError as exc:  # an extension's extra_check: still only a schema rule
        raise errors.BadValue(str(exc)) from exc
    return spec


def validate_body(spec: KindSpec, body: Mapping[str, Any]) -> None:
    """Check the fields `spec` declares. Fields it does not declare are kept, unread: a later
    release of the kind may add them (docs/protocol.md §3, "Forward compatibility")."""
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
            "cert": CERT,
        },
        refs=("cert",),
        version=2,
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
            "cert": CERT,
        },
        refs=("cert",),
        version=2,
    )
)
PROJECT = register_kind(
    KindSpec(
        "project",
        # title..needs since version 1, cert since 2, licence, coauthors, derives since 3
        # (protocols/living.py): every field but lab and cert is revisable.
        {"lab": ObjectRef(), **living.PROJECT_FIELDS, "cert": CERT},
        lab_field="lab",
        refs=("lab", "cert"),
        version=3,
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
            "cert": CERT,
        },
        lab_field="lab",
        target_field="target",
        refs=("target", "parent", "cert"),
        extra_check=_no_self_parent,
        version=2,
    )
)
TAG = register_kind(
    KindSpec(
        "tag",
        {
            "lab": ObjectRef(nullable=True),
            "target": ObjectRef(),
            "labels": ListOf(Label(), MAX_LABELS, min_items=1, unique=True),
            "cert": CERT,
        },
        lab_field="lab",
        target_field="target",
        refs=("target", "cert"),
        version=2,
    )
)
RETRACTION = register_kind(
    KindSpec(
        "retraction",
        {"lab": ObjectRef(nullable=True), "target": ObjectRef(), "cert": CERT},
        lab_field="lab",
        target_field="target",
        refs=("cert",),
        version=2,
    )
)

# Living projects (issue 23, docs/protocol.md §3.3), declared in protocols/living.py.
REVISION = register_kind(
    KindSpec(
        living.REVISION_KIND,
        living.REVISION_FIELDS,
        lab_field="lab",
        target_field="target",
        refs=living.REVISION_REFS,
    )
)
PLEDGE = register_kind(
    KindSpec(
        living.PLEDGE_KIND,
        living.PLEDGE_FIELDS,
        lab_field="lab",
        target_field="target",
        refs=living.PLEDGE_REFS,
    )
)


# Lab governance (issue 24, docs/protocol.md §3.4), declared in protocols/governance.py. No
# target_field: a decision's `target` is optional (and for `endorse`, another decision), so
# decisions are not listed among the objects about their target.
DECISION = register_kind(
    KindSpec(
        governance.DECISION_KIND,
        governance.DECISION_FIELDS,
        lab_field="lab",
        refs=governance.DECISION_REFS,
        extra_check=governance.check_decision,
    )
)


def create(key: Any, kind: str, body: Mapping[str, Any], ts: int) -> SignedObject:
    """Sign a new object as `key` (an Ed25519PrivateKey) and check it before anyone sees it:
    every envelope rule, and the kind's schema (a member never publishes what would be hidden).
    """
    obj = sign(key, kind, ts, body)
    decode(obj.raw, oid=obj.id)
    validate(obj, ts)
    return obj


# The identity kinds (docs/identity.md), declared in protocols/identity.py.
IDENTITY_SPECS = tuple(
    register_kind(
        KindSpec(k.name, k.fields, refs=k.refs, extra_check=k.extra_check,
                 object_check=k.object_check)
    )
    for k in identity.KINDS
)  # fmt: skip
