"""The long-lived parts of a running Milepost: settings, database, clock and ports.

`unit_of_work()` is how every entry point gets one transaction and a `Ctx` to call services with.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from milepost.clock import Clock, OffsetClock, SystemClock
from milepost.config import Settings
from milepost.context import Ctx
from milepost.db import Database
from milepost.files import FileStore
from milepost.payouts.provider import PaymentProvider, provider_for


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock
    provider: PaymentProvider
    files: FileStore = field(init=False)

    def __post_init__(self) -> None:
        self.files = FileStore(self.settings.files_dir)

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, *, clock: Clock | None = None, pool_size: int = 10
    ) -> Runtime:
        settings = settings or Settings()
        if clock is None:
            clock = OffsetClock() if settings.dev_clock else SystemClock()
        return cls(
            settings=settings,
            db=Database(settings.sqlalchemy_url, pool_size=pool_size),
            clock=clock,
            provider=provider_for(settings.payment_provider),
        )

    def _ctx(self, session: Session) -> Ctx:
        return Ctx(session=session, now=self.clock.now(), settings=self.settings,
                   provider=self.provider, files=self.files)

    @contextmanager
    def unit_of_work(self) -> Iterator[Ctx]:
        """One write transaction: committed when the block succeeds, rolled back otherwise."""
        with self.db.transaction() as session:
            yield self._ctx(session)

    @contextmanager
    def reading(self) -> Iterator[Ctx]:
        """A read-only transaction (no write lock on SQLite)."""
        with self.db.reading() as session:
            yield self._ctx(session)
