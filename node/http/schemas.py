"""JSON schemas (OpenAPI 3.0 dialect) of the API's bodies; node/http/validate.py enforces the
request-body ones, so what the description promises is what is checked."""

from __future__ import annotations

from typing import Any

from protocols.governance import ACTS, ROLES, VISIBILITY
from protocols.kinds import STAGES
from protocols.lab_authority import EFFECTS
from protocols.limits import (
    MAX_ADMIT_VOUCHES,
    MAX_BODY_CHARS,
    MAX_COAUTHORS,
    MAX_COMMENT_CHARS,
    MAX_DERIVE_NOTE_CHARS,
    MAX_LABEL_CHARS,
    MAX_LABELS,
    MAX_LICENCE_CHARS,
    MAX_NAME_CHARS,
    MAX_NEED_CHARS,
    MAX_NEEDS,
    MAX_OBJECT_BYTES,
    MAX_PLEDGE_NOTE_CHARS,
    MAX_REASON_CHARS,
    MAX_REVISION_NOTE_CHARS,
    MAX_SUMMARY_CHARS,
    MAX_TITLE_CHARS,
    MAX_TOKEN_CHARS,
    MIN_ADMIT_VOUCHES,
)

ID = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
REF = {"type": "string", "minLength": 8, "maxLength": 64, "pattern": "^[0-9a-fA-F]{8,64}$",
       "description": "an object id or a unique prefix of at least 8 hex characters"}  # fmt: skip
NULLABLE_STR = {"type": "string", "nullable": True}
_STRS = {"type": "array", "items": {"type": "string"}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any], required: list[str], extra: bool = True) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required,
            "additionalProperties": extra}  # fmt: skip


_OBJECT_PROPS = {
    "id": ID,
    "kind": {"type": "string"},
    "author": ID,
    "author_name": NULLABLE_STR,
    "ts": {"type": "integer"},
    "member": {"type": "string", "nullable": True, "pattern": "^[0-9a-f]{64}$",
               "description": "the member the object speaks for (docs/identity.md); null "
               "when unattributed or pending"},
    "attribution": {"type": "string", "enum": ["member", "unattributed", "disputed", "pending"]},
    "raw": {"type": "string", "nullable": True, "format": "byte",
            "description": "base64 of the signed object (verify it yourself); null if withdrawn"},
    # Labs without a chief (docs/governance.md): how this node shows the object.
    "moderation": {"type": "string", "enum": ["shown", "queued", "hidden"],
                   "description": "queued: waiting for its lab's approval (listed to its "
                   "author, and with show_hidden); hidden: by a steward of its lab or by this "
                   "node (listed only with show_hidden)"},
    "hidden_by": {"type": "string", "nullable": True,
                  "description": "the member id of the steward who hid it, or \"node\""},
    "hidden_reason": NULLABLE_STR,
}
_OBJECT_REQ = ["id", "kind", "author", "author_name", "ts", "member", "attribution"]
_MS = {"type": "integer", "nullable": True}
_LICENCE = {"type": "string", "maxLength": MAX_LICENCE_CHARS,
            "description": 'an SPDX licence expression, "all rights reserved", or "" (none)'}


def _list(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


# A project's living fields (issue 23): its current state after revisions, pledges.
_LIVING_PROPS: dict[str, Any] = {
    "licence": _LICENCE, "licence_known": {"type": "boolean"},
    "coauthors": _list(_obj({"member": ID, "name": NULLABLE_STR}, ["member", "name"])),
    "derives": _list(_obj({"project": ID, "how": {"type": "string"},
                           "how_label": {"type": "string"}, "note": {"type": "string"},
                           "title": NULLABLE_STR, "lab_name": NULLABLE_STR},
                          ["project", "how", "note", "title", "lab_name"])),
    "revised_ts": _MS, "revisions": {"type": "integer"}, "pledges": {"type": "integer"},
    "updated": {"type": "integer", "description": "ts of the newest of the project, its "
                "revisions and pledges"},
}


def _view(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return _obj(_OBJECT_PROPS | props, _OBJECT_REQ + required)


def _items(schema: dict[str, Any], paged: bool = False) -> dict[str, Any]:
    props: dict[str, Any] = {"items": {"type": "array", "items": schema}}
    if paged:
        props["next"] = {"type": "string", "nullable": True,
                         "description": "cursor of the next page; null on the last"}  # fmt: skip
    return _obj(props, ["items", "next"] if paged else ["items"])


def _nullable(name: str) -> dict[str, Any]:
    return {"allOf": [_ref(name)], "nullable": True}


# Labs without a chief (docs/rpc.md): members, log, queue, and the decisions one may post.
_RULES = {"admit_vouches": {"type": "integer", "minimum": MIN_ADMIT_VOUCHES,
                            "maximum": MAX_ADMIT_VOUCHES},
          "posts": {"type": "string", "enum": list(VISIBILITY)},
          "replies": {"type": "string", "enum": list(VISIBILITY)}}  # fmt: skip
_MEMBER_REF = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS,
               "description": "member id (64 hex) or a unique known member name"}  # fmt: skip
_REASON = {"type": "string", "maxLength": MAX_REASON_CHARS}
# act -> (the RPC's fields besides `act`, those required)
_DECISION_FIELDS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "admit": ({"member": _MEMBER_REF, "role": {"type": "string", "enum": list(ROLES)}},
              ["member"]),
    "remove": ({"member": _MEMBER_REF, "role": {"type": "string", "enum": list(ROLES)},
                "reason": _REASON}, ["member"]),
    "vouch": ({"member": _MEMBER_REF}, ["member"]),
    "suspend": ({"member": _MEMBER_REF, "reason": _REASON}, ["member"]),
    "unsuspend": ({"member": _MEMBER_REF}, ["member"]),
    "rules": ({"rules": _obj(_RULES, [], extra=False) | {"minProperties": 1}}, ["rules"]),
    "endorse": ({"target": REF | {"description": "the proposal (a decision)"}}, ["target"]),
    "approve": ({"target": REF}, ["target"]),
    "hide": ({"target": REF, "reason": _REASON}, ["target"]),
    "unhide": ({"target": REF}, ["target"]),
}
assert set(_DECISION_FIELDS) == set(ACTS)
_GOVERNANCE: dict[str, dict[str, Any]] = {
    "MemberRef": _obj({"member": ID, "name": NULLABLE_STR, "fingerprint": {"type": "string"}},
                      ["member", "name", "fingerprint"]),
    "Newcomer": _obj({"member": _ref("MemberRef"), "vouchers": _list(_ref("MemberRef"))},
                     ["member", "vouchers"]),
    "LabRules": _obj(_RULES, list(_RULES)),
    "Proposal": _obj({"id": ID, "act": {"type": "string"}, "by": _ref("MemberRef"),
                      "subject": _nullable("MemberRef"),
                      "rules": {"type": "object", "nullable": True},
                      "backing": {"type": "integer"}, "needed": {"type": "integer"}},
                     ["id", "act", "by", "subject", "rules", "backing", "needed"]),
    "LabMembers": _obj({"lab": ID, "stewards": _list(_ref("MemberRef")),
                        "members": _list(_ref("MemberRef")),
                        "suspended": _list(_ref("MemberRef")),
                        "newcomers": _list(_ref("Newcomer")), "rules": _ref("LabRules"),
                        "role": {"type": "string", "nullable": True, "enum": list(ROLES)},
                        "proposals": _list(_ref("Proposal"))},
                       ["lab", "stewards", "members", "suspended", "newcomers", "rules", "role",
                        "proposals"]),
    "LogEntry": _obj({"id": ID, "ts": {"type": "integer"}, "by": _nullable("MemberRef"),
                      "act": {"type": "string"},
                      "effect": {"type": "string", "enum": list(EFFECTS)},
                      "subject": _nullable("MemberRef"), "target": ID | {"nullable": True},
                      "role": NULLABLE_STR, "rules": {"type": "object", "nullable": True},
                      "reason": NULLABLE_STR},
                     ["id", "ts", "by", "act", "effect", "subject", "target", "role", "rules",
                      "reason"]),
    "LabLog": _obj({"entries": _list(_ref("LogEntry")),
                    "next": {"type": "string", "nullable": True,
                             "description": "cursor of the next (older) page; null on the "
                             "last"}}, ["entries", "next"]),
    "LabQueue": _obj({"objects": _list(_ref("Object")), "newcomers": _list(_ref("Newcomer")),
                      "total": {"type": "integer", "description": "objects waiting in all"},
                      "next": {"type": "string", "nullable": True,
                               "description": "cursor of the next (older) page; null on the "
                               "last"}}, ["objects", "newcomers", "total", "next"]),
    "NewDecision": {"oneOf": [
        _obj({"act": {"type": "string", "enum": [act]}} | props, ["act", *req], extra=False)
        for act, (props, req) in _DECISION_FIELDS.items()],
        "description": "a decision of the lab, signed by this node's member: `act` and the "
        "fields it takes (docs/governance.md)"},
}  # fmt: skip


SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": _obj({"error": {"type": "string"}, "message": {"type": "string"},
                   "code": {"type": "string", "description": "for invalid_object: the verdict "
                            "code of docs/protocol.md section 4 (e.g. bad_signature)"}},
                  ["error", "message"], extra=False),
    "Object": _view({}, []),
    "Lab": _view({"name": {"type": "string"}, "description": {"type": "string"},
                  "place": {"type": "string"}, "followed": {"type": "boolean"},
                  "projects": {"type": "integer"},
                  "role": {"type": "string", "nullable": True, "enum": list(ROLES),
                           "description": "this node's member's role in the lab"},
                  "queued": {"type": "integer",
                             "description": "objects and newcomers waiting (for members)"},
                  "short_id": {"type": "string"},
                  "name_clash": {"type": "boolean", "description": "another known lab has "
                                 "the same or a confusable name: show `name (short_id)`"}},
                 ["name", "followed", "projects"]),
    "Project": _view({"lab": ID, "lab_name": NULLABLE_STR, "title": {"type": "string"},
                      "summary": {"type": "string"}, "body": {"type": "string"},
                      "stage": {"type": "string"}, "needs": _STRS, "tags": _STRS,
                      "comments": {"type": "integer"}, "activity": {"type": "integer"},
                      **_LIVING_PROPS},
                     ["lab", "title", "stage", "tags", "comments", "activity",
                      *_LIVING_PROPS]),
    "Comment": _view({"target": ID, "parent": {"type": "string", "nullable": True},
                      "body": {"type": "string"},
                      "replies": {"type": "array", "items": _ref("Comment")}},
                     ["target", "parent", "body", "replies"]),
    "Tag": _view({"target": ID, "labels": _STRS}, ["target", "labels"]),
    "LabList": _items(_ref("Lab")),
    "ProjectPage": _obj({"items": {"type": "array", "items": _ref("Project")},
                         "next": {"type": "string", "nullable": True},
                         "total": {"type": "integer", "nullable": True}},
                        ["items", "next", "total"]),
    "ObjectPage": _items(_ref("Object"), paged=True),
    "ProjectList": _items(_ref("Project")),
    "Thread": _obj({"project": _ref("Project"),
                    "tags": {"type": "array", "items": _ref("Tag")},
                    "comments": {"type": "array", "items": _ref("Comment")},
                    "pledges": _list(_ref("Pledge")),
                    "needs": _list(_obj({"need": {"type": "string"},
                                         "pledges": _list(_ref("Pledge"))}, ["need", "pledges"])),
                    "lineage": _ref("Lineage")},
                   ["project", "tags", "comments", "pledges", "needs", "lineage"]),
    "Pledge": _view({"lab": ID | {"nullable": True}, "target": ID, "type": {"type": "string"},
                     "type_label": {"type": "string"}, "need": NULLABLE_STR,
                     "note": {"type": "string"}, "project_title": NULLABLE_STR,
                     "made": {"type": "boolean", "description": "(lab and member lists) "
                              "made by the lab's creator or the member"},
                     "received": {"type": "boolean", "description": "(lab and member "
                                  "lists) on a project of the lab, or of the member"}},
                    ["target", "type", "type_label", "need", "note", "project_title"]),
    "PledgeList": _items(_ref("Pledge")),
    "History": _obj({"project": ID, "heads": _list(ID), "total": {"type": "integer"},
                     "entries": _list(_ref("HistoryEntry")),
                     "next": {"type": "integer", "nullable": True,
                              "description": "`before` of the previous (older) page; null "
                              "on the first"}},
                    ["project", "heads", "total", "entries", "next"]),
    "HistoryEntry": _obj({
        "index": {"type": "integer"}, "id": ID, "ts": {"type": "integer"},
        "member": ID | {"nullable": True}, "author_name": NULLABLE_STR,
        "supersedes": _list(ID),
        "changes": {"type": "object", "additionalProperties": _obj(
            {"old": {}, "new": {}}, ["old", "new"])},
        "note": {"type": "string"},
        "effect": {"type": "string", "enum": ["applied", "not_author", "removed_concurrently",
                                              "forged_link", "wrong_lab", "waiting"]}},
        ["index", "id", "ts", "member", "author_name", "supersedes", "changes", "note",
         "effect"]),
    "Lineage": _obj({"ancestors": _list(_ref("Relative")),
                     "descendants": _list(_ref("Relative"))}, ["ancestors", "descendants"]),
    "Relative": _obj({"project": ID, "how": {"type": "string"},
                      "how_label": {"type": "string"}, "note": {"type": "string"},
                      "title": NULLABLE_STR, "lab": ID | {"nullable": True},
                      "lab_name": NULLABLE_STR, "depth": {"type": "integer"},
                      "via": ID | {"nullable": True}},
                     ["project", "how", "how_label", "note", "title", "lab", "lab_name",
                      "depth", "via"]),
    "TagCounts": _items(_obj({"label": {"type": "string"}, "count": {"type": "integer"}},
                             ["label", "count"])),
    "Status": _obj({"running": {"type": "boolean"}, "objects": {"type": "integer"},
                    "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "peer_id": {"type": "string"}, "addrs": _STRS,
                    "peers": {"type": "integer"}, "http": {"type": "string"}},
                   ["running", "objects", "counts"]),
    "Member": _obj({
        "member": ID, "fingerprint": {"type": "string"},
        "status": {"type": "string", "enum": ["ok", "disputed"]}, "disputed_since": _MS,
        "competing": {"type": "array", "items": ID,
                      "description": "the competing rotations of a dispute"},
        "roots": {"type": "array", "items": _obj(
            {"key": ID, "start": _MS, "end": _MS, "disputed": {"type": "boolean"}},
            ["key", "start", "end", "disputed"])},
        "devices": {"type": "array", "items": _obj(
            {"name": {"type": "string"}, "key": ID, "cert": ID, "certified": {"type": "integer"},
             "valid": {"type": "boolean"}, "revoked_since": _MS},
            ["name", "key", "cert", "certified", "valid", "revoked_since"])}},
        ["member", "status", "roots", "devices"]),
    "Peers": _items(_obj({"peer_id": {"type": "string"}, "addrs": _STRS}, ["peer_id", "addrs"])),
    "Created": _obj({"id": ID, "object": _ref("Object")}, ["id", "object"]),
    **_GOVERNANCE,
    "Submitted": _obj({"id": ID, "object": {"allOf": [_ref("Object")], "nullable": True},
                       "known": {"type": "boolean"},
                       "unindexed": {"type": "string", "nullable": True,
                                     "description": "stored and relayed but not shown here: "
                                     "unknown_kind or unsupported_version (opaque)"}},
                      ["id", "object", "known"]),
    "OpenApi": {"type": "object"},
    # ---- request bodies ----
    "NewProject": _obj({
        "lab": {"type": "string", "minLength": 1, "maxLength": 80,
                "description": "lab id, id prefix or exact name"},
        "title": {"type": "string", "maxLength": MAX_TITLE_CHARS},
        "summary": {"type": "string", "maxLength": MAX_SUMMARY_CHARS},
        "body": {"type": "string", "maxLength": MAX_BODY_CHARS},
        "stage": {"type": "string", "enum": list(STAGES)},
        "needs": {"type": "array", "maxItems": MAX_NEEDS,
                  "items": {"type": "string", "maxLength": MAX_NEED_CHARS}},
        "tags": {"type": "array", "maxItems": MAX_LABELS,
                 "items": {"type": "string", "maxLength": MAX_LABEL_CHARS}},
        "licence": _LICENCE,
    }, ["lab", "title"], extra=False),
    "NewComment": _obj({"target": REF, "parent": REF | {"nullable": True},
                        "body": {"type": "string", "maxLength": MAX_COMMENT_CHARS}},
                       ["target", "body"], extra=False),
    "NewTag": _obj({"target": REF, "labels": {
        "type": "array", "minItems": 1, "maxItems": MAX_LABELS,
        "items": {"type": "string", "maxLength": MAX_LABEL_CHARS}}},
        ["target", "labels"], extra=False),
    "NewRetraction": _obj({"target": REF}, ["target"], extra=False),
    "NewRevision": _obj({
        "target": REF | {"description": "the project"},
        "title": {"type": "string", "maxLength": MAX_TITLE_CHARS},
        "summary": {"type": "string", "maxLength": MAX_SUMMARY_CHARS},
        "body": {"type": "string", "maxLength": MAX_BODY_CHARS},
        "stage": {"type": "string", "enum": list(STAGES)},
        "needs": {"type": "array", "maxItems": MAX_NEEDS,
                  "items": {"type": "string", "maxLength": MAX_NEED_CHARS}},
        "licence": _LICENCE,
        "coauthors": {"type": "array", "maxItems": MAX_COAUTHORS,
                      "items": {"type": "string", "minLength": 1, "maxLength": 80},
                      "description": "the whole new list: member ids, id prefixes or names"},
        "note": {"type": "string", "maxLength": MAX_REVISION_NOTE_CHARS},
    }, ["target"], extra=False),
    "NewPledge": _obj({
        "target": REF | {"description": "the project"},
        "type": {"type": "string", "pattern": f"^[a-z]{{1,{MAX_TOKEN_CHARS}}}$",
                 "description": "use, build, lend, give, fund, teach, host (or a newer one)"},
        "need": {"type": "string", "maxLength": MAX_NEED_CHARS,
                 "description": "one of the project's needs, as it is written"},
        "note": {"type": "string", "maxLength": MAX_PLEDGE_NOTE_CHARS},
    }, ["target", "type"], extra=False),
    "NewFork": _obj({
        "target": REF | {"description": "the project forked"},
        "lab": {"type": "string", "minLength": 1, "maxLength": 80,
                "description": "lab id, id prefix or exact name"},
        "title": {"type": "string", "maxLength": MAX_TITLE_CHARS},
        "how": {"type": "string", "pattern": f"^[a-z]{{1,{MAX_TOKEN_CHARS}}}$",
                "description": "fork (default), remix, built, inspired"},
        "note": {"type": "string", "maxLength": MAX_DERIVE_NOTE_CHARS},
    }, ["target", "lab"], extra=False),
    "SignedObject": _obj({"raw": {"type": "string", "format": "byte", "minLength": 4,
                                  "maxLength": (MAX_OBJECT_BYTES * 4) // 3 + 4,
                                  "description": "base64 of the signed object bytes"}},
                         ["raw"], extra=False),
}
