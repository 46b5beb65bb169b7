"""The web form's body: the fields POST /api/leads accepts, what each one takes, and validation.

Pure (no database): HTML forms' habits are accepted ("" for "not given", "on" for a ticked
checkbox, a phone as a JSON number); anything else is a 422 with a message per field.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema, field_validator
from pydantic import ValidationError as PydanticValidationError

from leads.models import PropertyType
from leads.normalize import normalize_email, normalize_phone
from leadsite.storable import storable_json


def _blank_to_none(value: Any) -> Any:
    # HTML forms send "" for fields left empty; that means "not given", not "invalid number".
    return None if isinstance(value, str) and not value.strip() else value


def _none_to_blank(value: Any) -> Any:
    return "" if value is None else value


def _text(max_length: int) -> Any:
    return Annotated[
        str, BeforeValidator(_none_to_blank), StringConstraints(strip_whitespace=True, max_length=max_length)
    ]


def _phone_text(value: Any) -> Any:
    # Some forms send the phone as a JSON number.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else _none_to_blank(value)


def _not_a_bool(value: Any) -> Any:
    # pydantic reads true as 1; no form means `true` for a number of beds (and the schema says number).
    if isinstance(value, bool):
        raise ValueError("must be a number or empty, not true/false")
    return value


def _optional(tp: Any) -> Any:
    return Annotated[tp | None, BeforeValidator(_blank_to_none), BeforeValidator(_not_a_bool)]


# What HTML forms send for a checkbox, besides JSON booleans: exactly these, as published.
_CONSENT_TEXT = {
    "true": True,
    "on": True,
    "yes": True,
    "1": True,
    "false": False,
    "off": False,
    "no": False,
    "0": False,
}


def _consent(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value in _CONSENT_TEXT:
        return _CONSENT_TEXT[value]
    raise ValueError(f"must be true, false, 0, 1 or one of the strings {', '.join(_CONSENT_TEXT)}")


Consent = Annotated[
    bool,
    BeforeValidator(_consent),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "boolean"},
                {"type": "string", "enum": list(_CONSENT_TEXT)},
                {"type": "integer", "enum": [0, 1]},
            ],
            "default": False,
        }
    ),
]


class LeadIn(BaseModel):
    """POST /api/leads body. Fields not listed here are kept as the form's extra answers."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    phone: Annotated[str, BeforeValidator(_phone_text), StringConstraints(strip_whitespace=True, max_length=40)] = ""
    email: _text(254) = ""
    address: _text(500) = ""
    message: _text(10_000) = ""
    asking_price: _optional(Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]) = None
    timeline: _text(100) = ""
    condition: _text(100) = ""
    utm_source: _text(200) = ""
    utm_medium: _text(200) = ""
    utm_campaign: _text(200) = ""
    utm_term: _text(200) = ""
    utm_content: _text(200) = ""
    page_url: _text(2000) = ""
    consent: Consent = False
    consent_text: _text(5_000) = ""
    latitude: _optional(Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]) = None
    longitude: _optional(Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]) = None
    beds: _optional(Annotated[int, Field(ge=0, le=100)]) = None
    baths: _optional(Annotated[Decimal, Field(ge=0, max_digits=4, decimal_places=2)]) = None
    living_area_sqft: _optional(Annotated[int, Field(ge=1, le=1_000_000)]) = None
    lot_sqft: _optional(Annotated[int, Field(ge=0, le=2_000_000_000)]) = None
    year_built: _optional(Annotated[int, Field(ge=1600, le=2100)]) = None
    property_type: _optional(PropertyType) = None
    website: Any = Field(default=None, description="honeypot: leave empty (hidden from humans)")

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        return normalize_phone(value) if value else ""

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not value:
            return ""
        value = normalize_email(value)
        try:
            validate_email(value)
        except ValidationError as exc:
            raise ValueError("not a valid email address") from exc
        return value

    @field_validator("page_url")
    @classmethod
    def _page_url(cls, value: str) -> str:
        if value:
            try:
                URLValidator(schemes=["http", "https"])(value)
            except ValidationError as exc:
                raise ValueError("not a valid http(s) URL") from exc
        return value


def lead_intake_validate(data: Any) -> LeadIn:
    """Validate a form body; ValidationError with a message per field (the API's 422)."""
    if not isinstance(data, dict):
        raise ValidationError({"__all__": ["the body must be a JSON object"]})
    # NUL, lone surrogates and non-finite numbers anywhere (the extra answers are free-form JSON).
    data = storable_json(data)
    try:
        payload = LeadIn.model_validate(data)
    except PydanticValidationError as exc:
        errors: dict[str, list[str]] = {}
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "__all__"
            message = error["msg"].removeprefix("Value error, ")
            errors.setdefault(field, []).append("This field is required." if error["type"] == "missing" else message)
        raise ValidationError(errors) from None
    if not payload.phone and not payload.email:
        raise ValidationError(
            {"phone": ["a phone or an email is required"], "email": ["a phone or an email is required"]}
        )
    return payload
