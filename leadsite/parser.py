"""The API's JSON body parser: strict JSON, bounded nesting, storable strings (leadsite.storable)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.parser import Parser

from leadsite.storable import parse_json_body


class JsonParser(Parser):
    def parse_body(self, request: HttpRequest) -> Any:
        # InvalidJson becomes ninja's 400; leadsite.api puts its message in `detail`.
        return parse_json_body(request.body)
