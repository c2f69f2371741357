"""The OpenAPI description is true: it lists exactly the router's routes, and a bounded
schemathesis run against the live node, with valid and with invalid requests, finds no server
error, no undocumented answer, no answer off its schema, no valid request refused and no
invalid one taken.

A long exploration (`st run --checks all --mode all`, stateful, ~27k cases) found these kinds
of mismatch, each pinned below by a fuzzed check and a fixed example:
- an empty query value (`?limit=`, `?cursor=`) read as "absent", though OpenAPI's
  allowEmptyValue is false: now 400 (negative_data_rejection);
- `?q=` refused while the description allowed "", `{"raw": ""}` likewise: string parameters now
  say minLength 1, `raw` minLength 4 (positive_data_acceptance);
- an empty `application/octet-stream` body to `POST /api/v1/objects` refused (400) while its
  schema allowed it: now minLength 1;
- 413 and 415 answered by every route with a body but documented on one;
- `POST /api/v1/objects` answering 200 (already known) with only 201 documented (found once
  bodies named real objects);
- 304 answered by every GET (each has an ETag) but documented on the cached ones only; the
  ETag and Location headers are now described (response_headers_conformance checks them).
"""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")  # test extra: schemathesis>=4.0,<5

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from node.http.openapi import spec_operations  # noqa: E402
from node.http.routes import ROUTES  # noqa: E402
from tests.http.conftest import Lab  # noqa: E402

V1 = "/api/v1"
# Examples per operation and generation mode (~2,000 requests in all).
FUZZ_EXAMPLES = 60
# Issue 23 added 5 operations (29), issue 24 four more (33 in all; ~1.2 s each per mode,
# mostly data generation): an idle run takes ~40 s a mode, ~3 s an operation on a loaded machine.
FUZZ_BUDGET_S = 140.0
FOREIGN_CURSOR = "cursor does not belong to this listing"
CONFIG = SchemathesisConfig.from_dict({"checks": {
    # A valid request may still name nothing (404), a bad object (422: the signature or the
    # kind's schema, which the description cannot carry) or need the member key (409).
    "positive_data_acceptance": {"expected-statuses": ["2xx", "304", "401", "403", "404",
                                                       "409", "422"]},
    # Refusals: 413 (too large) is as much one as 400.
    "negative_data_rejection": {"expected-statuses": ["400", "401", "403", "404", "405", "409",
                                                      "413", "415", "422", "431"]},
}})  # fmt: skip


def valid_data_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """positive_data_acceptance, but for a well-formed cursor of another listing, which the
    description cannot tell from one of this listing (400 is the right answer)."""
    if (response.status_code == 400 and (case.query or {}).get("cursor")
            and response.json().get("message") == FOREIGN_CURSOR):  # fmt: skip
        return None
    return positive_data_acceptance(ctx, response, case)


CONFORMANCE = [not_a_server_error, status_code_conformance, content_type_conformance,
               response_schema_conformance, response_headers_conformance]  # fmt: skip
CHECKS = {
    GenerationMode.POSITIVE: [*CONFORMANCE, valid_data_accepted],
    GenerationMode.NEGATIVE: [*CONFORMANCE, negative_data_rejection],
}


def _spec(lab: Lab) -> dict[str, Any]:
    spec: dict[str, Any] = lab.client.get(f"{V1}/openapi.json").json()
    return spec


def test_spec_matches_router(lab: Lab) -> None:
    spec = _spec(lab)
    assert spec["openapi"].startswith("3.")
    assert spec_operations(spec) == {(r.method, r.template) for r in ROUTES}
    op_ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(op_ids) == len(set(op_ids))
    for route in ROUTES:
        op = spec["paths"][route.template][route.method.lower()]
        declared = {p["name"] for p in op.get("parameters", [])}
        assert declared == {p.name for p in route.params}
        assert ("security" in op) == route.auth
        assert ("requestBody" in op) == (route.body is not None)
        for p in op.get("parameters", []):  # "" is never a value (allowEmptyValue: false)
            schema = p["schema"]
            assert "enum" in schema or schema["type"] != "string" or schema["minLength"] >= 1
        documented = set(op["responses"])
        assert {str(route.status), *map(str, route.also)} <= documented
        if route.body is not None:  # any body may be too large or of another type
            assert {"400", "413", "415"} <= documented, route.template
        if route.method == "GET":
            assert "304" in documented, route.template
    schemathesis.openapi.from_dict(spec)  # loads (and checks) the description


@pytest.fixture(scope="module")
def seeded(lab: Lab) -> dict[str, Any]:
    """Something real behind the ids the fuzzer may hit (bodies may name them, see `_real`)."""
    body = {"lab": lab.lab_id, "title": "Fuzz target", "tags": ["fuzz"]}
    r = lab.client.post(f"{V1}/projects", json=body, headers=lab.node.auth)
    assert r.status_code == 201
    project = r.json()["object"]
    r = lab.client.post(f"{V1}/comments", json={"target": project["id"], "body": "hi"},
                        headers=lab.node.auth)  # fmt: skip
    assert r.status_code == 201
    return {"lab": lab.lab_id, "project": project, "comment": r.json()["object"]}


def _real(lab: Lab, seeded: dict[str, Any], case: Any) -> None:
    """Point a generated body at real objects, so that writes get as far as 201/200 and their
    answers are checked too (random ids only ever reach 404)."""
    body = case.body
    if not isinstance(body, dict):
        return
    if "lab" in body:
        body["lab"] = seeded["lab"]
    if case.path == f"{V1}/retractions":  # a fresh comment: the seeded objects stay live
        r = lab.client.post(f"{V1}/comments", json={"target": seeded["project"]["id"],
                                                    "body": "to withdraw"},
                            headers=lab.node.auth)  # fmt: skip
        body["target"] = r.json()["id"]
    elif "target" in body:
        body["target"] = seeded["project"]["id"]
        if body.get("parent") is not None:
            body["parent"] = seeded["comment"]["id"]
    if "raw" in body:  # an object the node has: 200, known
        body["raw"] = seeded["comment"]["raw"]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzz(lab: Lab, seeded: dict[str, Any], mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_dict(_spec(lab), config=CONFIG)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(ROUTES)
    headers = {"Authorization": f"Bearer {lab.node.token}"}
    deadline = time.monotonic() + FUZZ_BUDGET_S / 2
    statuses: set[int] = set()

    inputs = {(r.method, r.template): bool(r.params or r.body) for r in ROUTES}
    for op in operations:
        if mode is GenerationMode.NEGATIVE and not inputs[(op.method.upper(), op.path)]:
            continue  # nothing to make invalid
        strategy = op.as_strategy(generation_mode=mode)

        @given(case=strategy, real=st.booleans())
        @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def run(case: Any, real: bool) -> None:
            if real and mode is GenerationMode.POSITIVE:
                _real(lab, seeded, case)
            response = case.call(base_url=lab.node.base, headers=headers, timeout=30)
            statuses.add(response.status_code)
            case.validate_response(response, checks=CHECKS[mode])

        run()
        assert time.monotonic() < deadline, "fuzzing ran over its time budget"
    if mode is GenerationMode.POSITIVE:
        assert {200, 201, 404} <= statuses  # reads, writes that went through, unknown ids
    else:
        assert 400 in statuses
    assert lab.client.get(f"{V1}/status").status_code == 200  # still up


def test_found_mismatches_stay_fixed(lab: Lab, seeded: dict[str, Any]) -> None:
    """One example of each kind the long exploration found (see the module docstring)."""
    lab_id = seeded["lab"]
    for path in (f"{V1}/tags?limit=", f"{V1}/projects?cursor=", f"{V1}/projects?tag=",
                 f"{V1}/labs/{lab_id}/projects?order=", f"{V1}/search?q=",
                 f"{V1}/search?q=fuzz&limit=", f"/feeds/lab/{lab_id}.atom?x="):  # fmt: skip
        r = lab.client.get(path)
        expected = 200 if path.endswith("?x=") else 400  # unknown names are ignored
        assert r.status_code == expected, (path, r.text)
        if expected == 400:
            assert r.json()["error"] == "bad_request" and "empty" in r.json()["message"]
    spec = _spec(lab)
    search = spec["paths"][f"{V1}/search"]["get"]["parameters"]
    assert next(p for p in search if p["name"] == "q")["schema"]["minLength"] == 1
    raw = spec["components"]["schemas"]["SignedObject"]["properties"]["raw"]
    assert raw["minLength"] == 4 and len(base64.b64encode(b"x")) == 4
    r = lab.client.post(f"{V1}/objects", json={"raw": ""}, headers=lab.node.auth)
    assert r.status_code == 400
    octets = spec["paths"][f"{V1}/objects"]["post"]["requestBody"]["content"]
    assert octets["application/octet-stream"]["schema"]["minLength"] == 1
    r = lab.client.post(f"{V1}/objects", content=b"",
                        headers=lab.node.auth | {"content-type": "application/octet-stream"})
    assert r.status_code == 400
    for route in ROUTES:
        if route.body is None:
            continue
        r = lab.client.post(route.template, content=b"hi",
                            headers=lab.node.auth | {"content-type": "text/plain"})  # fmt: skip
        assert r.status_code == 415 and "415" in spec["paths"][route.template]["post"]["responses"]
    known = lab.client.post(f"{V1}/objects", json={"raw": seeded["comment"]["raw"]},
                            headers=lab.node.auth)  # fmt: skip
    assert known.status_code == 200 and known.json()["known"] and known.headers["location"]
    assert "200" in spec["paths"][f"{V1}/objects"]["post"]["responses"]
    for path in (f"{V1}/status", f"{V1}/peers", f"{V1}/openapi.json"):  # not cached, yet 304
        etag = lab.client.get(path).headers["etag"]
        r = lab.client.get(path, headers={"if-none-match": etag})
        if path != f"{V1}/status":  # status changes (sync counters), peers and spec do not
            assert r.status_code == 304
        assert "304" in spec["paths"][path]["get"]["responses"]
    # A well-formed cursor of another listing: 400, documented (the fuzzer's one exemption).
    r = lab.client.get(f"{V1}/tags/fuzz/objects", params={"cursor": "00"})
    assert r.status_code == 400 and r.json()["message"] == FOREIGN_CURSOR
