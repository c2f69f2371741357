"""The OpenAPI description is true: it lists exactly the router's routes, and a bounded
schemathesis run against the live node finds no server error and no undocumented answer."""

from __future__ import annotations

import time
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")  # test extra: schemathesis>=4.0,<5

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from node.http.openapi import spec_operations  # noqa: E402
from node.http.routes import ROUTES  # noqa: E402
from tests.http.conftest import Lab  # noqa: E402

# Examples per operation and generation mode; the whole run stays well under a minute.
FUZZ_EXAMPLES = 25
FUZZ_BUDGET_S = 60.0
POSITIVE_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
                   response_schema_conformance]  # fmt: skip


def test_spec_matches_router(lab: Lab) -> None:
    spec = lab.client.get("/api/v1/openapi.json").json()
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
    schemathesis.openapi.from_dict(spec)  # loads (and checks) the description


@pytest.fixture(scope="module")
def seeded(lab: Lab) -> Lab:
    """Something real behind the ids the fuzzer may hit."""
    body = {"lab": lab.lab_id, "title": "Fuzz target", "tags": ["fuzz"]}
    r = lab.client.post("/api/v1/projects", json=body, headers=lab.node.auth)
    assert r.status_code == 201
    return lab


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzz_no_server_errors(seeded: Lab, mode: GenerationMode) -> None:
    lab = seeded
    spec = lab.client.get("/api/v1/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(ROUTES)
    headers = {"Authorization": f"Bearer {lab.node.token}"}
    deadline = time.monotonic() + FUZZ_BUDGET_S / 2
    checks = POSITIVE_CHECKS if mode is GenerationMode.POSITIVE else [not_a_server_error]
    calls = 0

    inputs = {(r.method, r.template): bool(r.params or r.body) for r in ROUTES}
    for op in operations:
        if mode is GenerationMode.NEGATIVE and not inputs[(op.method.upper(), op.path)]:
            continue  # nothing to make invalid
        strategy = op.as_strategy(generation_mode=mode)

        @given(case=strategy)
        @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def run(case: Any) -> None:
            nonlocal calls
            response = case.call(base_url=lab.node.base, headers=headers, timeout=30)
            calls += 1
            case.validate_response(response, checks=checks)

        run()
        assert time.monotonic() < deadline, "fuzzing ran over its time budget"
    assert calls >= len(operations)
    assert lab.client.get("/api/v1/status").status_code == 200  # still up
