"""Schemas every app's API shares: the one error body, and timestamps PostgreSQL can store."""

from __future__ import annotations

import datetime
from typing import Annotated, Any

from ninja import Schema
from pydantic import AfterValidator, BeforeValidator, Field


class ErrorOut(Schema):
    """Every error the API answers: 4xx and 503. `detail` is a sentence, or for 422 the problems per
    field: a list (pydantic errors with `loc`, `msg`, `type`, or messages) or an object of field -> messages."""

    detail: str | list[Any] | dict[str, Any] = Field(description="what went wrong: a message, or the validation errors")


def _to_utc(value: datetime.datetime) -> datetime.datetime:
    # PostgreSQL refuses offsets beyond +-15:59 and Python cannot hold years outside 1..9999 once
    # shifted: normalise to UTC here, and an instant that does not exist in UTC is a validation error.
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    try:
        return value.astimezone(datetime.UTC)
    except OverflowError:
        raise ValueError("date out of range once converted to UTC") from None


def _iso_text(value: Any) -> Any:
    # pydantic also reads 0 or "1700000000" as a Unix time; the schema publishes ISO 8601 text only.
    if isinstance(value, datetime.date):
        return value
    if not (isinstance(value, str) and len(value) >= 10 and value[4] == "-" and value[:4].isdigit()):
        raise ValueError("must be an ISO 8601 date or date-time (YYYY-MM-DD...)")
    return value


UtcDatetime = Annotated[datetime.datetime, BeforeValidator(_iso_text), AfterValidator(_to_utc)]
IsoDate = Annotated[datetime.date, BeforeValidator(_iso_text)]
