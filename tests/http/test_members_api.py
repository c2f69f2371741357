"""GET /api/v1/members/{id} and the attribution fields of object views (issue 22)."""

from __future__ import annotations

from tests.http.conftest import Lab

V1 = "/api/v1"


def test_member_and_attribution(lab: Lab) -> None:
    r = lab.client.get(f"{V1}/members/{lab.author}")
    assert r.status_code == 200, r.text
    m = r.json()
    assert m["member"] == lab.author and m["status"] == "ok"
    assert [x["key"] for x in m["roots"]] == [lab.author]
    assert len(m["devices"]) == 1 and m["devices"][0]["revoked_since"] is None
    r = lab.client.get(f"{V1}/labs/{lab.lab_id}")
    assert r.json()["member"] == lab.author and r.json()["attribution"] == "member"
    assert lab.client.get(f"{V1}/members/XYZ").status_code == 400
    unknown = lab.client.get(f"{V1}/members/{'ab' * 32}").json()
    assert unknown["devices"] == [] and unknown["roots"][0]["key"] == "ab" * 32
