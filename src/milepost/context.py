"""What every use case needs besides its arguments: the session, the time, settings, ports.

An entry point (HTTP request, CLI command, timer firing) builds one `Ctx` per transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from milepost.config import Settings
from milepost.files import FileStore
from milepost.payouts.provider import PaymentProvider


@dataclass
class Ctx:
    session: Session
    now: datetime
    settings: Settings
    provider: PaymentProvider
    files: FileStore
    # Events recorded in this transaction; entry points may use them after commit (e.g. to wake
    # the webhook sender).
    events: list[int] = field(default_factory=list)
