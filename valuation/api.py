"""POST /api/valuations: value a property from its facts.

200 with `status: "ok"` and estimate/low/high/confidence/comps, or 200 with
`status: "insufficient_data"` and a `detail` saying why (too few comparable sales, no model trained
before `as_of`, unsupported area) — never a guess. Malformed input is 422.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema
from pydantic import StrictBool, StrictFloat, StrictInt

from leadsite.auth import staff_or_key
from leadsite.schemas import IsoDate
from valuation.engine import PropertyFacts
from valuation.services import valuation_json

router = Router(tags=["valuation"])


class ValuationIn(Schema):
    # Strict numbers and booleans: a service sends JSON numbers, and `true` or "12" is not one in the
    # published schema (pydantic would otherwise read true as 1).
    latitude: StrictFloat = Field(..., ge=-90, le=90)
    longitude: StrictFloat = Field(..., ge=-180, le=180)
    living_area_sqft: StrictInt = Field(..., ge=100, le=100_000)
    beds: StrictInt = Field(..., ge=0, le=50)
    baths: StrictFloat = Field(..., ge=0, le=50)
    year_built: StrictInt = Field(..., ge=1700, le=2100)
    lot_sqft: StrictInt = Field(..., ge=0, le=100_000_000)
    property_type: Literal["sfr", "townhouse"]
    building_grade: StrictInt | None = Field(
        None, ge=1, le=13, description="assessor grade 1..13; estimated from neighbours when absent"
    )
    waterfront: StrictBool | None = None
    location_precision: Literal["rooftop", "interpolated", "zip_centroid", "manual"] | None = Field(
        None, description="zip_centroid: only the ZIP code's centre is known (wider range, lower confidence)"
    )
    address: str | None = Field(None, max_length=500, description="for your reference; not geocoded here")
    as_of: IsoDate | None = Field(None, description="value as of this day using only earlier sales; default today")


class CompOut(Schema):
    sale_id: str
    price: int
    date: dt.date
    distance_miles: float
    living_area_sqft: int
    beds: int
    baths: float
    year_built: int
    indicated_value: int
    weight: float


class ValuationOut(Schema):
    status: Literal["ok", "insufficient_data"]
    detail: str | None
    missing: list[str]
    estimate: int | None
    low: int | None
    high: int | None
    confidence: float | None
    comps: list[CompOut]
    method: str
    as_of: dt.date
    model_version: int | None
    model_value: int | None = None
    location_precision: str | None = Field(None, description="zip_centroid, or as_given")
    newest_sale_date: dt.date | None = Field(None, description="the newest sale the estimate used")
    stale_days: int | None = Field(None, description="days from newest_sale_date to as_of (older: wider range)")
    imputed: dict[str, float | int | str] = {}


@router.post("/valuations", response=ValuationOut, auth=staff_or_key("valuations:read"))
def valuation_create(request: HttpRequest, payload: ValuationIn) -> HttpResponse:
    facts = PropertyFacts(**payload.dict(exclude={"address", "as_of"}))
    # The cached answer is already the JSON of ValuationOut: send its bytes as they are.
    return HttpResponse(valuation_json(facts=facts, as_of=payload.as_of), content_type="application/json")
