"""Terms: the defaults and bounds of SPEC §8; operator terms are not the parties' to set."""

from __future__ import annotations

import pytest

from milepost.errors import InvalidInput
from milepost.orders.terms import (
    FundingMode,
    ReleaseMode,
    Terms,
    check_operator_terms,
    resolve_terms,
    terms_from_dict,
)


def test_default_terms_are_those_of_spec_section_8():
    t = Terms()
    assert t.funding == FundingMode.UPFRONT
    assert t.release == ReleaseMode.PER_MILESTONE
    assert (t.review_days, t.revisions, t.revision_turnaround_days, t.clearance_days) == (7, 2, 3, 7)
    assert (t.kill_fee_bps, t.seller_fee_bps, t.buyer_fee_bps) == (0, 1000, 0)
    assert t.late_grace_hours == 24
    assert (t.dispute_response_days, t.dispute_negotiation_days) == (4, 7)


def test_omitted_terms_take_the_installation_defaults():
    defaults = Terms(review_days=3)
    assert resolve_terms(None, defaults) == defaults
    assert resolve_terms({"clearance_days": 14}, defaults) == Terms(review_days=3, clearance_days=14)


def test_parties_choose_funding_and_release_modes():
    t = resolve_terms({"funding": "per_milestone", "release": "on_completion"}, Terms())
    assert t.funding == FundingMode.PER_MILESTONE
    assert t.release == ReleaseMode.ON_COMPLETION


@pytest.mark.parametrize(
    ("name", "value"),
    [("review_days", 0), ("review_days", 31), ("revisions", 11), ("revisions", -1),
     ("clearance_days", 31), ("kill_fee_bps", 10_001), ("kill_fee_bps", -1),
     ("review_days", True), ("review_days", 7.0), ("review_days", "7")],
)
def test_party_terms_outside_their_bounds_are_refused(name, value):
    with pytest.raises(InvalidInput) as exc:
        resolve_terms({name: value}, Terms())
    assert exc.value.errors[0]["field"] == f"terms.{name}"


@pytest.mark.parametrize(("name", "value"), [("review_days", 1), ("review_days", 30), ("clearance_days", 0),
                                             ("kill_fee_bps", 10_000), ("revisions", 0)])
def test_party_terms_at_their_bounds_are_accepted(name, value):
    assert getattr(resolve_terms({name: value}, Terms()), name) == value


def test_operator_terms_cannot_be_set_by_the_parties():
    with pytest.raises(InvalidInput) as exc:
        resolve_terms({"seller_fee_bps": 0, "buyer_fee_bps": 5}, Terms())
    assert {e["field"] for e in exc.value.errors} == {"terms.seller_fee_bps", "terms.buyer_fee_bps"}


def test_every_bad_term_is_reported_at_once():
    with pytest.raises(InvalidInput) as exc:
        resolve_terms({"funding": "later", "release": "never", "review_days": 99, "colour": "red"}, Terms())
    assert {e["field"] for e in exc.value.errors} == {
        "terms.funding", "terms.release", "terms.review_days", "terms.colour"}


def test_installation_defaults_are_checked_against_bounds():
    check_operator_terms(Terms())
    with pytest.raises(InvalidInput):
        check_operator_terms(Terms(seller_fee_bps=20_000))


def test_stored_terms_round_trip_and_ignore_unknown_keys():
    t = Terms(funding=FundingMode.PER_MILESTONE, kill_fee_bps=2500)
    assert terms_from_dict({**t.as_dict(), "from_the_future": 1}) == t


@pytest.mark.parametrize("requested", [["review_days"], "review_days=3", 7])
def test_terms_that_are_not_an_object_are_refused_cleanly(requested):
    with pytest.raises(InvalidInput) as exc:
        resolve_terms(requested, Terms())  # type: ignore[arg-type]
    assert exc.value.errors[0]["field"] == "terms"
