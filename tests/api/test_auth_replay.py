"""Replaying log-in and sign-up with an Idempotency-Key never keeps a usable secret at rest."""

from sqlalchemy import select

from milepost.accounts.models import User
from milepost.idempotency.models import IdempotencyRecord

BODY = {"email": "new@example.com", "password": "a long enough password", "name": "New Person"}


def test_register_replay_creates_one_account_and_a_fresh_working_token(client, runtime):
    headers = {"Idempotency-Key": "signup-1"}
    first = client.post("/v1/auth/register", json=BODY, headers=headers)
    again = client.post("/v1/auth/register", json=BODY, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.json()["user"] == again.json()["user"]
    assert first.json()["token"] != again.json()["token"]
    for token in (first.json()["token"], again.json()["token"]):
        me = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["email"] == BODY["email"]
    with runtime.reading() as ctx:
        assert len(ctx.session.scalars(select(User).where(User.email == BODY["email"])).all()) == 1
        records = ctx.session.scalars(select(IdempotencyRecord)).all()
    stored = " ".join(r.response_body + r.request_hash for r in records)
    assert first.json()["token"] not in stored and again.json()["token"] not in stored
    assert BODY["password"] not in stored


def test_token_replay_with_another_password_is_refused(client):
    assert client.post("/v1/auth/register", json=BODY).status_code == 201
    headers = {"Idempotency-Key": "login-1"}
    ok = client.post("/v1/auth/tokens", json={"email": BODY["email"], "password": BODY["password"]},
                     headers=headers)
    assert ok.status_code == 201
    other = client.post("/v1/auth/tokens", json={"email": BODY["email"], "password": "guess guess guess"},
                        headers=headers)
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert "token" not in other.json()
