"""The cash-flow endpoints under /v1 and the `milepost forecast` / `milepost export` commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar
from typer.testing import CliRunner

from milepost.accounts import service as accounts
from milepost.app import create_app
from milepost.cashflow import service
from tests.cashflow.history import build_history
from tests.cashflow.tools import csv_balances, hledger_check
from tests.factories import assert_invariants


def _client(runtime, user) -> TestClient:
    with runtime.unit_of_work() as ctx:
        token = accounts.issue_token(ctx, user)
    client = TestClient(create_app(runtime))
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def test_cashflow_endpoints(runtime, clock, tmp_path):
    h = build_history(runtime, clock)
    client = _client(runtime, h.seller)

    body = client.get("/v1/balances").json()
    with runtime.reading() as ctx:
        assert body == service.balances_payload(ctx.session, h.seller.id)
    usd = next(b for b in body["balances"] if b["currency"] == "USD")
    assert {"currency", "in_escrow", "clearing", "available", "paid_out", "committed", "refunded", "spent"} <= set(usd)

    forecast = client.get("/v1/forecast", params={"tz": "Europe/Berlin"}).json()
    assert forecast["seller"]["tz"] == "Europe/Berlin"
    assert {line["certainty"] for line in forecast["seller"]["lines"]} >= {"available", "clearing", "awaiting_review"}
    assert forecast["seller"]["excluded"][0]["reason"] == "disputed"
    assert forecast["seller"]["totals"]["weeks"] and forecast["seller"]["totals"]["months"]
    assert client.get("/v1/forecast", params={"tz": "Nowhere/Land"}).status_code == 422

    buyer = _client(runtime, h.buyer).get("/v1/forecast").json()["buyer"]
    assert [f["currency"] for f in buyer["fundings"]] == ["JPY"]

    response = client.get("/v1/exports/journal", params={"format": "hledger"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    journal = tmp_path / "api.journal"
    journal.write_text(response.text)
    hledger_check(journal)
    csv_text = client.get("/v1/exports/journal", params={"format": "csv", "from": "2026-01-10", "to": "2026-12-31"})
    assert csv_text.status_code == 200 and csv_text.text.startswith("transfer_id,")
    (tmp_path / "api.csv").write_text(csv_text.text)
    assert csv_balances(tmp_path / "api.csv")[(f"seller:{h.seller.id}:available", "USD")] == 1_000
    for bad in ({"format": "xlsx"}, {"format": "csv", "from": "yesterday"},
                {"format": "csv", "from": "2026-02-01", "to": "2026-01-01"}):
        r = client.get("/v1/exports/journal", params=bad)
        assert r.status_code == 422, bad
        assert r.headers["content-type"].startswith("application/problem+json")

    ics = client.get("/v1/exports/calendar.ics")
    assert ics.headers["content-type"].startswith("text/calendar")
    assert Calendar.from_ical(ics.content).walk("VEVENT")

    period = client.get("/v1/statements/period", params={"from": "2026-01-01", "to": "2026-01-31"}).json()
    assert {s["currency"] for s in period["statements"]} == {"EUR", "JPY", "USD"}
    payouts = client.get("/v1/payouts").json()["items"]
    statement = client.get(f"/v1/statements/payouts/{payouts[0]['id']}").json()
    assert sum(p["net_amount"] for p in statement["parts"]) == statement["amount"]
    other = _client(runtime, h.buyer)
    assert other.get(f"/v1/statements/payouts/{payouts[0]['id']}").status_code == 404
    assert client.get("/v1/statements/payouts/" + "x" * 500).status_code == 404
    assert TestClient(create_app(runtime)).get("/v1/balances").status_code == 401
    assert_invariants(runtime)


# The CLI finds its database through the environment (the embedded SQLite default); the commands'
# queries are the API's, which run on both databases above.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_cli_forecast_and_export(runtime, clock, tmp_path, monkeypatch, backend):
    h = build_history(runtime, clock)
    monkeypatch.setenv("MILEPOST_DATA_DIR", str(runtime.settings.data_dir))
    from milepost.cashflow import cli as cashflow_cli
    from milepost.cli import app

    monkeypatch.setattr(cashflow_cli.console, "width", 200)

    runner = CliRunner()
    result = runner.invoke(app, ["forecast", "--seller", h.seller.email, "--tz", "Asia/Tokyo"])
    assert result.exit_code == 0, result.output
    assert "awaiting_review" in result.output and "Asia/Tokyo" in result.output
    out: Path = tmp_path / "cli.journal"
    result = runner.invoke(app, ["export", "--format", "hledger", "--from", "2026-01-01", "--to", "2026-12-31",
                                 "--seller", h.seller.email, "--output", str(out)])
    assert result.exit_code == 0, result.output
    hledger_check(out)
    result = runner.invoke(app, ["forecast", "--seller", "nobody@example.com"])
    assert result.exit_code == 1
    result = runner.invoke(app, ["export", "--format", "xml"])
    assert result.exit_code == 1
