"""Labs without a chief (issue 24, docs/protocol.md §3.4): the kind `decision`.

A decision is a lab's act of self-government, signed by one member: admit, vouch, remove,
rules, endorse, approve, hide, unhide, suspend, unsuspend. Like every kind it is valid or not
from its bytes alone (each known act needs exactly its fields); *whether it takes effect* is
the view's question, computed by one deterministic replay of the lab's decisions
(protocols/lab_authority.py, docs/governance.md).

This module declares the fields and the per-act rule; protocols/kinds.py registers the kind
(it imports this module, never the reverse: no import circle).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocols import errors, identity
from protocols.fields import Choice, Field, Integer, ObjectRef, Record, Text, Token
from protocols.identity import Bin
from protocols.limits import (
    KEY_BYTES,
    MAX_ADMIT_VOUCHES,
    MAX_REASON_CHARS,
    MAX_RULE_ENTRIES,
    MIN_ADMIT_VOUCHES,
)

DECISION_KIND = "decision"

# Roles a decision names (`role`); any other token is valid and ignored by this release.
MEMBER = "member"
STEWARD = "steward"
ROLES = (MEMBER, STEWARD)
# How the lab shows what non-members post (`rules.posts`, `rules.replies`).
QUEUED = "queued"
SHOWN = "shown"
VISIBILITY = (QUEUED, SHOWN)

# The optional fields an act may need; `lab`, `act`, `reason` and `cert` go with any act.
ACT_FIELDS = ("subject", "target", "role", "rules")
# Known acts -> the fields of ACT_FIELDS each needs (all others of ACT_FIELDS must be absent:
# one decision, one meaning). An unknown act is valid with any of them (a later release's act).
ACTS: Mapping[str, tuple[str, ...]] = {
    "admit": ("subject", "role"),
    "vouch": ("subject",),
    "remove": ("subject", "role"),
    "rules": ("rules",),
    "endorse": ("target",),
    "approve": ("target",),
    "hide": ("target",),
    "unhide": ("target",),
    "suspend": ("subject",),
    "unsuspend": ("subject",),
}

# The lab's rules; a `rules` decision changes those it names (others unchanged). Keys this
# release does not declare are kept, unread (a later release may add rules).
RULES = Record(
    {
        "admit_vouches": Integer(MIN_ADMIT_VOUCHES, MAX_ADMIT_VOUCHES, required=False),
        "posts": Choice(VISIBILITY, required=False),
        "replies": Choice(VISIBILITY, required=False),
    },
    required=False,
    min_entries=1,
    max_entries=MAX_RULE_ENTRIES,
)

DECISION_FIELDS: dict[str, Field] = {
    "lab": ObjectRef(),
    "act": Token(),
    "subject": Bin(KEY_BYTES, required=False),  # a member id (attribution's member)
    "target": ObjectRef(required=False),
    "role": Token(required=False),
    "rules": RULES,
    "reason": Text(MAX_REASON_CHARS, required=False, multiline=True),
    "cert": identity.CERT,
}
DECISION_REFS = ("lab", "target", "cert")


def check_decision(body: Mapping[str, Any]) -> None:
    """The per-act rule (context-free): a known act has exactly the fields it needs among
    `subject`, `target`, `role`, `rules`. Runs after the fields' own checks."""
    needs = ACTS.get(body["act"])
    if needs is None:
        return
    for name in ACT_FIELDS:
        if name in needs:
            if name not in body:
                raise errors.MissingField(f"decision {body['act']!r} needs field {name!r}")
        elif name in body:
            raise errors.BadValue(f"decision {body['act']!r} takes no field {name!r}")


def decision_body(lab: bytes, act: str, *, subject: bytes | None = None,
                  target: bytes | None = None, role: str | None = None,
                  rules: Mapping[str, Any] | None = None, reason: str | None = None,
                  ) -> dict[str, Any]:  # fmt: skip
    """A decision's body with only the fields given (the others absent, as the rule wants)."""
    body: dict[str, Any] = {"lab": lab, "act": act}
    for name, value in (("subject", subject), ("target", target), ("role", role),
                        ("rules", None if rules is None else dict(rules)),
                        ("reason", reason)):  # fmt: skip
        if value is not None:
            body[name] = value
    return body
