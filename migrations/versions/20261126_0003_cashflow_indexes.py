"""Cash-flow indexes: a seller's open orders found by one index range (issue 5/7).

The balances and forecast read a seller's agreed/active orders (`seller_id = ? AND status IN
(…)`). With `seller_id` alone every order the seller ever had is fetched and filtered; a seller
with thousands of completed orders pays for all of them on every forecast. The composite index
serves both that and every `seller_id = ?` lookup (its prefix), so it replaces the single-column one
instead of adding an index to maintain on each write. (`milestones (order_id, seq)` is already the
unique constraint's index.)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 00:55:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_seller_id_status', ['seller_id', 'status'], unique=False)
        batch_op.drop_index(batch_op.f('ix_orders_seller_id'))


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_seller_id'), ['seller_id'], unique=False)
        batch_op.drop_index('ix_orders_seller_id_status')
