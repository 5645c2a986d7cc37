"""Every table, imported in one place so Alembic and the drift test see the whole schema."""

from milepost.accounts.models import ApiToken, User
from milepost.cashflow.models import OrderEscrow, ScheduleRow
from milepost.changes.models import ChangeOrder, Extension
from milepost.db import Base
from milepost.disputes.models import Dispute, DisputeProposal
from milepost.events.models import Event
from milepost.idempotency.models import IdempotencyRecord
from milepost.ledger.models import ClearingLot, Posting, Transfer
from milepost.orders.models import Delivery, DeliveryFile, Milestone, Order, PlanVersion
from milepost.payouts.models import Payout
from milepost.reviews.models import Review
from milepost.timers.models import Timer
from milepost.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiToken", "Base", "ChangeOrder", "ClearingLot", "Delivery", "DeliveryFile", "Dispute",
    "DisputeProposal", "Event", "Extension", "IdempotencyRecord", "Milestone", "Order", "OrderEscrow", "Payout",
    "PlanVersion", "Posting", "Review", "ScheduleRow", "Timer", "Transfer", "User", "WebhookAttempt", "WebhookDelivery", "WebhookEndpoint",
]
