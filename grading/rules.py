"""The deal arithmetic of an offer: grade, score, recommendation, counter-offer, reasons, numbers.

Pure Python (no Django): every input arrives as a Decimal, every money figure leaves as a Decimal
rounded to cents (half up, as money is). Decisions are taken on the unrounded values, so an offer
exactly at a boundary lands where the table in README says it does.

    MAO = ratio x ARV - repairs                    gap = (MAO - offer) / ARV
    A   gap >= 5% and the downside case (ARV at its low, repairs x 1.2) still makes a profit
    B   offer <= MAO
    C   over MAO by up to 5% of ARV                D  over by more than 5%, up to 10%
    F   over by more than 10%, or a loss in the base case
    A valuation whose confidence is below the threshold caps the grade at B.

Profit = ARV - offer - repairs - resale costs (of ARV) - holding costs (of ARV) - buyer closing
costs (of the offer). The chance of a loss is read off the valuation's measured error spread: its
low/high are the 10th/90th percentiles of the errors the valuation method made on later sales (see
valuation/core.py), so the ARV's log error is modelled as a split normal with exactly those two
quantiles and a median of zero, and the chance of a loss is the probability that the real value
falls below the break-even ARV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from statistics import NormalDist
from typing import Any

RULES_VERSION = "rules-1"

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
ZERO = Decimal(0)
# z of the 90th percentile of a standard normal: the valuation's low/high are its 10th/90th percentiles.
Z90 = Decimal(str(NormalDist().inv_cdf(0.9)))

A_GAP = Decimal("0.05")
C_OVER = Decimal("0.05")
D_OVER = Decimal("0.10")

GRADE_BANDS = {"A": 80, "B": 60, "C": 40, "D": 20, "F": 0}  # each grade's score band starts here
RECOMMENDATION = {"A": "accept", "B": "accept", "C": "negotiate", "D": "negotiate", "F": "decline"}


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def fraction(value: Decimal, places: int = 4) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def dollars(value: Decimal) -> str:
    """$142,000 (whole dollars) or $142,000.50: how reasons spell money."""
    rounded = money(value)
    text = f"{abs(rounded):,.2f}".removesuffix(".00")
    return f"-${text}" if rounded < 0 else f"${text}"


def pct(value: Decimal) -> str:
    """0.0462 -> 4.6%."""
    return f"{(value * HUNDRED).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


@dataclass(frozen=True)
class Costs:
    """Shares of the deal the profit must pay for (settings GRADING_*)."""

    resale: Decimal = Decimal("0.08")  # of ARV: agent commission, seller closing
    holding: Decimal = Decimal("0.06")  # of ARV: taxes, insurance, utilities, financing while held
    buyer_closing: Decimal = Decimal("0.015")  # of the offer: our own closing costs


@dataclass(frozen=True)
class DealInputs:
    amount: Decimal
    repairs: Decimal
    arv: Decimal
    ratio: Decimal = Decimal("0.70")
    arv_low: Decimal | None = None  # 10th percentile of the ARV's measured error, when known
    arv_high: Decimal | None = None  # 90th percentile
    confidence: Decimal | None = None  # the valuation's confidence (0-1); None: no valuation behind the ARV
    costs: Costs = field(default_factory=Costs)
    downside_repairs: Decimal = Decimal("1.2")
    low_confidence: Decimal = Decimal("0.5")  # below this the grade is capped at B

    def as_dict(self) -> dict[str, Any]:
        def text(value: Decimal | None) -> str | None:
            return None if value is None else str(value)

        return {
            "amount": text(self.amount),
            "repairs": text(self.repairs),
            "arv": text(self.arv),
            "ratio": text(self.ratio),
            "arv_low": text(self.arv_low),
            "arv_high": text(self.arv_high),
            "confidence": text(self.confidence),
            "costs": {k: str(v) for k, v in self.costs.__dict__.items()},
            "downside_repairs": str(self.downside_repairs),
            "low_confidence": str(self.low_confidence),
        }


@dataclass(frozen=True)
class DealGrade:
    grade: str
    score: int
    recommendation: str
    counter_offer: Decimal | None
    reasons: list[str]
    numbers: dict[str, Decimal | None]
    rules_version: str = RULES_VERSION


def profit(*, arv: Decimal, amount: Decimal, repairs: Decimal, costs: Costs) -> Decimal:
    return arv * (1 - costs.resale - costs.holding) - amount * (1 + costs.buyer_closing) - repairs


def break_even_arv(*, amount: Decimal, repairs: Decimal, costs: Costs) -> Decimal:
    """The ARV at which the base-case profit is zero (resale and holding costs shrink with it)."""
    return (amount * (1 + costs.buyer_closing) + repairs) / (1 - costs.resale - costs.holding)


def loss_chance(*, arv: Decimal, arv_low: Decimal, arv_high: Decimal | None, break_even: Decimal) -> Decimal:
    """P(real value < break-even ARV) under the split normal fitted to the measured 10th/90th percentiles.

    Without a high, the spread below the estimate is mirrored above it (only the lower half
    matters for a loss unless the break-even is above the estimate).
    """
    if break_even <= 0:
        return ZERO
    z = math.log(break_even / arv)
    sigma_low = math.log(arv / arv_low) / float(Z90) if arv_low < arv else 0.0
    sigma_high = math.log(arv_high / arv) / float(Z90) if arv_high is not None and arv_high > arv else sigma_low
    sigma = sigma_low if z < 0 else sigma_high
    if sigma <= 0:
        chance = 1.0 if z > 0 else 0.0
    else:
        chance = NormalDist().cdf(z / sigma)
    return fraction(Decimal(str(chance)), 3)


def _clamp(value: Decimal, low: Decimal, high: Decimal) -> Decimal:
    return max(low, min(high, value))


def _within_band(
    *, gap: Decimal, all_in: Decimal, downside_margin: Decimal | None, confidence: Decimal | None
) -> Decimal:
    """0..1: where an offer sits inside its grade's band. Each part is scaled to 0..1 over the range
    where offers really differ (a gap of -15%..+15% of ARV, an all-in of 100%..50%, a downside
    margin of -10%..+20% of ARV); an unknown confidence or downside counts as middling."""
    gap_part = _clamp((gap + Decimal("0.15")) / Decimal("0.30"), ZERO, Decimal(1))
    all_in_part = _clamp((Decimal(1) - all_in) / Decimal("0.50"), ZERO, Decimal(1))
    down_part = (
        Decimal("0.5")
        if downside_margin is None
        else _clamp((downside_margin + Decimal("0.10")) / Decimal("0.30"), ZERO, Decimal(1))
    )
    conf_part = Decimal("0.5") if confidence is None else _clamp(confidence, ZERO, Decimal(1))
    return (
        Decimal("0.40") * gap_part
        + Decimal("0.20") * all_in_part
        + Decimal("0.25") * down_part
        + (Decimal("0.15") * conf_part)
    )


def grade_deal(inputs: DealInputs, *, acceptance: Decimal | None = None) -> DealGrade:
    """Grade an offer. `acceptance` (the learned chance that the seller accepts, only when the
    trained grader is in use) moves the score within the grade's band, never the grade."""
    d = inputs
    costs = d.costs
    mao = d.ratio * d.arv - d.repairs
    gap = (mao - d.amount) / d.arv
    all_in = (d.amount + d.repairs) / d.arv
    base_profit = profit(arv=d.arv, amount=d.amount, repairs=d.repairs, costs=costs)
    even = break_even_arv(amount=d.amount, repairs=d.repairs, costs=costs)
    drop = 1 - even / d.arv  # how far the ARV may fall before the deal loses money
    downside: Decimal | None = None
    chance: Decimal | None = None
    if d.arv_low is not None:
        downside = profit(arv=d.arv_low, amount=d.amount, repairs=d.repairs * d.downside_repairs, costs=costs)
        chance = loss_chance(arv=d.arv, arv_low=d.arv_low, arv_high=d.arv_high, break_even=even)
    low_conf = d.confidence is not None and d.confidence < d.low_confidence

    over = -gap  # share of ARV the offer is above MAO
    if base_profit < 0 or over > D_OVER:
        grade = "F"
    elif over > C_OVER:
        grade = "D"
    elif over > 0:
        grade = "C"
    elif gap >= A_GAP and downside is not None and downside > 0:
        grade = "A"
    else:
        grade = "B"
    capped = grade == "A" and low_conf
    if capped:
        grade = "B"

    recommendation = RECOMMENDATION[grade]
    counter: Decimal | None = None
    if grade in ("C", "D"):
        # The offer that makes it a B: at most MAO, said in whole hundreds as a rep would.
        counter = (mao / 100).to_integral_value(rounding=ROUND_FLOOR) * 100
        if counter <= 0:
            counter, recommendation = None, "decline"

    within = _within_band(
        gap=gap,
        all_in=all_in,
        downside_margin=None if downside is None else downside / d.arv,
        confidence=d.confidence,
    )
    if acceptance is not None:
        within = Decimal("0.8") * within + Decimal("0.2") * _clamp(acceptance, ZERO, Decimal(1))
    # 19.99.. so the top of a band never reaches the next grade's floor.
    score = GRADE_BANDS[grade] + int((within * Decimal("19.99")).to_integral_value(rounding=ROUND_FLOOR))

    numbers: dict[str, Decimal | None] = {
        "amount": money(d.amount),
        "repairs": money(d.repairs),
        "arv": money(d.arv),
        "arv_low": None if d.arv_low is None else money(d.arv_low),
        "arv_high": None if d.arv_high is None else money(d.arv_high),
        "ratio": d.ratio,
        "mao": money(mao),
        "gap": fraction(gap),
        "gap_amount": money(mao - d.amount),
        "all_in_ratio": fraction(all_in),
        "projected_profit": money(base_profit),
        "downside_profit": None if downside is None else money(downside),
        "break_even_arv": money(even),
        "break_even_drop": fraction(drop),
        "loss_chance": chance,
        "confidence": d.confidence,
    }
    reasons = _reasons(
        d=d,
        grade=grade,
        mao=mao,
        gap=gap,
        all_in=all_in,
        base_profit=base_profit,
        downside=downside,
        drop=drop,
        chance=chance,
        capped=capped,
        counter=counter,
    )
    return DealGrade(
        grade=grade, score=score, recommendation=recommendation, counter_offer=counter, reasons=reasons, numbers=numbers
    )


def _reasons(
    *,
    d: DealInputs,
    grade: str,
    mao: Decimal,
    gap: Decimal,
    all_in: Decimal,
    base_profit: Decimal,
    downside: Decimal | None,
    drop: Decimal,
    chance: Decimal | None,
    capped: bool,
    counter: Decimal | None,
) -> list[str]:
    rule = f"{pct(d.ratio).replace('.0%', '%')}-rule maximum of {dollars(mao)}"
    diff = abs(mao - d.amount)
    if gap >= 0:
        first = f"Offer {dollars(d.amount)} is {dollars(diff)} ({pct(gap)} of ARV) under the {rule}"
    else:
        first = f"Offer {dollars(d.amount)} is {dollars(diff)} ({pct(-gap)} of ARV) over the {rule}"
    reasons = [first]
    if base_profit < 0:
        reasons.append(f"The base case loses money: projected profit {dollars(base_profit)}")
    else:
        reasons.append(
            f"Projected profit {dollars(base_profit)} at an ARV of {dollars(d.arv)} "
            f"(all-in {pct(all_in)} of ARV); the ARV can drop {pct(drop)} before the deal breaks even"
        )
    if downside is not None and d.arv_low is not None:
        verdict = "still makes" if downside > 0 else "loses"
        reasons.append(
            f"Downside case (ARV {dollars(d.arv_low)}, repairs {dollars(d.repairs * d.downside_repairs)}) "
            f"{verdict} {dollars(abs(downside))}"
        )
    else:
        reasons.append("No ARV range known, so no downside case: the grade cannot be A")
    if chance is not None:
        reasons.append(f"Chance of a loss {pct(chance)}, from the valuation's measured error spread")
    if capped:
        reasons.append(
            f"Valuation confidence {pct(d.confidence or ZERO)} is below {pct(d.low_confidence)}: grade capped at B"
        )
    if counter is not None:
        reasons.append(f"Counter at {dollars(counter)} or less to make it a B")
    if grade == "F" and base_profit >= 0:
        reasons.append(f"More than {pct(D_OVER)} of ARV over the maximum: walk away or re-check ARV and repairs")
    return reasons
