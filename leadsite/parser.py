"""The API's JSON body parser: Django's json plus one rule PostgreSQL imposes."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest
from ninja.parser import Parser


def strip_nul(value: Any) -> Any:
    """Drop NUL characters from every string in decoded JSON: PostgreSQL text cannot hold them,
    and they carry no meaning in anything a form or service sends us."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {strip_nul(k): strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_nul(v) for v in value]
    return value


class JsonParser(Parser):
    def parse_body(self, request: HttpRequest) -> Any:
        body = request.body
        data = json.loads(body)
        # Only walk the structure when a NUL could be there (JSON spells it \u0000).
        return strip_nul(data) if b"\\u0000" in body else data
