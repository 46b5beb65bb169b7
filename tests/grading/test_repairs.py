"""The repair estimate: level from what the seller said, cost table per square foot, age factor."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from grading.repairs import estimate_repairs


@pytest.mark.parametrize(
    ("condition", "message", "year", "level", "amount"),
    [
        ("fair", "", 1978, "medium", D("59400.00")),  # 30 x 1,800 x 1.10
        ("good", "", 1991, "light", D("27000.00")),  # 15 x 1,800
        ("Fire damage in the kitchen", "", 2001, "heavy", D("99000.00")),  # 55 x 1,800
        ("", "Roof needs work", 1924, "medium", D("67500.00")),  # message used when condition is empty; x1.25
        ("", "", None, "medium", D("54000.00")),  # nothing said: medium, and said so
    ],
)
def test_repairs_estimated_from_condition_size_and_age(condition, message, year, level, amount) -> None:
    estimate = estimate_repairs(living_area_sqft=1800, condition=condition, message=message, year_built=year)
    assert (estimate.level, estimate.amount) == (level, amount)


def test_the_estimate_says_how_it_was_made_and_uses_the_configured_table() -> None:
    estimate = estimate_repairs(
        living_area_sqft=1640,
        condition="needs work",
        year_built=1924,
        cost_per_sqft={"light": D("10"), "medium": D("40"), "heavy": D("80")},
    )
    assert estimate.amount == D("82000.00")  # 40 x 1,640 x 1.25
    assert estimate.how == (
        "Repairs estimated at $82,000: medium rehab ('needs work' in what the seller said) at $40/sqft"
        " x 1,640 sqft x 1.25 for a house built in 1924"
    )
    unknown = estimate_repairs(living_area_sqft=1000)
    assert "no condition given: assumed medium" in unknown.how
