"""A Hypothesis state machine over the HTTP API, on SQLite and PostgreSQL.

Random sequences of real API calls by a buyer, a seller and an operator — propose (either side),
accept, fund (upfront or per milestone), deliver, revise, approve, cancel, dispute, counter, accept
a dispute offer, resolve, pay out, and move the dev clock so timers fire — with two rules after
every step: no answer is a 5xx or an unexpected denial, and GET /v1/admin/audit finds every ledger
invariant of SPEC §2.5 intact. Short here; `make fuzz` runs it far longer (-m "long and fuzz").
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from milepost.runtime import Runtime
from tests.api.conftest import build_api_app
from tests.factories import PASSWORD, make_user
from tests.orders.helpers import fast_password_hashing  # noqa: F401  (autouse fixture)

_n = itertools.count()
ALLOWED = {200, 201, 409, 422}  # a party acting in its own role is never denied, never a 5xx


@pytest.fixture
def settings_(settings: Any) -> Any:
    settings.dev_clock = True
    return settings


def machine_for(client: TestClient, runtime: Runtime) -> type[RuleBasedStateMachine]:
    class ApiMachine(RuleBasedStateMachine):
        orders = Bundle("orders")
        disputes = Bundle("disputes")

        def __init__(self) -> None:
            super().__init__()
            n = next(_n)
            self.tokens: dict[str, str] = {}
            self.emails = {}
            for role in ("buyer", "seller"):
                email = f"sm{n}-{role}@example.com"
                r = client.post("/v1/auth/register", json={"email": email, "password": PASSWORD, "name": role})
                assert r.status_code == 201, r.text
                self.tokens[role], self.emails[role] = r.json()["token"], email
            op = make_user(runtime, email=f"sm{n}-op@example.com", operator=True)
            r = client.post("/v1/auth/tokens", json={"email": op.email, "password": PASSWORD})
            self.tokens["operator"] = r.json()["token"]
            self.steps = 0

        def call(self, method: str, path: str, role: str, body: Any = None,
                 allowed: set[int] = ALLOWED) -> Any:
            r = client.request(method, path, json=body, headers={"Authorization": f"Bearer {self.tokens[role]}"})
            assert r.status_code in allowed, (method, path, role, r.status_code, r.text)
            self.steps += 1
            return r.json() if r.status_code < 300 else None

        def order(self, oid: str) -> dict[str, Any]:
            return self.call("GET", f"/v1/orders/{oid}", "buyer", allowed={200})  # type: ignore[no-any-return]

        @rule(target=orders, proposer=st.sampled_from(["buyer", "seller"]),
              amounts=st.lists(st.integers(500, 50_000), min_size=1, max_size=3),
              funding=st.sampled_from(["upfront", "per_milestone"]),
              release=st.sampled_from(["per_milestone", "on_completion"]),
              clearance=st.integers(0, 2), review=st.integers(1, 3), kill_fee=st.sampled_from([0, 2500]),
              accept=st.booleans())
        def propose(self, proposer: str, amounts: list[int], funding: str, release: str, clearance: int,
                    review: int, kill_fee: int, accept: bool) -> str:
            other = "seller" if proposer == "buyer" else "buyer"
            order = self.call("POST", "/v1/orders", proposer, {
                "role": proposer, "counterparty_email": self.emails[other], "title": "SM", "currency": "USD",
                "terms": {"funding": funding, "release": release, "clearance_days": clearance,
                          "review_days": review, "kill_fee_bps": kill_fee, "revisions": 1},
                "milestones": [{"title": f"M{i}", "description": "d", "acceptance_criteria": ["ok"],
                                "amount": a, "due_days": 3} for i, a in enumerate(amounts, 1)]},
                allowed={201})
            if accept:
                self.call("POST", f"/v1/orders/{order['id']}/accept", other, {"plan_version": 1}, allowed={200})
            return str(order["id"])

        @rule(oid=orders)
        def fund(self, oid: str) -> None:
            self.call("POST", f"/v1/orders/{oid}/fund", "buyer", {})

        def milestone(self, oid: str, index: int) -> str:
            ms = self.order(oid)["milestones"]
            return str(ms[index % len(ms)]["id"])

        @rule(oid=orders, index=st.integers(0, 2))
        def deliver(self, oid: str, index: int) -> None:
            mid = self.milestone(oid, index)
            self.call("POST", f"/v1/orders/{oid}/milestones/{mid}/deliveries", "seller", {"message": "done"})

        @rule(oid=orders, index=st.integers(0, 2))
        def approve(self, oid: str, index: int) -> None:
            mid = self.milestone(oid, index)
            self.call("POST", f"/v1/orders/{oid}/milestones/{mid}/approve", "buyer")

        @rule(oid=orders, index=st.integers(0, 2))
        def revise(self, oid: str, index: int) -> None:
            mid = self.milestone(oid, index)
            self.call("POST", f"/v1/orders/{oid}/milestones/{mid}/revisions", "buyer", {"reason": "again"})

        @rule(oid=orders, who=st.sampled_from(["buyer", "seller"]))
        def cancel(self, oid: str, who: str) -> None:
            self.call("POST", f"/v1/orders/{oid}/cancel", who, {"reason": "changed plans"})

        @rule(target=disputes, oid=orders, index=st.integers(0, 2), who=st.sampled_from(["buyer", "seller"]),
              share=st.floats(0, 1))
        def dispute(self, oid: str, index: int, who: str, share: float) -> str:
            order = self.order(oid)
            m = order["milestones"][index % len(order["milestones"])]
            d = self.call("POST", f"/v1/orders/{oid}/milestones/{m['id']}/disputes", who,
                          {"reason": "not as agreed", "seller_amount": int(m["amount"] * share)},
                          allowed={201, 409, 422})
            return str(d["id"]) if d else "dsp_none"

        @rule(did=disputes, who=st.sampled_from(["buyer", "seller"]), share=st.floats(0, 1))
        def counter(self, did: str, who: str, share: float) -> None:
            if did != "dsp_none":
                self.call("POST", f"/v1/disputes/{did}/counter", who, {"seller_amount": int(1000 * share)})

        @rule(did=disputes, who=st.sampled_from(["buyer", "seller"]))
        def accept_offer(self, did: str, who: str) -> None:
            if did != "dsp_none":
                self.call("POST", f"/v1/disputes/{did}/accept", who)

        @rule(did=disputes, share=st.floats(0, 1))
        def resolve(self, did: str, share: float) -> None:
            if did != "dsp_none":
                self.call("POST", f"/v1/disputes/{did}/resolve", "operator", {"seller_amount": int(500 * share)})

        @rule(days=st.integers(0, 10), hours=st.integers(0, 23))
        def advance_clock(self, days: int, hours: int) -> None:
            self.call("POST", "/v1/dev/clock", "buyer", {"advance": f"P{days}DT{hours}H"}, allowed={200})

        @rule(share=st.floats(0.01, 1))
        def payout(self, share: float) -> None:
            balances = self.call("GET", "/v1/balances", "seller", allowed={200})["balances"]
            available = next((b["available"] for b in balances if b["currency"] == "USD"), 0)
            self.call("POST", "/v1/payouts", "seller", {"amount": max(1, int(available * share)), "currency": "USD"},
                      allowed={201, 409, 422})

        @invariant()
        def ledger_audit_is_clean(self) -> None:
            report = self.call("GET", "/v1/admin/audit", "operator", allowed={200})
            assert report["ok"], [c for c in report["checks"] if not c["ok"]]

    return ApiMachine


def _run(runtime: Runtime, *, examples: int, steps: int) -> None:
    with TestClient(build_api_app(runtime), raise_server_exceptions=False) as client:
        machine = machine_for(client, runtime)
        run_state_machine_as_test(machine, settings=settings(
            max_examples=examples, stateful_step_count=steps, deadline=None, database=None,
            suppress_health_check=list(HealthCheck)))


@pytest.mark.usefixtures("settings_")
def test_random_api_sequences_keep_every_invariant(runtime: Runtime) -> None:
    _run(runtime, examples=6, steps=15)


@pytest.mark.long
@pytest.mark.fuzz
@pytest.mark.usefixtures("settings_")
def test_random_api_sequences_keep_every_invariant_long(runtime: Runtime) -> None:
    _run(runtime, examples=40, steps=30)
