"""Split math, templates and every lint rule — pure, no database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from milepost.orders.terms import Terms
from milepost.planning import templates
from milepost.planning.history import NEW_PAIR, PairHistory, TrustLevel, recommend
from milepost.planning.lint import lint_plan
from milepost.planning.split import split_by_weights, split_evenly


def ms(amount, *, due_days=10, revisions=None, criteria=("checkable",)):
    return {"title": "m", "amount": amount, "due_days": due_days, "acceptance_criteria": list(criteria),
            **({"revisions": revisions} if revisions is not None else {})}


def codes(warnings):
    return [w.code for w in warnings]


@given(st.integers(0, 2**63 - 1), st.integers(1, 100))
def test_even_split_sums_exactly_and_differs_by_at_most_one(total, parts):
    amounts = split_evenly(total, parts)
    assert sum(amounts) == total and len(amounts) == parts
    assert max(amounts) - min(amounts) <= 1
    assert amounts == sorted(amounts, reverse=True)  # the remainder goes to the first parts


@given(st.integers(0, 2**63 - 1), st.lists(st.integers(1, 10_000), min_size=1, max_size=20))
def test_weighted_split_sums_exactly(total, weights):
    amounts = split_by_weights(total, weights)
    assert sum(amounts) == total
    for a, w in zip(amounts, weights, strict=True):
        assert abs(a - total * w / sum(weights)) <= 1 + total * 1e-15


def test_split_of_100_into_3():
    assert split_evenly(100, 3) == [34, 33, 33]


def test_every_template_instantiates_to_the_exact_total():
    kinds = set(templates.all_templates())
    assert {"website_pages", "illustrations", "writing_chapters", "software_sprints", "video"} <= kinds
    for kind in kinds:
        plan = templates.instantiate(kind, total=1_234_567, currency="USD")
        assert sum(m["amount"] for m in plan) == 1_234_567
        assert all(m["acceptance_criteria"] for m in plan)
        # templates follow their own advice: no lint warning for a new pair
        assert lint_plan(plan, currency="USD", terms=Terms()) == []


def test_missing_acceptance_criteria_is_flagged_per_milestone():
    warnings = lint_plan([ms(1000), ms(1000, criteria=()), ms(1000)], currency="USD", terms=Terms(),
                         recommendation=recommend(PairHistory(orders_completed=3)))
    assert [(w.code, w.seq) for w in warnings] == [("missing_acceptance_criteria", 2)]


def test_one_milestone_holding_most_of_the_money():
    warnings = lint_plan([ms(1000), ms(8000), ms(1000)], currency="USD", terms=Terms(),
                         recommendation=recommend(PairHistory(orders_completed=3)))
    assert codes(warnings) == ["concentrated_amount"]
    assert warnings[0].seq == 2 and "80%" in warnings[0].message


def test_single_milestone_plan_over_the_floor():
    assert codes(lint_plan([ms(50_000)], currency="USD", terms=Terms(),
                           recommendation=recommend(PairHistory(orders_completed=3)))) == ["single_milestone"]
    assert lint_plan([ms(5_000)], currency="USD", terms=Terms(),
                     recommendation=recommend(PairHistory(orders_completed=3))) == []


def test_first_milestone_too_large_only_for_a_new_pair():
    plan = [ms(4000), ms(3000), ms(3000)]
    assert "first_milestone_too_large" in codes(lint_plan(plan, currency="USD", terms=Terms()))
    trusted = recommend(PairHistory(orders_completed=2))
    assert trusted.level == TrustLevel.TRUSTED
    assert lint_plan(plan, currency="USD", terms=Terms(), recommendation=trusted) == []


def test_due_days_too_tight_for_the_revision_count():
    terms = Terms(revisions=2, revision_turnaround_days=3)
    trusted = recommend(PairHistory(orders_completed=2))
    warnings = lint_plan([ms(1000, due_days=6), ms(1000, due_days=7), ms(1000, due_days=2, revisions=0)],
                         currency="USD", terms=terms, recommendation=trusted)
    assert [(w.code, w.seq) for w in warnings] == [("due_days_too_tight", 1)]


def test_total_days_unusually_long_for_the_amount():
    trusted = recommend(PairHistory(orders_completed=2))
    long_cheap = [ms(2000, due_days=60), ms(2000, due_days=60)]  # 40.00 USD over 120 days
    assert codes(lint_plan(long_cheap, currency="USD", terms=Terms(), recommendation=trusted)) == ["long_for_amount"]
    long_paid = [ms(500_000, due_days=60), ms(500_000, due_days=60)]
    assert lint_plan(long_paid, currency="USD", terms=Terms(), recommendation=trusted) == []


def test_lint_is_lenient_with_half_typed_plans():
    assert lint_plan([{"title": ""}, {"amount": True}, "junk"], currency="XXX?", terms=Terms()) is not None


def test_recommendation_shapes():
    assert recommend(PairHistory()) == NEW_PAIR
    assert recommend(PairHistory(orders_completed=5, orders_disputed=1)).level == TrustLevel.CAUTION
    assert recommend(PairHistory(orders_completed=1)).level == TrustLevel.KNOWN
    assert recommend(PairHistory(orders_completed=3)).min_milestones == 1


@pytest.mark.parametrize("bad", [-1, True, 1.5])
def test_weighted_split_refuses_bad_totals(bad):
    with pytest.raises(ValueError):
        split_by_weights(bad, [1, 2])
