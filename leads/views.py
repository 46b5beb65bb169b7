"""The example seller form: the paste-ready snippet (static/leads/leadsite-form.js) on a page of its own."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

# A form key is public by nature (it sits in the page), so taking it from the query string costs nothing;
# only printable ASCII, so the attribute it lands in can hold nothing else.
_MAX_KEY_LENGTH = 200


@require_GET
def form_example(request: HttpRequest) -> HttpResponse:
    key = request.GET.get("key", "")
    if len(key) > _MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        key = ""
    response = render(request, "leads/form_example.html", {"api_key": key, "endpoint": "/api/leads"})
    response["Referrer-Policy"] = "no-referrer"
    return response
