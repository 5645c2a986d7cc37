"""Settings, all from environment variables prefixed MILEPOST_ (documented in the README)."""

from __future__ import annotations

import os
import secrets
from dataclasses import fields
from functools import cached_property
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from milepost.orders.plan import PlanLimits
from milepost.orders.terms import FundingMode, ReleaseMode, Terms, check_operator_terms


def _stored_secret(data_dir: Path) -> str:
    """A secret generated once per data directory, so sessions survive restarts and are shared by
    every process serving the same installation (set MILEPOST_SECRET_KEY to manage it yourself)."""
    path = data_dir / ".secret_key"
    try:
        return path.read_text().strip() or _write_secret(path)
    except FileNotFoundError:
        return _write_secret(path)


def _write_secret(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = secrets.token_urlsafe(32)
    try:
        # O_EXCL: if two processes start at once, exactly one key wins and both read it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(candidate)
    return candidate


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MILEPOST_", extra="ignore")

    env: str = Field("development", description="'production' refuses dev-only switches")
    data_dir: Path = Field(Path("data"), description="SQLite file, uploaded files")
    database_url: str | None = Field(None, description="PostgreSQL URL; SQLite in data_dir if unset")
    secret_key: str = Field("", description="signs sessions; unset: a key kept in data_dir/.secret_key")
    dev_clock: bool = Field(False, description="allow POST /v1/dev/clock to move time forward")
    host: str = "127.0.0.1"
    port: int = 8000
    worker_interval_seconds: float = 1.0
    max_upload_bytes: int = 25 * 1024 * 1024
    payment_provider: str = "sandbox"

    # Installation defaults for new orders (SPEC §8); frozen into each order when it is agreed.
    default_funding: FundingMode = FundingMode.UPFRONT
    default_release: ReleaseMode = ReleaseMode.PER_MILESTONE
    review_days: int = 7
    revisions: int = 2
    revision_turnaround_days: int = 3
    clearance_days: int = 7
    kill_fee_bps: int = 0
    seller_fee_bps: int = 1000
    buyer_fee_bps: int = 0
    late_grace_hours: int = 24
    dispute_response_days: int = 4
    dispute_negotiation_days: int = 7
    extension_silence_hours: int = 48
    max_milestones: int = Field(20, ge=1, le=100)
    min_milestone_major: int = Field(5, ge=1)
    min_payout_major: int = Field(10, ge=1)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if not self.secret_key:
            self.secret_key = _stored_secret(self.data_dir)
        if self.dev_clock and self.env == "production":
            raise ValueError("MILEPOST_DEV_CLOCK cannot be enabled with MILEPOST_ENV=production")
        check_operator_terms(self.default_terms)
        return self

    @cached_property
    def default_terms(self) -> Terms:
        # Every term but the two modes has a setting of the same name.
        same_name = {f.name: getattr(self, f.name) for f in fields(Terms) if f.name not in ("funding", "release")}
        return Terms(funding=self.default_funding, release=self.default_release, **same_name)

    @property
    def plan_limits(self) -> PlanLimits:
        return PlanLimits(max_milestones=self.max_milestones, min_milestone_major=self.min_milestone_major)

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            return url
        return f"sqlite:///{(self.data_dir / 'milepost.sqlite3').resolve()}"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"
