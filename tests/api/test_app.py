"""The API as the real app serves it: OpenAPI document, docs page, every route documented."""

from __future__ import annotations

from fastapi.testclient import TestClient

from milepost.app import create_app
from milepost.runtime import Runtime


def test_create_app_serves_openapi_and_docs(runtime: Runtime) -> None:
    with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
        spec = client.get("/openapi.json").json()
        assert client.get("/docs").status_code == 200
        missing = client.get("/v1/no-such-thing")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
    paths = spec["paths"]
    for path in ("/v1/auth/register", "/v1/auth/tokens", "/v1/me", "/v1/orders", "/v1/orders/{order_id}",
                 "/v1/orders/{order_id}/events", "/v1/orders/{order_id}/milestones/{milestone_id}/deliveries",
                 "/v1/disputes/{dispute_id}/resolve", "/v1/payouts", "/v1/ledger/entries", "/v1/admin/audit",
                 "/v1/webhooks", "/v1/webhooks/{webhook_id}/deliveries", "/v1/dev/clock"):
        assert path in paths, path
    deliveries = paths["/v1/orders/{order_id}/milestones/{milestone_id}/deliveries"]["post"]
    assert set(deliveries["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert {"401", "403", "404", "409", "413", "422"} <= set(deliveries["responses"])
    problem = deliveries["responses"]["409"]["content"]
    assert "application/problem+json" in problem
