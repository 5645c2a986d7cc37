"""HTTP fixtures: the API app over the `runtime` fixture (SQLite and PostgreSQL), and clients per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from milepost.api import errors as api_errors
from milepost.api.router import router as api_router
from milepost.runtime import Runtime
from tests.factories import PASSWORD, make_user


def build_api_app(runtime: Runtime) -> FastAPI:
    """The API alone, as create_app mounts it (errors + /v1 router), without the web app."""
    app = FastAPI(title="Milepost")
    app.state.runtime = runtime
    api_errors.install(app)
    app.include_router(api_router)
    return app


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    return build_api_app(runtime)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@dataclass
class Party:
    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def login(client: TestClient, email: str, password: str = PASSWORD) -> str:
    r = client.post("/v1/auth/tokens", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


@pytest.fixture
def parties(runtime: Runtime, client: TestClient) -> dict[str, Party]:
    """buyer, seller, stranger and operator, each logged in."""
    out = {}
    for role in ("buyer", "seller", "stranger", "operator"):
        user = make_user(runtime, email=f"{role}@example.com", operator=role == "operator")
        out[role] = Party(id=user.id, email=user.email, token=login(client, user.email))
    return out


def milestones(*amounts: int, due_days: int = 5, revisions: int | None = None) -> list[dict[str, Any]]:
    return [
        {"title": f"Page {i}", "description": "one page", "acceptance_criteria": [f"page {i} renders"],
         "amount": a, "due_days": due_days, **({"revisions": revisions} if revisions is not None else {})}
        for i, a in enumerate(amounts, start=1)
    ]


@pytest.fixture
def settings(settings: Any) -> Any:
    """The API tests drive time through POST /v1/dev/clock, so the dev clock is on."""
    settings.dev_clock = True
    return settings
