"""The property facts staff and the API may set on a lead, and what makes a value valuable.

Pure (no database): `lead_set_property` in leads.services validates with it before writing. The
bounds are what the valuation can use: `lot_sqft: 0` would become log(0) inside the model, a house
cannot be built next year, coordinates must be on Earth.
"""

from __future__ import annotations

import datetime
import math
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError

from leads.models import PropertyType

FACT_FIELDS = (
    "latitude",
    "longitude",
    "beds",
    "baths",
    "living_area_sqft",
    "lot_sqft",
    "year_built",
    "property_type",
)

# name -> (minimum, maximum); inclusive.
_INT_BOUNDS = {
    "beds": (0, 50),
    "living_area_sqft": (100, 100_000),
    "lot_sqft": (1, 100_000_000),
}
OLDEST_YEAR = 1700


def _number(value: Any) -> float:
    # bool is an int in Python; `true` is not a number of bedrooms.
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ValueError("must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError("must be a number") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


def _integer(value: Any) -> int:
    number = _number(value)
    if number != int(number):
        raise ValueError("must be a whole number")
    return int(number)


def _clean(name: str, value: Any) -> Any:
    if name == "latitude":
        number = _number(value)
        if not -90 <= number <= 90:
            raise ValueError("must be between -90 and 90")
        return number
    if name == "longitude":
        number = _number(value)
        if not -180 <= number <= 180:
            raise ValueError("must be between -180 and 180")
        return number
    if name in _INT_BOUNDS:
        number = _integer(value)
        low, high = _INT_BOUNDS[name]
        if not low <= number <= high:
            raise ValueError(f"must be between {low:,} and {high:,}")
        return number
    if name == "year_built":
        number = _integer(value)
        this_year = datetime.date.today().year
        if number > this_year:
            raise ValueError(f"cannot be in the future (after {this_year})")
        if number < OLDEST_YEAR:
            raise ValueError(f"must be {OLDEST_YEAR} or later")
        return number
    if name == "baths":
        number = _number(value)
        if not 0 <= number <= 50:
            raise ValueError("must be between 0 and 50")
        try:
            return Decimal(str(number)).quantize(Decimal("0.01"))
        except InvalidOperation:
            raise ValueError("must be a number") from None
    if name == "property_type":
        if value not in PropertyType.values:
            raise ValueError(f"must be one of {', '.join(PropertyType.values)}")
        return value
    raise ValueError("unknown fact")


def property_facts_clean(facts: dict[str, Any]) -> dict[str, Any]:
    """Validated facts (None clears one), or ValidationError with a message per field.

    Latitude and longitude come as a pair: one without the other would place the house nowhere.
    """
    if not isinstance(facts, dict):
        raise ValidationError({"facts": ["must be an object"]})
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    for name, value in facts.items():
        if name not in FACT_FIELDS:
            errors[name] = [f"not a property fact; one of {', '.join(FACT_FIELDS)}"]
            continue
        if value is None:
            cleaned[name] = None
            continue
        try:
            cleaned[name] = _clean(name, value)
        except ValueError as exc:
            errors[name] = [str(exc)]
    if ("latitude" in facts) != ("longitude" in facts) or (
        "latitude" in cleaned and (cleaned["latitude"] is None) != (cleaned.get("longitude") is None)
    ):
        errors.setdefault("latitude", []).append("latitude and longitude are set (or cleared) together")
    if errors:
        raise ValidationError(errors)
    return cleaned
