from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from leads.models import Lead, LeadEvent
from notifications.models import Delivery
from valuation.models import Valuation
from valuation.selectors import lead_valuation
from valuation.services import model_train
from valuation.tasks import value_lead


@pytest.fixture
def trained(make_sales, settings):
    settings.VALUATION_DEFAULT_AS_OF = "2015-06-05"
    make_sales()
    return model_train()


def make_lead(**facts) -> Lead:
    defaults = {
        "name": "Jane Seller",
        "phone": "+12065550100",
        "address": "1 Test St, Seattle, WA 98109",
        "latitude": 47.621,
        "longitude": -122.331,
        "living_area_sqft": 1800,
        "beds": 3,
        "baths": Decimal("2.00"),
        "year_built": 1960,
        "lot_sqft": 5000,
        "property_type": "sfr",
    }
    return Lead.objects.create(**{**defaults, **facts})


def test_lead_is_valued_once_with_timeline_and_notification(trained) -> None:
    lead = make_lead()

    value_lead(str(lead.id))
    value_lead(str(lead.id))  # a redelivered task changes nothing

    valuation = Valuation.objects.get(lead=lead)
    assert valuation.status == "ok"
    assert valuation.model_version_id == trained.id
    assert valuation.as_of == dt.date(2015, 6, 5)
    assert valuation.low < valuation.estimate < valuation.high
    assert valuation.comps == valuation.result["comps"] and len(valuation.comps) >= 3
    events = list(LeadEvent.objects.filter(lead=lead, kind="valuation"))
    assert len(events) == 1
    assert events[0].message.startswith(f"Valued at ${valuation.estimate:,} (${valuation.low:,}–${valuation.high:,})")
    assert events[0].data["estimate"] == valuation.estimate
    deliveries = Delivery.objects.filter(key=f"lead:{lead.id}:valuation_ready")
    assert deliveries.exists()
    assert {d.event_type for d in deliveries} == {"valuation_ready"}
    payload = deliveries.first().payload
    assert (payload["estimate"], payload["low"], payload["high"], payload["lead_id"]) == (
        valuation.estimate,
        valuation.low,
        valuation.high,
        str(lead.id),
    )
    assert lead_valuation(lead.id) == valuation.result
    assert lead_valuation(make_lead(phone="+12065550101").id) is None


def test_lead_without_coordinates_gets_a_timeline_note_and_no_notification(trained) -> None:
    # Nothing to place it by: no coordinates and no address (one with a ZIP code would be placed at
    # the ZIP's centroid, test_geocoding.py).
    lead = make_lead(latitude=None, longitude=None, address="")

    value_lead(str(lead.id))
    value_lead(str(lead.id))

    valuation = Valuation.objects.get(lead=lead)
    assert valuation.status == "insufficient_data"
    assert valuation.estimate is None
    events = list(LeadEvent.objects.filter(lead=lead, kind="valuation"))
    assert [e.message for e in events] == [
        "Not valued: need at least latitude, longitude and living_area_sqft; missing: latitude, longitude"
    ]
    assert not Delivery.objects.filter(key=f"lead:{lead.id}:valuation_ready").exists()
    assert lead_valuation(lead.id)["status"] == "insufficient_data"

    # Staff add the coordinates; the next run values it.
    Lead.objects.filter(id=lead.id).update(latitude=47.621, longitude=-122.331)
    value_lead(str(lead.id))
    assert Valuation.objects.get(lead=lead).status == "ok"
    assert LeadEvent.objects.filter(lead=lead, kind="valuation").count() == 2
    assert Delivery.objects.filter(key=f"lead:{lead.id}:valuation_ready").exists()


class _FakeCensus(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        _FakeCensus.requests.append(self.path)
        body = {"result": {"addressMatches": [{"coordinates": {"x": -122.331, "y": 47.621}}]}}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


def test_lead_without_coordinates_is_geocoded_when_a_geocoder_is_configured(trained, settings) -> None:
    server = HTTPServer(("127.0.0.1", 0), _FakeCensus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        settings.VALUATION_GEOCODER = "census"
        settings.VALUATION_GEOCODER_URL = f"http://127.0.0.1:{server.server_port}/geocoder"
        lead = make_lead(latitude=None, longitude=None)

        value_lead(str(lead.id))
    finally:
        server.shutdown()

    lead.refresh_from_db()
    assert (lead.latitude, lead.longitude) == (47.621, -122.331)
    assert Valuation.objects.get(lead=lead).status == "ok"
    assert len(_FakeCensus.requests) == 1
    assert "address=1+Test+St" in _FakeCensus.requests[0]
