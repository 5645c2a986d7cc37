"""Every table, imported in one place so Alembic and the drift test see the whole schema."""

from milepost.accounts.models import ApiToken, User
from milepost.db import Base
from milepost.disputes.models import Dispute, DisputeProposal
from milepost.events.models import Event
from milepost.idempotency.models import IdempotencyRecord
from milepost.ledger.models import ClearingLot, Posting, Transfer
from milepost.orders.models import Delivery, DeliveryFile, Milestone, Order, PlanVersion
from milepost.payouts.models import Payout
from milepost.timers.models import Timer
from milepost.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiToken", "Base", "ClearingLot", "Delivery", "DeliveryFile", "Dispute", "DisputeProposal",
    "Event", "IdempotencyRecord", "Milestone", "Order", "Payout", "PlanVersion", "Posting",
    "Timer", "Transfer", "User", "WebhookAttempt", "WebhookDelivery", "WebhookEndpoint",
]
