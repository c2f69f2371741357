"""The wire of living projects (docs/protocol.md §3.3): project version 3, `revision`, `pledge`,
the licence syntax and the field types they brought (Token, Licence, Record, unique_key)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import errors, kinds, licences, living, objects
from protocols.fields import ListOf, ObjectRef, Record, Token
from protocols.limits import (
    MAX_COAUTHORS,
    MAX_DERIVES,
    MAX_LICENCE_CHARS,
    MAX_SET_FIELDS,
    MAX_SUPERSEDES,
)

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
TS = 1_767_225_600_000
LAB = hashlib.sha256(b"lab").digest()
P = hashlib.sha256(b"project").digest()


def ids(n: int, tag: str = "id") -> list[bytes]:
    return [hashlib.sha256(f"{tag}{i}".encode()).digest() for i in range(n)]


def project(**change: Any) -> dict[str, Any]:
    return {"lab": LAB, "title": "Dryer", "summary": "", "body": "", "stage": "idea",
            "needs": []} | change  # fmt: skip


def revision(**change: Any) -> dict[str, Any]:
    return {"lab": LAB, "target": P, "supersedes": [P], "set": {"stage": "design"}} | change


def pledge(**change: Any) -> dict[str, Any]:
    return {"lab": LAB, "target": P, "type": "build"} | change


def verdict(kind: str, body: dict[str, Any]) -> str:
    obj = objects.decode(objects.sign(KEY, kind, TS, body).raw)
    try:
        kinds.validate(obj, TS)
    except errors.ObjectError as exc:
        return exc.code
    return "visible"


def test_the_kinds_are_registered_with_their_scope_target_and_refs() -> None:
    assert kinds.kind_spec("project").version == 3
    for name in ("revision", "pledge"):
        spec = kinds.kind_spec(name)
        assert spec.lab_field == "lab" and spec.target_field == "target"
        assert spec.refs == ("target", "cert") and spec.version == 1
    assert set(living.REVISABLE) == {"title", "summary", "body", "stage", "needs", "licence",
                                     "coauthors", "derives"}  # fmt: skip
    assert kinds.STAGES == living.STAGES


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (project(), "visible"),  # a version 2 project stays valid
        (project(licence="CC-BY-SA-4.0", coauthors=ids(2), derives=[]), "visible"),
        (project(licence=""), "visible"),
        (project(licence="all rights reserved"), "visible"),
        (project(licence="All rights reserved"), "bad_value"),
        (project(licence="MIT OR"), "bad_value"),
        (project(licence="x" * (MAX_LICENCE_CHARS + 1)), "string_too_long"),
        (project(licence=None), "bad_field_type"),
        (project(coauthors=ids(MAX_COAUTHORS)), "visible"),
        (project(coauthors=ids(MAX_COAUTHORS + 1)), "too_many_items"),
        (project(coauthors=[P, P]), "bad_value"),
        (project(coauthors=[b"short"]), "bad_field_type"),
        (project(derives=[{"project": P, "how": "fork"}]), "visible"),
        (project(derives=[{"project": P, "how": "brewed", "note": "our batch", "x": 1}]),
         "visible"),
        (project(derives=[{"project": P, "how": "Fork"}]), "bad_value"),
        (project(derives=[{"project": P, "how": "a" * 17}]), "bad_value"),
        (project(derives=[{"project": P, "how": ""}]), "bad_value"),
        (project(derives=[{"how": "fork"}]), "missing_field"),
        (project(derives=[{"project": P, "how": "fork", "note": "x" * 281}]), "string_too_long"),
        (project(derives=[{"project": P, "how": "fork"}, {"project": P, "how": "remix"}]),
         "bad_value"),
        (project(derives=[{"project": p, "how": "fork"} for p in ids(MAX_DERIVES + 1)]),
         "too_many_items"),
        (project(derives=[P]), "bad_field_type"),
        (project(derives={"project": P, "how": "fork"}), "bad_field_type"),
    ],
)
def test_project_version_3(body: dict[str, Any], code: str) -> None:
    assert verdict("project", body) == code


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (revision(), "visible"),
        (revision(lab=None, note="typo"), "visible"),
        (revision(supersedes=ids(MAX_SUPERSEDES)), "visible"),
        (revision(supersedes=ids(MAX_SUPERSEDES + 1)), "too_many_items"),
        (revision(supersedes=[]), "too_many_items"),
        (revision(supersedes=[P, P]), "bad_value"),
        (revision(supersedes=P), "bad_field_type"),
        (revision(set={}), "too_many_items"),
        (revision(set={f"f{i}": i for i in range(MAX_SET_FIELDS)}), "visible"),
        (revision(set={f"f{i}": i for i in range(MAX_SET_FIELDS + 1)}), "too_many_items"),
        (revision(set={"future_field": [1, 2], "stage": "done"}), "visible"),
        (revision(set={"title": ""}), "empty_string"),
        (revision(set={"stage": "finished"}), "bad_value"),
        (revision(set={"needs": ["a", "a"]}), "bad_value"),
        (revision(set={"licence": "CERN-OHL-S-2.0"}), "visible"),
        (revision(set={"licence": "GPL-2.0-or-later WITH Classpath-exception-2.0"}), "visible"),
        (revision(set={"licence": "mit and apache"}), "bad_value"),
        (revision(set={"coauthors": []}), "visible"),
        (revision(set={"derives": [{"project": P, "how": "inspired"}]}), "visible"),
        (revision(set={"body": "a\nb", "summary": "s\n", "title": "T"}), "visible"),
        (revision(set={"title": "a\nb"}), "bad_text"),
        (revision(set=[["stage", "done"]]), "bad_field_type"),
        (revision(note="x" * 281), "string_too_long"),
        (revision(note="a\nb"), "bad_text"),
        ({"lab": LAB, "target": P, "set": {"stage": "done"}}, "missing_field"),
        ({"lab": LAB, "supersedes": [P], "set": {"stage": "done"}}, "missing_field"),
        ({"lab": LAB, "target": P, "supersedes": [P]}, "missing_field"),
        (revision(cert=None), "bad_field_type"),
    ],
)
def test_revision(body: dict[str, Any], code: str) -> None:
    assert verdict("revision", body) == code


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (pledge(), "visible"),
        (pledge(type="brew", need="a fermenter", note="we have a 50 l one\nsince May"), "visible"),
        (pledge(lab=None), "visible"),
        (pledge(type="Build"), "bad_value"),
        (pledge(type="i-build"), "bad_value"),
        (pledge(type=""), "bad_value"),
        (pledge(type=1), "bad_field_type"),
        (pledge(need="x" * 65), "string_too_long"),
        (pledge(need="a\nb"), "bad_text"),
        (pledge(need=""), "visible"),
        (pledge(note="x" * 501), "string_too_long"),
        ({"lab": LAB, "type": "build"}, "missing_field"),
        ({"lab": LAB, "target": P}, "missing_field"),
    ],
)
def test_pledge(body: dict[str, Any], code: str) -> None:
    assert verdict("pledge", body) == code


def test_vocabularies() -> None:
    assert list(living.PLEDGE_TYPES) == ["use", "build", "lend", "give", "fund", "teach", "host"]
    assert living.pledge_label("build") == "I can build it"
    assert living.pledge_label("brew") == "brew"
    assert list(living.DERIVE_HOWS) == ["fork", "remix", "built", "inspired"]
    assert living.derive_label("zap") == "zap"
    for token in [*living.PLEDGE_TYPES, *living.DERIVE_HOWS]:
        Token().check("t", token)


def test_revisable_changes_and_project_fields() -> None:
    body = revision(set={"stage": "done", "colour": "red", "licence": "MIT"})
    assert living.revisable_changes(body) == {"stage": "done", "licence": "MIT"}
    assert living.revisable_changes({"set": "nonsense"}) == {}
    fields = living.project_fields(project(needs=["glass"]))
    assert fields == {"title": "Dryer", "summary": "", "body": "", "stage": "idea",
                      "needs": ["glass"], "licence": "", "coauthors": [],
                      "derives": []}  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        "", "all rights reserved", "MIT", "CC-BY-SA-4.0", "GPL-3.0+", "MIT OR Apache-2.0",
        "(MIT OR Apache-2.0) AND CC-BY-4.0", "GPL-2.0-or-later WITH Classpath-exception-2.0",
        "LicenseRef-our-brewery", "DocumentRef-spdx-tool-1.2:LicenseRef-MIT-Style-2",
        "((MIT))", "MIT AND (CC0-1.0 OR (Apache-2.0 WITH LLVM-exception))", "MIT  OR  ISC",
        "Some-Id-Not-On-The-List-1.0",
    ],
)  # fmt: skip
def test_valid_licences(text: str) -> None:
    assert licences.licence_syntax_error(text) == ""
    assert licences.is_valid_licence(text)


@pytest.mark.parametrize(
    "text",
    [
        " MIT", "MIT ", "MIT OR", "OR MIT", "MIT Apache-2.0", "(MIT", "MIT)", "()", "AND",
        "mit or apache-2.0", "MIT WITH", "(MIT) WITH LLVM-exception", "MIT WITH A WITH B",
        "MIT\tOR ISC", "MIT/Apache", "CC BY SA", "all rights reserved.", "ALL RIGHTS RESERVED",
        "Tous droits réservés", "MIT OR (ISC AND)", "DocumentRef-x:MIT",
    ],
)  # fmt: skip
def test_invalid_licences(text: str) -> None:
    assert licences.licence_syntax_error(text)
    with pytest.raises(ValueError):
        licences.licence_ids(text)


def test_known_licences_and_suggestions() -> None:
    assert len(licences.KNOWN_LICENCES) >= 30
    for must in ("CC-BY-4.0", "CC-BY-SA-4.0", "CC0-1.0", "CERN-OHL-S-2.0", "CERN-OHL-W-2.0",
                 "CERN-OHL-P-2.0", "MIT", "Apache-2.0", "GPL-3.0-or-later"):  # fmt: skip
        assert must in licences.KNOWN_LICENCES and licences.is_known_licence(must)
        assert licences.is_valid_licence(must)
    assert licences.is_known_licence("all rights reserved")
    assert licences.is_known_licence("MIT OR (Apache-2.0 WITH LLVM-exception)")
    assert not licences.is_known_licence("")
    assert not licences.is_known_licence("LicenseRef-ours")
    assert not licences.is_known_licence("MIT OR Beer-Ware-9")
    assert not licences.is_known_licence("MIT OR")
    assert licences.licence_ids("(MIT OR ISC) AND GPL-2.0-only WITH Classpath-exception-2.0") == (
        ("MIT", "ISC", "GPL-2.0-only"), ("Classpath-exception-2.0",))  # fmt: skip
    assert licences.licence_suggestions("cern") == ["CERN-OHL-S-2.0", "CERN-OHL-W-2.0",
                                                    "CERN-OHL-P-2.0"]  # fmt: skip
    assert licences.licence_suggestions("all") == ["all rights reserved"]
    assert licences.licence_suggestions()[:2] == ["CC-BY-4.0", "CC-BY-SA-4.0"]
    assert licences.licence_label("MIT") == "MIT License" and licences.licence_label("X") == "X"


def test_record_and_unique_key_field_types() -> None:
    rec = Record({"a": ObjectRef(), "b": Token(required=False)}, min_entries=1, max_entries=3)
    rec.check("r", {"a": P, "z": [1]})
    for bad, err in [
        ([], errors.BadFieldType), ({}, errors.TooManyItems),
        ({"a": P, "b": "x", "c": 1, "d": 2}, errors.TooManyItems),
        ({"b": "x"}, errors.MissingField),
        ({"a": P, "b": "X"}, errors.BadValue), ({"a": b"x"}, errors.BadFieldType),
    ]:  # fmt: skip
        with pytest.raises(err):
            rec.check("r", bad)
    listed = ListOf(Record({"a": ObjectRef()}), 3, unique_key="a")
    listed.check("l", [{"a": P}, {"a": LAB}])
    with pytest.raises(errors.BadValue, match="same a"):
        listed.check("l", [{"a": P}, {"a": P, "n": 1}])


def test_create_refuses_what_would_be_hidden() -> None:
    with pytest.raises(errors.BadValue):
        kinds.create(KEY, "revision", revision(set={"stage": "nope"}), TS)
    obj = kinds.create(KEY, "pledge", pledge(need="glass"), TS)
    assert objects.decode(obj.raw).body["need"] == "glass"


DOC = (Path(__file__).parents[2] / "docs" / "protocol.md").read_text()


def _doc_hex(section: str, label: str) -> str:
    start = DOC.index(section)
    m = re.search(rf"{label}[^`]*`([0-9a-f]+)`", DOC[start:])
    assert m, f"{label} of {section} not in docs/protocol.md"
    return m.group(1)


@pytest.mark.parametrize(
    ("section", "kind", "ts", "body"),
    [
        ("### Vector 3", "revision", 1_767_225_660_000,
         {"lab": b"\x11" * 32, "note": "drawings done", "supersedes": ["V2"], "target": "V2",
          "set": {"licence": "CERN-OHL-S-2.0", "stage": "design"}}),
        ("### Vector 4", "pledge", 1_767_225_720_000,
         {"lab": b"\x11" * 32, "need": "glass", "target": "V2", "type": "build"}),
    ],
)  # fmt: skip
def test_doc_vectors(section: str, kind: str, ts: int, body: dict[str, Any]) -> None:
    v2 = bytes.fromhex(_doc_hex("### Vector 2", "id"))
    body = {k: (v2 if v == "V2" else [v2] if v == ["V2"] else v) for k, v in body.items()}
    obj = kinds.create(KEY, kind, body, ts)
    assert obj.raw.hex() == _doc_hex(section, "object bytes")
    assert obj.id.hex() == _doc_hex(section, "id")


def test_doc_states_the_limits_and_effects() -> None:
    from protocols import limits, project_history

    table = DOC[DOC.index("## 2. Limits") : DOC.index("**Text fields**")]
    for name in ("MAX_LICENCE_CHARS", "MAX_COAUTHORS", "MAX_DERIVES", "MAX_DERIVE_NOTE_CHARS",
                 "MAX_TOKEN_CHARS", "MAX_SUPERSEDES", "MAX_SET_FIELDS",
                 "MAX_REVISION_NOTE_CHARS", "MAX_PLEDGE_NOTE_CHARS"):  # fmt: skip
        assert f"`{name}`" in table and str(getattr(limits, name)) in table
    section = DOC[DOC.index("### 3.3") : DOC.index("## 4. Verdicts")]
    for effect in project_history.EFFECTS:
        assert f"`{effect}`" in section
    for token in [*living.PLEDGE_TYPES.values(), *living.DERIVE_HOWS]:
        assert token in section
