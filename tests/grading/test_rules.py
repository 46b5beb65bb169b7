"""The deal arithmetic (grading.rules): grade boundaries pinned exactly, Decimal with no float drift."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from grading.rules import Costs, DealInputs, grade_deal, loss_chance

# ARV $200,000, repairs $20,000, 70% rule: MAO = $120,000; 5% of ARV = $10,000.
BASE = {"arv": D("200000"), "repairs": D("20000"), "arv_low": D("170000"), "arv_high": D("230000")}


def grade(amount: str, **overrides: object):
    return grade_deal(DealInputs(amount=D(amount), **{**BASE, **overrides}))


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("100000", "A"),  # 10% under MAO, downside still profitable
        ("110000", "A"),  # exactly 5% of ARV under MAO
        ("110000.01", "B"),  # a cent less than 5% under
        ("120000", "B"),  # exactly at MAO
        ("120000.01", "C"),  # a cent over MAO
        ("130000", "C"),  # exactly 5% of ARV over
        ("130000.01", "D"),
        ("140000", "D"),  # exactly 10% over
        ("140000.01", "F"),
    ],
)
def test_grade_boundaries_are_exact(amount: str, expected: str) -> None:
    assert grade(amount).grade == expected


def test_a_needs_the_downside_case_to_make_a_profit() -> None:
    # 5% under MAO, but at ARV $150,000 with repairs x1.2 the deal loses $6,650: only a B.
    result = grade("110000", arv_low=D("150000"))
    assert result.grade == "B"
    assert result.numbers["downside_profit"] == D("-6650.00")
    assert "Downside case (ARV $150,000, repairs $24,000) loses $6,650" in result.reasons
    # Same offer, range unknown: no downside case, so no A either.
    unknown = grade("110000", arv_low=None, arv_high=None)
    assert (unknown.grade, unknown.numbers["downside_profit"], unknown.numbers["loss_chance"]) == ("B", None, None)


def test_low_confidence_caps_the_grade_at_b_and_says_so() -> None:
    assert grade("100000", confidence=D("0.50")).grade == "A"  # at the threshold: not low
    capped = grade("100000", confidence=D("0.49"))
    assert capped.grade == "B"
    assert "Valuation confidence 49.0% is below 50.0%: grade capped at B" in capped.reasons
    # The cap never lifts a grade.
    assert grade("125000", confidence=D("0.2")).grade == "C"


def test_a_loss_in_the_base_case_is_an_f_even_under_mao() -> None:
    # 90% rule: MAO $160,000; at that price the costs eat the spread (profit -$10,400).
    result = grade("160000", ratio=D("0.9"))
    assert result.numbers["gap"] == D("0.0000")
    assert result.numbers["projected_profit"] == D("-10400.00")
    assert (result.grade, result.recommendation, result.counter_offer) == ("F", "decline", None)


def test_recommendation_and_counter_offer_that_makes_it_a_b() -> None:
    assert (grade("100000").recommendation, grade("120000").recommendation) == ("accept", "accept")
    c = grade("125000")
    assert (c.grade, c.recommendation, c.counter_offer) == ("C", "negotiate", D("120000"))
    assert "Counter at $120,000 or less to make it a B" in c.reasons
    # The counter is whole hundreds at or below MAO ($120,050 -> $120,000), and grading it gives a B.
    d = grade("138000", repairs=D("19950"))
    assert (d.grade, d.counter_offer) == ("D", D("120000"))
    assert grade(str(d.counter_offer), repairs=D("19950")).grade == "B"
    assert grade("150000").recommendation == "decline"


def test_numbers_and_the_first_reason_read_as_a_rep_would_say_them() -> None:
    result = grade("142000", arv=D("307142.86"), repairs=D("62000"), arv_low=D("280000"), arv_high=D("330000"))
    # MAO = 0.7 x 307,142.86 - 62,000 = 153,000.002 -> $153,000.00; gap $11,000 = 3.6% of ARV.
    assert result.numbers["mao"] == D("153000.00")
    assert result.reasons[0] == "Offer $142,000 is $11,000 (3.6% of ARV) under the 70%-rule maximum of $153,000"
    n = result.numbers
    assert n["all_in_ratio"] == D("0.6642")
    # 307,142.86 x 0.86 - 142,000 x 1.015 - 62,000
    assert n["projected_profit"] == D("58012.86")
    assert n["break_even_arv"] == D("239686.05")
    assert n["break_even_drop"] == D("0.2196")
    assert set(n) >= {"arv", "arv_low", "arv_high", "mao", "gap", "all_in_ratio", "projected_profit", "downside_profit"}


def test_money_stays_decimal_with_no_float_drift() -> None:
    # In floats 0.7 * 100000.1 = 70000.06999999999, below the offer: a float grader would say C.
    result = grade_deal(DealInputs(amount=D("70000.07"), repairs=D("0"), arv=D("100000.10")))
    assert result.numbers["mao"] == D("70000.07")
    assert result.numbers["gap"] == D("0")
    assert result.grade == "B"
    assert all(isinstance(v, D) for v in result.numbers.values() if v is not None)
    assert 0.7 * 100000.1 < 70000.07  # the float trap this test guards against


def test_chance_of_a_loss_comes_from_the_measured_percentiles() -> None:
    # The valuation's low/high are the 10th/90th percentiles of its measured errors. A break-even
    # ARV exactly at the low is a 10% chance of a loss; at the high, 90%; at the estimate, 50%.
    costs = Costs()
    at_low = grade_deal(
        DealInputs(amount=D("120000"), repairs=D("26120"), arv=D("200000"), arv_low=D("172000"), arv_high=D("250000"))
    )
    assert at_low.numbers["break_even_arv"] == D("172000.00")
    assert at_low.numbers["loss_chance"] == D("0.100")
    at_high = loss_chance(arv=D("200000"), arv_low=D("172000"), arv_high=D("250000"), break_even=D("250000"))
    assert at_high == D("0.900")
    assert loss_chance(arv=D("200000"), arv_low=D("172000"), arv_high=None, break_even=D("200000")) == D("0.500")
    assert costs.resale == D("0.08")


def test_score_orders_offers_within_and_across_grades() -> None:
    amounts = [
        "90000",
        "100000",
        "110000",
        "112000",
        "116000",
        "120000",
        "124000",
        "129000",
        "133000",
        "139000",
        "145000",
        "160000",
    ]
    results = [grade(a) for a in amounts]
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True), list(zip(amounts, [r.grade for r in results], scores, strict=True))
    assert all(0 <= s <= 100 for s in scores)
    bands = {"A": (80, 99), "B": (60, 79), "C": (40, 59), "D": (20, 39), "F": (0, 19)}
    for r in results:
        low, high = bands[r.grade]
        assert low <= r.score <= high
    # A learned chance of acceptance moves the score inside the band, never the grade.
    likely, unlikely = (
        grade_deal(DealInputs(amount=D("115000"), **BASE), acceptance=D("0.9")),
        grade_deal(DealInputs(amount=D("115000"), **BASE), acceptance=D("0.1")),
    )
    assert likely.grade == unlikely.grade == "B"
    assert likely.score > unlikely.score
