"""Users and API tokens: argon2 password hashes, opaque bearer tokens stored as SHA-256 digests."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from milepost.accounts.models import ApiToken, User
from milepost.db import new_id
from milepost.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from milepost.orders.plan import text_problem

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from milepost.context import Ctx

_hasher = PasswordHasher()
EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 200
# Verifying against a dummy hash when the e-mail is unknown keeps the timing of a failed login the
# same whether or not the account exists.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def normalize_email(email: object) -> str:
    if not isinstance(email, str) or not EMAIL_RE.match(email.strip()):
        raise InvalidInput(
            "a valid e-mail address is required",
            errors=[{"field": "email", "message": "must be a valid e-mail address"}],
        )
    return email.strip().lower()


def check_password_rules(password: object, *, email: str = "") -> str:
    problems = []
    if not isinstance(password, str):
        problems.append("must be text")
    else:
        if len(password) < MIN_PASSWORD:
            problems.append(f"must be at least {MIN_PASSWORD} characters")
        if len(password) > MAX_PASSWORD:
            problems.append(f"must be at most {MAX_PASSWORD} characters")
        if "\x00" in password:
            problems.append("must not contain NUL characters")
        if email and password.lower() == email.lower():
            problems.append("must not be your e-mail address")
    if problems:
        raise InvalidInput(
            "the password is not acceptable",
            errors=[{"field": "password", "message": p} for p in problems],
        )
    return str(password)


def create_user(
    ctx: Ctx, *, email: str, password: str, name: str, is_operator: bool = False,
    locale: str = "en_US", timezone: str = "UTC",
) -> User:
    problems = []
    try:
        email = normalize_email(email)
    except InvalidInput as exc:
        problems += exc.errors
    if (why := text_problem(name, max_len=200, required=True)) is not None:
        problems.append({"field": "name", "message": why})
    try:
        check_password_rules(password, email=email if isinstance(email, str) else "")
    except InvalidInput as exc:
        problems += exc.errors
    if problems:
        raise InvalidInput("the account details are invalid", errors=problems)
    if find_by_email(ctx.session, email) is not None:
        raise Conflict("an account with this e-mail address already exists", code="email_taken")
    user = User(
        id=new_id("usr"),
        email=email,
        name=name.strip(),
        password_hash=_hasher.hash(password),
        is_operator=is_operator,
        locale=locale,
        timezone=timezone,
        created_at=ctx.now,
    )
    ctx.session.add(user)
    try:
        with ctx.session.begin_nested():
            ctx.session.flush()
    except IntegrityError:
        raise Conflict("an account with this e-mail address already exists", code="email_taken") from None
    return user


def find_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def get_user_by_email(session: Session, email: str) -> User:
    user = find_by_email(session, email) if isinstance(email, str) else None
    if user is None:
        raise NotFound(f"no user with e-mail {email!r}", code="user_not_found")
    return user


def authenticate(session: Session, *, email: str, password: str) -> User:
    user = find_by_email(session, email) if isinstance(email, str) else None
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        raise Unauthenticated("wrong e-mail or password", code="bad_credentials") from None
    if user is None:
        raise Unauthenticated("wrong e-mail or password", code="bad_credentials")
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(ctx: Ctx, user: User, *, name: str = "api") -> str:
    """A new bearer token; only its digest is stored, so it is shown once."""
    token = "mp_" + secrets.token_urlsafe(32)
    ctx.session.add(
        ApiToken(id=new_id("tok"), user_id=user.id, token_hash=_digest(token), name=name,
                 created_at=ctx.now)
    )
    return token


def user_for_token(session: Session, token: str) -> User | None:
    row = session.execute(
        select(User, ApiToken)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == _digest(token), ApiToken.revoked_at.is_(None))
    ).first()
    return row[0] if row else None


def revoke_token(ctx: Ctx, token: str) -> bool:
    row = ctx.session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = ctx.now
    return True
