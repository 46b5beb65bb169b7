"""Repair estimate from what a lead says, when the rep has no number yet. Pure Python (no Django).

level (light / medium / heavy) from the condition the form sent (else the seller's message),
x the cost per square foot of that level (settings GRADING_REPAIR_COST_PER_SQFT)
x living area x an age factor (older houses hide more: wiring, plumbing, foundations).
No words we recognise: medium, and the response says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

LEVELS = ("light", "medium", "heavy")
DEFAULT_COST_PER_SQFT = {"light": Decimal("15"), "medium": Decimal("30"), "heavy": Decimal("55")}

# Checked heaviest first: "needs a new roof and the foundation is cracked" is heavy.
_WORDS = {
    "heavy": (
        "fire",
        "flood",
        "foundation",
        "gut",
        "tear down",
        "teardown",
        "condemned",
        "mold",
        "mould",
        "major",
        "uninhabitable",
        "poor",
        "distressed",
        "needs everything",
        "hoarder",
        "structural",
    ),
    "medium": (
        "needs work",
        "need work",
        "roof",
        "fair",
        "dated",
        "outdated",
        "repair",
        "fixer",
        "tlc",
        "some work",
        "average",
        "hvac",
        "plumbing",
        "wiring",
        "leak",
    ),
    "light": (
        "good",
        "excellent",
        "great",
        "updated",
        "renovated",
        "remodeled",
        "remodelled",
        "move-in",
        "move in",
        "turnkey",
        "cosmetic",
        "minor",
        "like new",
    ),
}
_PATTERNS = {
    level: re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")", re.I) for level, words in _WORDS.items()
}

# (built before, factor): the first that applies.
AGE_FACTORS = ((1950, Decimal("1.25")), (1980, Decimal("1.10")))


@dataclass(frozen=True)
class RepairEstimate:
    amount: Decimal
    level: str
    cost_per_sqft: Decimal
    living_area_sqft: int
    age_factor: Decimal
    matched: str  # the words the level came from ("" when none matched)
    how: str

    def as_dict(self) -> dict[str, str | int]:
        return {
            "amount": str(self.amount),
            "level": self.level,
            "cost_per_sqft": str(self.cost_per_sqft),
            "living_area_sqft": self.living_area_sqft,
            "age_factor": str(self.age_factor),
            "matched": self.matched,
            "how": self.how,
        }


def condition_level(condition: str, message: str = "") -> tuple[str, str]:
    """(level, matched words): the condition answer decides; the free-text message only if it says nothing."""
    for text in (condition, message):
        for level in ("heavy", "medium", "light"):
            match = _PATTERNS[level].search(text or "")
            if match:
                return level, match.group(0)
    return "medium", ""


def age_factor(year_built: int | None) -> Decimal:
    if year_built is None:
        return Decimal(1)
    for before, factor in AGE_FACTORS:
        if year_built < before:
            return factor
    return Decimal(1)


def estimate_repairs(
    *,
    living_area_sqft: int,
    condition: str = "",
    message: str = "",
    year_built: int | None = None,
    cost_per_sqft: dict[str, Decimal] | None = None,
) -> RepairEstimate:
    table = cost_per_sqft or DEFAULT_COST_PER_SQFT
    level, matched = condition_level(condition, message)
    factor = age_factor(year_built)
    rate = table[level]
    amount = (rate * living_area_sqft * factor).quantize(Decimal(100), rounding=ROUND_HALF_UP)
    amount = amount.quantize(Decimal("0.01"))
    source = f"'{matched}' in what the seller said" if matched else "no condition given: assumed medium"
    age = f" x {factor} for a house built in {year_built}" if factor != 1 else ""
    how = (
        f"Repairs estimated at ${amount:,.0f}: {level} rehab ({source}) at ${rate:,}/sqft"
        f" x {living_area_sqft:,} sqft{age}"
    )
    return RepairEstimate(
        amount=amount,
        level=level,
        cost_per_sqft=rate,
        living_area_sqft=living_area_sqft,
        age_factor=factor,
        matched=matched,
        how=how,
    )
