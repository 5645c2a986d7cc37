"""Cash-flow read models: the forecast schedule and the escrow per order (issue 5).

Every forecast date has the form max(P, now + Q) with P, Q independent of now
(milepost/cashflow/projection.py). Keeping each line's P and Q, amounts and certainty in a narrow
table keyed by seller makes the seller forecast a scan of the seller's rows instead of a join, a
sort and three window passes over every open milestone; keeping each order's escrow on one row makes
the balances a read of the seller's orders instead of a join and a grouping of their milestones. The
rows of existing orders are computed here, order by order, with the same pure functions the
application keeps them with (milepost/cashflow/projector.py) and the audit checks them against.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 03:40:00
"""
from collections.abc import Sequence
from itertools import groupby

import sqlalchemy as sa
from alembic import op

from milepost.cashflow.projection import (
    MILESTONE_FIELDS,
    OPEN_ORDER_STATUSES,
    ORDER_FIELDS,
    facts_of_rows,
    in_escrow,
    order_lines,
)

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5_000

orders = sa.table(
    'orders', sa.column('id', sa.String), sa.column('seller_id', sa.String), sa.column('buyer_id', sa.String),
    sa.column('currency', sa.String),
    sa.column('status', sa.String), sa.column('release', sa.String), sa.column('review_days', sa.Integer),
    sa.column('clearance_days', sa.Integer), sa.column('dispute_negotiation_days', sa.Integer),
    sa.column('seller_fee_bps', sa.Integer), sa.column('late_grace_hours', sa.Integer),
)
milestones = sa.table(
    'milestones', sa.column('id', sa.String), sa.column('order_id', sa.String), sa.column('seq', sa.Integer),
    sa.column('status', sa.String), sa.column('due_days', sa.Integer), sa.column('due_at', sa.DateTime(timezone=True)),
    sa.column('review_due_at', sa.DateTime(timezone=True)), sa.column('amount', sa.BigInteger),
    sa.column('funded_amount', sa.BigInteger), sa.column('released_amount', sa.BigInteger),
    sa.column('refunded_amount', sa.BigInteger), sa.column('held_for_seller_amount', sa.BigInteger),
)
disputes = sa.table(
    'disputes', sa.column('milestone_id', sa.String), sa.column('opened_at', sa.DateTime(timezone=True)),
    sa.column('resolved_at', sa.DateTime(timezone=True)),
)


def _bytewise(length: int) -> sa.String:
    # ordered byte by byte on PostgreSQL too (the schedule's order is an index's order)
    return sa.String(length=length).with_variant(sa.String(length=length, collation='C'), 'postgresql')


def upgrade() -> None:
    op.create_table('forecast_schedule',
    sa.Column('milestone_id', _bytewise(40), nullable=False),
    sa.Column('order_id', _bytewise(40), nullable=False),
    sa.Column('seller_id', sa.String(length=40), nullable=False),
    sa.Column('currency', _bytewise(3), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('rank', sa.SmallInteger(), nullable=False),
    sa.Column('gross', sa.BigInteger(), nullable=False),
    sa.Column('fee', sa.BigInteger(), nullable=False),
    sa.Column('base_us', sa.BigInteger(), nullable=False),
    sa.Column('lag_us', sa.BigInteger(), nullable=False),
    sa.Column('slides_from_us', sa.BigInteger(), nullable=False),
    sa.Column('late_after_us', sa.BigInteger(), nullable=True),
    sa.Column('funded', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('milestone_id', name=op.f('pk_forecast_schedule'))
    )
    with op.batch_alter_table('forecast_schedule', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_forecast_schedule_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_forecast_schedule_dated', ['seller_id', 'base_us', 'rank', 'currency', 'order_id',
                                                              'seq', 'milestone_id'], unique=False)
        batch_op.create_index('ix_forecast_schedule_sliding', ['seller_id', 'slides_from_us'], unique=False)
    op.create_table('order_escrow',
    sa.Column('order_id', _bytewise(40), nullable=False),
    sa.Column('seller_id', sa.String(length=40), nullable=False),
    sa.Column('buyer_id', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('order_id', name=op.f('pk_order_escrow'))
    )
    with op.batch_alter_table('order_escrow', schema=None) as batch_op:
        batch_op.create_index('ix_order_escrow_buyer_id_order_id', ['buyer_id', 'order_id'], unique=False)
        batch_op.create_index('ix_order_escrow_seller_id_order_id', ['seller_id', 'order_id'], unique=False)
    backfill(op.get_bind())


def backfill(conn: sa.Connection) -> None:
    """The rows of every order with lines or escrow (the tables must hold none of them yet)."""
    # SQLite returns the timestamps as naive UTC (as the app stores them); the projection reads
    # naive values as UTC.
    opened = dict(conn.execute(
        sa.select(disputes.c.milestone_id, sa.func.max(disputes.c.opened_at))
        .where(disputes.c.resolved_at.is_(None)).group_by(disputes.c.milestone_id)
    ).all())
    o, m = orders.c, milestones.c
    rows = conn.execute(
        sa.select(*(o[f] for f in ORDER_FIELDS), *(m[f] for f in MILESTONE_FIELDS))
        .join(milestones, m.order_id == o.id)
        .where(sa.or_(o.status.in_([str(s) for s in OPEN_ORDER_STATUSES]),
                      m.funded_amount - m.released_amount - m.refunded_amount != 0))
        .order_by(o.id, m.seq)
    )
    table = sa.table('forecast_schedule', *(sa.column(name) for name in (
        'milestone_id', 'order_id', 'seller_id', 'currency', 'seq', 'rank', 'gross', 'fee', 'base_us', 'lag_us',
        'slides_from_us', 'late_after_us', 'funded')))
    escrow = sa.table('order_escrow', *(sa.column(name) for name in (
        'order_id', 'seller_id', 'buyer_id', 'currency', 'amount')))
    pending: list[dict[str, object]] = []
    held: list[dict[str, object]] = []
    for _, group in groupby(rows, key=lambda r: r[0]):
        order, facts = facts_of_rows(list(group))
        for line in order_lines(order, facts, opened):
            pending.append({'order_id': order.id, 'seller_id': order.seller_id, 'currency': order.currency,
                            **line._asdict()})
        amount = sum(in_escrow(m) for m in facts)
        if amount:
            held.append({'order_id': order.id, 'seller_id': order.seller_id, 'buyer_id': order.buyer_id,
                         'currency': order.currency, 'amount': amount})
        if len(pending) >= BATCH or len(held) >= BATCH:
            pending, held = _insert(conn, table, pending), _insert(conn, escrow, held)
    _insert(conn, table, pending)
    _insert(conn, escrow, held)


def _insert(conn: sa.Connection, table: sa.TableClause, rows: list[dict[str, object]]) -> list[dict[str, object]]:
    if rows:
        conn.execute(sa.insert(table), rows)
    return []


def downgrade() -> None:
    with op.batch_alter_table('order_escrow', schema=None) as batch_op:
        batch_op.drop_index('ix_order_escrow_seller_id_order_id')
        batch_op.drop_index('ix_order_escrow_buyer_id_order_id')
    op.drop_table('order_escrow')
    with op.batch_alter_table('forecast_schedule', schema=None) as batch_op:
        batch_op.drop_index('ix_forecast_schedule_sliding')
        batch_op.drop_index('ix_forecast_schedule_dated')
        batch_op.drop_index(batch_op.f('ix_forecast_schedule_order_id'))
    op.drop_table('forecast_schedule')
