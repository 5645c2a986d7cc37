"""Plan validation (SPEC §2.1): every violation reported at once, with the field it concerns."""

from __future__ import annotations

import pytest

from milepost.errors import InvalidInput
from milepost.money import MAX_AMOUNT
from milepost.orders.plan import PlanLimits, text_problem, validate_plan


def ms(**over):
    return {"title": "Page 1", "amount": 10_000, "due_days": 5, "acceptance_criteria": ["loads"], **over}


def problems(currency, milestones, **kw):
    with pytest.raises(InvalidInput) as exc:
        validate_plan(currency, milestones, default_revisions=2, **kw)
    return {e["field"]: e["message"] for e in exc.value.errors}


def test_valid_plan_becomes_specs_with_default_revisions():
    specs = validate_plan("USD", [ms(), ms(title="  Page 2 ", revisions=0)], default_revisions=2)
    assert [s.title for s in specs] == ["Page 1", "Page 2"]
    assert [s.revisions for s in specs] == [2, 0]
    assert specs[0].acceptance_criteria == ("loads",)


@pytest.mark.parametrize("amount", [0, -100])
def test_plan_refuses_non_positive_amounts(amount):
    assert problems("USD", [ms(amount=amount)])["milestones[0].amount"] == "must be positive"


@pytest.mark.parametrize("amount", [100.0, "1000", True, None, 1e3])
def test_plan_refuses_non_integer_amounts(amount):
    assert "whole number" in problems("USD", [ms(amount=amount)])["milestones[0].amount"]


def test_plan_refuses_amounts_beyond_64_bits():
    assert "too large" in problems("USD", [ms(amount=MAX_AMOUNT + 1)])["milestones[0].amount"]


def test_plan_refuses_a_total_beyond_64_bits():
    found = problems("USD", [ms(amount=MAX_AMOUNT), ms(amount=MAX_AMOUNT)])
    assert "64 bits" in found["milestones"]


def test_plan_refuses_amounts_below_the_minimum_in_major_units():
    assert "at least 500" in problems("USD", [ms(amount=499)])["milestones[0].amount"]
    assert "at least 5 " in problems("JPY", [ms(amount=4)])["milestones[0].amount"]
    assert "at least 5000" in problems("BHD", [ms(amount=4999)])["milestones[0].amount"]
    validate_plan("JPY", [ms(amount=5)], default_revisions=2)


@pytest.mark.parametrize("text", ["bad\x00title", "bell\x07", "del\x7f", "esc\x1b[31m", "c1\x85control"])
def test_plan_refuses_nul_and_control_characters_in_text(text):
    found = problems("USD", [ms(title=text, description=text, acceptance_criteria=[text])])
    assert set(found) >= {"milestones[0].title", "milestones[0].description",
                          "milestones[0].acceptance_criteria[0]"}
    assert "control" in found["milestones[0].title"]


def test_text_allows_tabs_and_newlines_and_unicode():
    assert text_problem("line 1\nline 2\ttabbed — café ✓", max_len=100) is None


def test_text_refuses_lone_surrogates():
    assert text_problem("bad \ud800 text", max_len=100) is not None


def test_plan_refuses_empty_titles_and_oversized_text():
    found = problems("USD", [ms(title="   "), ms(description="x" * 10_001)])
    assert found["milestones[0].title"] == "must not be empty"
    assert "at most" in found["milestones[1].description"]


def test_plan_needs_at_least_one_milestone():
    assert "at least one" in problems("USD", [])["milestones"]


def test_plan_refuses_too_many_milestones():
    assert "at most 3" in problems("USD", [ms()] * 4, limits=PlanLimits(max_milestones=3))["milestones"]


@pytest.mark.parametrize("due_days", [0, -1, 366, 1.5, True, None])
def test_plan_refuses_bad_due_days(due_days):
    assert "milestones[0].due_days" in problems("USD", [ms(due_days=due_days)])


@pytest.mark.parametrize("revisions", [-1, 11, True, "2"])
def test_plan_refuses_bad_revision_counts(revisions):
    assert "milestones[0].revisions" in problems("USD", [ms(revisions=revisions)])


def test_plan_refuses_unknown_currency():
    assert "currency" in problems("XYZ", [ms()])


def test_plan_reports_every_violation_at_once():
    found = problems(
        "USD",
        [ms(title="", amount=0), ms(amount=True, due_days=0), ms(acceptance_criteria="not a list"), "nope"],
    )
    assert set(found) == {
        "milestones[0].title", "milestones[0].amount", "milestones[1].amount", "milestones[1].due_days",
        "milestones[2].acceptance_criteria", "milestones[3]",
    }
