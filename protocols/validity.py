"""The verdict on received bytes: every check, in the order docs/protocol.md §4 fixes.

    size -> decode (envelope, value model, canonical bytes) -> signature
         -> timestamp against the receiver's clock -> envelope version -> kind -> schema

The first failing check names the verdict. Failures of the first three steps and of the
fourth are raised (`errors.Layer.REJECT`: nobody stores or relays the bytes; `DEFER`: not yet).
The later steps never raise: an object this release does not understand, or one that breaks
its known kind's schema, is still stored, relayed and reconciled ("validity is context-free":
every release keeps the same set), and the verdict says why it is not shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols import errors, kinds
from protocols.objects import SignedObject, decode, verify


@dataclass(frozen=True)
class Verdict:
    obj: SignedObject
    # The kind's spec when this release understands the object and it keeps the schema.
    spec: kinds.KindSpec | None
    # None for a visible object; else the OPAQUE or HIDE code that keeps it from view.
    code: str | None = None
    reason: str = ""

    @property
    def layer(self) -> errors.Layer | None:
        return None if self.code is None else errors.layer_of(self.code)


def check(raw: bytes, now_ms: int, *, oid: bytes | None = None) -> Verdict:
    """Run every check on `raw`; raises the REJECT or DEFER error of the first that fails."""
    obj = decode(raw, oid=oid)
    if not verify(obj):
        raise errors.BadSignature("signature does not match the author's key")
    try:
        spec = kinds.validate(obj, now_ms)
    except errors.ObjectError as exc:
        if exc.layer in (errors.Layer.OPAQUE, errors.Layer.HIDE):
            return Verdict(obj, None, exc.code, str(exc))
        raise
    return Verdict(obj, spec)


def understood(obj: SignedObject) -> Verdict:
    """The verdict on an object already accepted as an envelope (stored, or checked by a
    worker process): does this release understand it, and does it keep its kind's schema?"""
    try:
        return Verdict(obj, kinds.understand(obj))
    except errors.ObjectError as exc:
        return Verdict(obj, None, exc.code, str(exc))
