"""A Hypothesis state machine: random command sequences and clock moves against the real database.

Every example gets a fresh database copied from the session's migrated template (a file copy on
SQLite, CREATE DATABASE … TEMPLATE on PostgreSQL); after every step every SPEC §2.5 invariant is
checked with the same audit `milepost audit` runs, plus a few rules the audit cannot see.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from milepost.clock import FixedClock
from milepost.config import Settings
from milepost.disputes import service as disputes
from milepost.disputes.models import Dispute
from milepost.errors import MilepostError
from milepost.ledger.postings import available_account, escrow_account
from milepost.orders import repository as orders_repo
from milepost.orders import service as orders
from milepost.orders.models import Milestone, Order
from milepost.payouts import service as payouts
from milepost.runtime import Runtime
from milepost.timers.worker import run_due
from tests.factories import assert_invariants, make_user, plan
from tests.orders.helpers import balance

_names = itertools.count()


class Databases:
    """Fresh migrated databases for one backend, one per Hypothesis example."""

    def __init__(self, backend, sqlite_template, pg_cluster, pg_template):
        self.backend, self.sqlite_template = backend, sqlite_template
        self.pg_cluster, self.pg_template = pg_cluster, pg_template

    def create(self):
        if self.backend == "sqlite":
            root = Path(tempfile.mkdtemp(prefix="milepost-stateful-"))
            shutil.copyfile(self.sqlite_template, root / "milepost.sqlite3")
            settings_ = Settings(data_dir=root, _env_file=None)  # type: ignore[call-arg]
            return settings_, lambda: shutil.rmtree(root, ignore_errors=True)
        name = f"stateful_{next(_names)}"
        url = self.pg_cluster.create_database(name, template=self.pg_template)
        root = Path(tempfile.mkdtemp(prefix="milepost-stateful-"))
        settings_ = Settings(data_dir=root, database_url=url, _env_file=None)  # type: ignore[call-arg]

        def drop():
            self.pg_cluster.drop_database(name)
            shutil.rmtree(root, ignore_errors=True)

        return settings_, drop


DATABASES: Databases | None = None

amounts = st.lists(st.integers(500, 40_000), min_size=1, max_size=3)
terms = st.fixed_dictionaries({
    "funding": st.sampled_from(["upfront", "per_milestone"]),
    "release": st.sampled_from(["per_milestone", "on_completion"]),
    "kill_fee_bps": st.sampled_from([0, 2500, 10_000]),
    "clearance_days": st.sampled_from([0, 3, 7]),
    "review_days": st.sampled_from([1, 3]),
    "revisions": st.sampled_from([0, 1, 2]),
})


class Escrow(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        assert DATABASES is not None
        self.settings, self._drop = DATABASES.create()
        self.clock = FixedClock()
        self.rt = Runtime.from_settings(self.settings, clock=self.clock, pool_size=5)
        self.order_ids: list[str] = []
        self.finished: dict[str, str] = {}

    @initialize(amounts=amounts, terms=terms, funded=st.booleans())
    def people_and_a_running_order(self, amounts, terms, funded):
        self.buyer = make_user(self.rt, email="buyer@example.com")
        self.seller = make_user(self.rt, email="seller@example.com")
        self.operator = make_user(self.rt, email="ops@example.com", operator=True)
        order = self.attempt(orders.propose, actor=self.seller, role="seller", counterparty_email=self.buyer.email,
                             title="Stateful", currency="USD", terms=terms, milestones=plan(*amounts))
        self.order_ids.append(order.id)
        self.attempt(orders.accept, actor=self.buyer, order_id=order.id, plan_version=1)
        if funded:
            self.attempt(orders.fund, actor=self.buyer, order_id=order.id)

    def teardown(self):
        self.rt.db.dispose()
        self._drop()

    # --- helpers -------------------------------------------------------------------------

    def attempt(self, fn, **kwargs):
        """Run a command; a domain error is a legal answer (and must leave nothing behind)."""
        try:
            with self.rt.unit_of_work() as ctx:
                return fn(ctx, **kwargs)
        except MilepostError:
            return None

    def party(self, data):
        return data.draw(st.sampled_from([self.buyer, self.seller]))

    def orders_in(self, *statuses):
        with self.rt.reading() as ctx:
            return list(ctx.session.scalars(select(Order).where(
                Order.id.in_(self.order_ids), Order.status.in_(statuses)).order_by(Order.id)))

    def milestones_in(self, *statuses):
        with self.rt.reading() as ctx:
            return list(ctx.session.scalars(select(Milestone).where(
                Milestone.order_id.in_(self.order_ids), Milestone.status.in_(statuses))
                .order_by(Milestone.id)))

    def pick(self, data, items):
        return data.draw(st.sampled_from(items)) if items else None

    def open_dispute_ids(self):
        with self.rt.reading() as ctx:
            return list(ctx.session.scalars(select(Dispute.id).where(Dispute.status != "resolved")
                                            .order_by(Dispute.id)))

    # --- commands (mostly aimed at something they can act on; `stray` sends nonsense) -----

    @precondition(lambda self: len(self.order_ids) < 3)
    @rule(amounts=amounts, terms=terms, by_buyer=st.booleans())
    def propose(self, amounts, terms, by_buyer):
        actor, other, role = ((self.buyer, self.seller, "buyer") if by_buyer
                              else (self.seller, self.buyer, "seller"))
        order = self.attempt(orders.propose, actor=actor, role=role, counterparty_email=other.email,
                             title="Stateful", currency="USD", terms=terms, milestones=plan(*amounts))
        if order is not None:
            self.order_ids.append(order.id)

    def _other(self, order):
        return self.seller if order.proposed_by_id == self.buyer.id else self.buyer

    @rule(data=st.data(), amounts=amounts)
    def counter(self, data, amounts):
        if (order := self.pick(data, self.orders_in("proposed"))) is not None:
            self.attempt(orders.counter, actor=self._other(order), order_id=order.id, milestones=plan(*amounts))

    @rule(data=st.data())
    def accept(self, data):
        if (order := self.pick(data, self.orders_in("proposed"))) is not None:
            self.attempt(orders.accept, actor=self._other(order), order_id=order.id,
                         plan_version=order.plan_version)

    @rule(data=st.data())
    def fund(self, data):
        if (order := self.pick(data, self.orders_in("agreed", "active"))) is not None:
            self.attempt(orders.fund, actor=self.buyer, order_id=order.id)

    @rule(data=st.data())
    def deliver(self, data):
        if (m := self.pick(data, self.milestones_in("in_progress"))) is not None:
            self.attempt(orders.deliver, actor=self.seller, order_id=m.order_id, milestone_id=m.id,
                         message="done")

    @rule(data=st.data(), then_approve=st.booleans())
    def deliver_and_review(self, data, then_approve):
        """The common path, so sequences reach approvals, releases and clearing often."""
        if (m := self.pick(data, self.milestones_in("in_progress"))) is None:
            return
        self.attempt(orders.deliver, actor=self.seller, order_id=m.order_id, milestone_id=m.id, message="v")
        if then_approve:
            self.attempt(orders.approve, actor=self.buyer, order_id=m.order_id, milestone_id=m.id)

    @rule(data=st.data())
    def revise(self, data):
        if (m := self.pick(data, self.milestones_in("delivered"))) is not None:
            self.attempt(orders.request_revision, actor=self.buyer, order_id=m.order_id, milestone_id=m.id,
                         reason="again")

    @rule(data=st.data())
    def approve(self, data):
        if (m := self.pick(data, self.milestones_in("delivered"))) is not None:
            self.attempt(orders.approve, actor=self.buyer, order_id=m.order_id, milestone_id=m.id)

    @rule(data=st.data())
    def cancel(self, data):
        if data.draw(st.integers(0, 3)) != 0:  # cancelling ends orders: keep it rarer than the rest
            return
        if (order := self.pick(data, self.orders_in("agreed", "active"))) is not None:
            self.attempt(orders.cancel, actor=self.party(data), order_id=order.id, reason="stop")

    @rule(data=st.data(), share=st.integers(0, 100))
    def dispute(self, data, share):
        if (m := self.pick(data, self.milestones_in("in_progress", "delivered"))) is not None:
            self.attempt(disputes.open_dispute, actor=self.party(data), order_id=m.order_id, milestone_id=m.id,
                         reason="unhappy", seller_amount=m.amount * share // 100)

    @precondition(lambda self: self.order_ids)
    @rule(data=st.data(), command=st.sampled_from(["approve", "deliver", "revise", "fund", "accept"]))
    def stray(self, data, command):
        """Any command on any milestone by anyone: illegal ones must be refused cleanly."""
        order_id = data.draw(st.sampled_from(self.order_ids))
        with self.rt.reading() as ctx:
            ids = [m.id for m in orders_repo.milestones_of(ctx.session, order_id)]
        mid = data.draw(st.sampled_from(ids))
        actor = data.draw(st.sampled_from([self.buyer, self.seller, self.operator]))
        calls = {
            "approve": (orders.approve, {"milestone_id": mid}),
            "deliver": (orders.deliver, {"milestone_id": mid, "message": "x"}),
            "revise": (orders.request_revision, {"milestone_id": mid, "reason": "x"}),
            "fund": (orders.fund, {"milestone_ids": [mid]}),
            "accept": (orders.accept, {"plan_version": 1}),
        }
        fn, kwargs = calls[command]
        self.attempt(fn, actor=actor, order_id=order_id, **kwargs)

    @rule(data=st.data(), share=st.integers(0, 100), how=st.sampled_from(["counter", "accept", "resolve"]))
    def answer_dispute(self, data, share, how):
        open_ids = self.open_dispute_ids()
        if not open_ids:
            return
        dispute_id = data.draw(st.sampled_from(open_ids))
        amount = share * 100  # may exceed small milestones: then it is refused, which is fine
        if how == "counter":
            self.attempt(disputes.counter, actor=self.party(data), dispute_id=dispute_id, seller_amount=amount)
        elif how == "accept":
            self.attempt(disputes.accept, actor=self.party(data), dispute_id=dispute_id)
        else:
            self.attempt(disputes.resolve, actor=self.operator, dispute_id=dispute_id, seller_amount=amount)

    @rule(share=st.integers(1, 100))
    def payout(self, share):
        amount = balance(self.rt, available_account(self.seller.id)) * share // 100
        self.attempt(payouts.create_payout, actor=self.seller, amount=max(amount, 1), currency="USD")

    @rule(hours=st.sampled_from([1, 12, 24, 25, 72, 24 * 4, 24 * 8]))
    def advance_clock(self, hours):
        self.clock.advance(timedelta(hours=hours))
        result = run_due(self.rt)
        assert result.failed == 0

    # --- invariants ----------------------------------------------------------------------

    @invariant()
    def ledger_invariants_hold(self):
        assert_invariants(self.rt)

    @invariant()
    def ended_orders_stay_ended_and_hold_no_escrow(self):
        with self.rt.reading() as ctx:
            rows = ctx.session.execute(select(Order.id, Order.status).where(Order.id.in_(self.order_ids))).all()
        for order_id, status in rows:
            if order_id in self.finished:
                assert status == self.finished[order_id], "an ended order changed status"
            if status in ("completed", "cancelled"):
                self.finished[order_id] = status
                assert balance(self.rt, escrow_account(order_id)) == 0


@pytest.mark.parametrize("backend_name", ["sqlite", "postgres"])
def test_random_command_sequences_keep_every_invariant(backend_name, request, sqlite_template, monkeypatch):
    global DATABASES
    from argon2 import PasswordHasher

    from milepost.accounts import service as accounts

    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    pg_cluster = pg_template = None
    if backend_name == "postgres":
        pg_cluster = request.getfixturevalue("pg_cluster")
        if pg_cluster is None:
            pytest.skip("PostgreSQL not available")
        pg_template = request.getfixturevalue("pg_template")
    DATABASES = Databases(backend_name, sqlite_template, pg_cluster, pg_template)
    try:
        run_state_machine_as_test(
            Escrow,
            settings=settings(max_examples=15, stateful_step_count=30, deadline=None, database=None,
                              suppress_health_check=list(HealthCheck)),
        )
    finally:
        DATABASES = None
