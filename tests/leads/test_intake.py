from __future__ import annotations

import datetime
import json
import uuid
from decimal import Decimal

import pytest
from django.utils import timezone

from leads.models import IdempotencyRecord, Lead, LeadEvent, LeadStatus, OutboxEvent
from leads.tasks import fan_out
from notifications.models import Delivery
from tests.leads.conftest import FORM

pytestmark = pytest.mark.django_db


def test_new_lead_is_201_and_stored_normalised(post_lead):
    response = post_lead(HTTP_USER_AGENT="Mozilla/5.0 test", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 201
    body = response.json()
    assert body == {"id": body["id"], "status": "new", "duplicate": False}
    lead = Lead.objects.get(id=body["id"])
    assert (lead.status, lead.name, lead.phone, lead.email) == (
        "new",
        "Jane Seller",
        "+12065550123",
        "jane.seller@example.com",
    )
    # Intake stores the address as typed and its duplicate key; the fan-out parses the parts.
    assert (lead.address, lead.address_key, lead.street, lead.city) == (
        FORM["address"],
        "123 n main st 4b|98101",
        "",
        "",
    )
    assert (lead.beds, lead.baths, lead.living_area_sqft, lead.year_built) == (3, Decimal("2.50"), 1800, 1978)
    assert (lead.asking_price, lead.property_type, lead.source) == (Decimal("350000.00"), "sfr", "Example form")
    assert (lead.utm_source, lead.utm_campaign, lead.page_url) == ("google", "spring", "https://www.example.com/sell")
    assert lead.extra == {}
    assert lead.request_id == response["X-Request-ID"]
    # Consent proof: what they agreed to, when and from where.
    assert lead.consent is True
    assert lead.consent_text == "I agree to be contacted by phone and text."
    assert lead.consent_ip == "203.0.113.9"
    assert lead.consent_user_agent == "Mozilla/5.0 test"
    assert abs((timezone.now() - lead.consent_at).total_seconds()) < 10
    # The request itself wrote the lead and one outbox event, nothing else of the journey.
    assert list(OutboxEvent.objects.filter(lead=lead).values_list("key", "task_name", "kwargs")) == [
        (f"lead:{lead.id}:fan_out", "leads.fan_out", {"lead_id": str(lead.id)})
    ]
    assert LeadEvent.objects.count() == 0
    assert Delivery.objects.count() == 0

    # The fan-out task writes the rest, and the address's parts.
    assert fan_out(str(lead.id)) is True
    lead.refresh_from_db()
    assert (lead.street, lead.unit, lead.city, lead.state, lead.postal_code) == (
        "123 North Main Street",
        "Apt 4B",
        "Seattle",
        "WA",
        "98101",
    )
    assert lead.address_key == "123 n main st 4b|98101"
    created = lead.events.get()
    assert (created.kind, created.message, created.data) == (
        "created",
        "New lead from Example form",
        {"source": "Example form"},
    )
    assert created.created_at == lead.created_at
    new_lead = Delivery.objects.get(event_type="new_lead")
    assert new_lead.key == f"lead:{lead.id}:new_lead"
    assert {k: new_lead.payload[k] for k in ("lead_id", "name", "phone", "address", "source")} == {
        "lead_id": str(lead.id),
        "name": "Jane Seller",
        "phone": "+12065550123",
        "address": FORM["address"],
        "source": "Example form",
    }
    assert sorted(OutboxEvent.objects.filter(lead=lead).values_list("key", "task_name", "kwargs")) == [
        (f"lead:{lead.id}:fan_out", "leads.fan_out", {"lead_id": str(lead.id)}),
        (f"lead:{lead.id}:valuation", "valuation.value_lead", {"lead_id": str(lead.id)}),
    ]


def test_fan_out_twice_writes_each_piece_once(post_lead):
    lead_id = post_lead().json()["id"]
    assert fan_out(lead_id) is True
    assert fan_out(lead_id) is True
    assert list(LeadEvent.objects.filter(lead_id=lead_id).values_list("kind", flat=True)) == ["created"]
    assert list(Delivery.objects.values_list("event_type", "key")) == [("new_lead", f"lead:{lead_id}:new_lead")]
    # (Slack deliveries start through the outbox too; notifications' tests own those rows.)
    assert sorted(
        OutboxEvent.objects.exclude(task_name__startswith="notifications.").values_list("task_name", flat=True)
    ) == [
        "leads.fan_out",
        "valuation.value_lead",
    ]


def test_fan_out_skips_spam_and_unknown_leads(post_lead):
    spam_id = post_lead({**FORM, "website": "x"}).json()["id"]
    assert fan_out(spam_id) is False
    assert fan_out(str(uuid.uuid4())) is False
    assert list(LeadEvent.objects.values_list("kind", flat=True)) == ["created"]  # the spam lead's own entry
    assert (Delivery.objects.count(), OutboxEvent.objects.count()) == (0, 0)


def test_fan_out_after_lead_was_marked_spam_does_nothing(post_lead):
    lead_id = post_lead().json()["id"]
    Lead.objects.filter(id=lead_id).update(status=LeadStatus.SPAM)
    assert fan_out(lead_id) is False
    assert (LeadEvent.objects.count(), Delivery.objects.count(), OutboxEvent.objects.count()) == (0, 0, 1)


@pytest.mark.parametrize(
    "phone",
    ["(206) 555-0123", "206-555-0123", "206.555.0123", "2065550123", "1 206 555 0123", "+1 (206) 555-0123", 2065550123],
)
def test_phone_in_national_formats_becomes_e164(post_lead, phone):
    response = post_lead({"name": "Ann", "phone": phone})
    assert response.status_code == 201, response.json()
    assert Lead.objects.get(id=response.json()["id"]).phone == "+12065550123"


@pytest.mark.parametrize(
    "name",
    ["José Ñúñez 🏠", "王小明", "Владимир Петров", "محمد الأحمد", "🔥🔥🔥", "Zoë O'Brien-Smith"],
)
def test_emoji_and_non_latin_names_are_kept(post_lead, name):
    response = post_lead({"name": name, "email": "x@example.com", "message": "Hola 👋 — ¿cuánto?"})
    assert response.status_code == 201
    lead = Lead.objects.get(id=response.json()["id"])
    assert (lead.name, lead.message) == (name, "Hola 👋 — ¿cuánto?")


def test_form_cannot_set_status_assignee_ids_or_timestamps(post_lead, staff_user):
    sneaky = {
        **FORM,
        "status": "won",
        "assigned_to": staff_user.pk,
        "id": "00000000-0000-0000-0000-000000000001",
        "created_at": "2001-01-01T00:00:00Z",
        "first_contacted_at": "2001-01-01T00:00:00Z",
        "source": "admin",
        "how_did_you_hear": "radio",
    }
    response = post_lead(sneaky)
    assert response.status_code == 201
    lead = Lead.objects.get(id=response.json()["id"])
    assert str(lead.id) != sneaky["id"]
    assert (lead.status, lead.assigned_to, lead.first_contacted_at, lead.source) == ("new", None, None, "Example form")
    assert lead.created_at.year == timezone.now().year
    assert lead.extra == {
        "status": "won",
        "assigned_to": staff_user.pk,
        "id": "00000000-0000-0000-0000-000000000001",
        "created_at": "2001-01-01T00:00:00Z",
        "first_contacted_at": "2001-01-01T00:00:00Z",
        "source": "admin",
        "how_did_you_hear": "radio",
    }


def test_honeypot_gets_normal_201_but_is_spam_with_no_fan_out(post_lead):
    response = post_lead({**FORM, "website": "http://spam.example"})
    assert response.status_code == 201
    body = response.json()
    assert body == {"id": body["id"], "status": "new", "duplicate": False}
    lead = Lead.objects.get(id=body["id"])
    assert lead.status == LeadStatus.SPAM
    assert OutboxEvent.objects.count() == 0
    assert Delivery.objects.count() == 0
    assert list(lead.events.values_list("kind", flat=True)) == ["created"]
    # Spam never makes a later real submission look like a repeat.
    real = post_lead()
    assert real.status_code == 201 and real.json()["duplicate"] is False


def test_repeat_within_30_days_returns_existing_id_and_records_a_touch(post_lead):
    first = post_lead().json()["id"]
    fan_out(first)
    again = {
        **FORM,
        "phone": "",
        "email": "JANE.SELLER@example.com",
        "address": "123 N Main St #4b, Seattle WA 98101-1234",
        "message": "Still interested",
    }
    response = post_lead(again)
    assert response.status_code == 200
    assert response.json() == {"id": first, "duplicate": True}
    assert Lead.objects.count() == 1
    repeat = LeadEvent.objects.get(lead_id=first, kind="repeat")
    assert repeat.message == "Submitted again from Example form"
    assert repeat.data["message"] == "Still interested"
    # fan_out, valuation: a repeat adds none (Slack deliveries' own outbox rows aside)
    assert OutboxEvent.objects.exclude(task_name__startswith="notifications.").count() == 2
    assert list(Delivery.objects.order_by("id").values_list("event_type", "key")) == [
        ("new_lead", f"lead:{first}:new_lead"),
        ("repeat_lead", f"lead:{first}:repeat:{repeat.id}"),
    ]


def test_same_phone_other_property_is_a_new_lead(post_lead):
    first = post_lead().json()["id"]
    response = post_lead({**FORM, "address": "9 Elm Street, Seattle, WA 98102"})
    assert response.status_code == 201
    assert response.json()["id"] != first


def test_repeat_after_30_days_is_a_new_lead(post_lead):
    first = post_lead().json()["id"]
    Lead.objects.filter(id=first).update(created_at=timezone.now() - datetime.timedelta(days=31))
    response = post_lead()
    assert response.status_code == 201
    assert response.json()["id"] != first and response.json()["duplicate"] is False


def test_idempotency_key_replays_first_response_and_rejects_other_body(post_lead):
    first = post_lead(HTTP_IDEMPOTENCY_KEY="form-submit-1")
    assert first.status_code == 201
    replay = post_lead(HTTP_IDEMPOTENCY_KEY="form-submit-1")
    assert replay.status_code == 201
    assert replay.json() == first.json()
    assert replay["Idempotent-Replayed"] == "true"
    assert Lead.objects.count() == 1
    conflict = post_lead({**FORM, "message": "different"}, HTTP_IDEMPOTENCY_KEY="form-submit-1")
    assert conflict.status_code == 409
    assert conflict.json() == {"detail": "this Idempotency-Key was already used with a different request body"}
    assert IdempotencyRecord.objects.count() == 1
    # The retries are not recorded as repeats of the lead (nothing they wrote survived the replay).
    assert not LeadEvent.objects.filter(kind="repeat").exists()
    assert not Delivery.objects.exists()
    assert OutboxEvent.objects.count() == 1


def test_idempotency_keys_are_per_api_key(post_lead, make_api_key):
    other_key = make_api_key("leads:create", name="Other form")
    assert post_lead(HTTP_IDEMPOTENCY_KEY="k-1").status_code == 201
    other = post_lead({**FORM, "phone": "2065550199", "email": ""}, key=other_key, HTTP_IDEMPOTENCY_KEY="k-1")
    assert other.status_code == 201
    assert Lead.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"phone": "2065550123"}, {"name": ["This field is required."]}),
        ({"name": "  ", "phone": "2065550123"}, {"name": ["String should have at least 1 character"]}),
        ({"name": "Ann"}, {"phone": ["a phone or an email is required"], "email": ["a phone or an email is required"]}),
        ({"name": "Ann", "phone": "12345"}, {"phone": ["not a valid phone number"]}),
        ({"name": "Ann", "phone": "call me"}, {"phone": ["not a phone number"]}),
        ({"name": "Ann", "email": "not-an-email"}, {"email": ["not a valid email address"]}),
        ({"name": 42, "email": "a@example.com"}, {"name": ["Input should be a valid string"]}),
        (
            {"name": "Ann", "email": "a@example.com", "beds": "many", "year_built": 1066},
            {
                "beds": ["Input should be a valid integer, unable to parse string as an integer"],
                "year_built": ["Input should be greater than or equal to 1600"],
            },
        ),
        (
            {"name": "Ann", "email": "a@example.com", "page_url": "javascript:alert(1)"},
            {"page_url": ["not a valid http(s) URL"]},
        ),
        (
            {"name": "Ann", "email": "a@example.com", "property_type": "castle"},
            {
                "property_type": [
                    "Input should be 'sfr', 'townhouse', 'condo', 'multi_family', 'mobile', 'land' or 'other'"
                ]
            },
        ),
    ],
)
def test_invalid_fields_are_422_per_field(post_lead, body, errors):
    response = post_lead(body)
    assert response.status_code == 422
    assert response.json() == {"detail": errors}
    assert Lead.objects.count() == 0


def test_empty_optional_form_fields_mean_not_given(post_lead):
    body = {"name": "Ann", "email": "a@example.com", "beds": "", "asking_price": "", "latitude": None, "phone": None}
    response = post_lead(body)
    assert response.status_code == 201
    lead = Lead.objects.get(id=response.json()["id"])
    assert (lead.beds, lead.asking_price, lead.latitude, lead.phone) == (None, None, None, "")


def test_nul_characters_do_not_break_storage(post_lead):
    response = post_lead({"name": "Ann\x00", "email": "a@example.com", "notes\x00": {"x": "y\x00"}})
    assert response.status_code == 201
    lead = Lead.objects.get(id=response.json()["id"])
    assert (lead.name, lead.extra) == ("Ann", {"notes": {"x": "y"}})


def test_invalid_json_is_400(post_lead):
    response = post_lead(raw=b'{"name": "Ann", ')
    assert response.status_code == 400
    assert response.json()["detail"].startswith("the body is not valid JSON")
    assert post_lead(raw=b'{"name": "Ann", "latitude": NaN, "email": "a@example.com"}').status_code == 400
    assert post_lead(raw=b"\xff\xfe").status_code == 400


def test_json_that_is_not_an_object_is_422(post_lead):
    response = post_lead(raw=b'["Ann"]')
    assert response.status_code == 422
    assert response.json() == {"detail": {"__all__": ["the body must be a JSON object"]}}


def test_wrong_content_type_is_415(post_lead):
    response = post_lead(raw="name=Ann&phone=2065550123", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json() == {
        "detail": "Content-Type must be application/json, got 'application/x-www-form-urlencoded'"
    }
    assert Lead.objects.count() == 0


def test_3mb_body_is_413(post_lead):
    response = post_lead({**FORM, "message": "x" * (3 * 1024 * 1024)})
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]


def test_missing_or_wrong_key_is_401(client):
    assert client.post("/api/leads", json.dumps(FORM), content_type="application/json").status_code == 401
    wrong = client.post("/api/leads", json.dumps(FORM), content_type="application/json", HTTP_X_API_KEY="ls_nope_x")
    assert wrong.status_code == 401
    assert wrong.json() == {"detail": "Unauthorized"}


def test_key_without_create_scope_is_403(post_lead, make_api_key):
    response = post_lead(key=make_api_key("leads:read"))
    assert response.status_code == 403
    assert response.json() == {"detail": "this API key lacks the 'leads:create' scope"}


def test_over_rate_limit_is_429_with_retry_after(post_lead, make_api_key):
    key = make_api_key("leads:create", rate_limit=1)
    assert post_lead(key=key).status_code == 201
    response = post_lead(key=key)
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1


def test_cors_preflight_for_the_keys_origin(client, form_key):
    response = client.options(
        "/api/leads",
        HTTP_ORIGIN="https://www.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type, x-api-key, idempotency-key",
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://www.example.com"
    assert "idempotency-key" in response["Access-Control-Allow-Headers"]
    other = client.options("/api/leads", HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert "Access-Control-Allow-Origin" not in other


def test_browser_post_from_allowed_origin_gets_cors_header_other_origin_403(post_lead):
    ok = post_lead(HTTP_ORIGIN="https://www.example.com")
    assert ok.status_code == 201
    assert ok["Access-Control-Allow-Origin"] == "https://www.example.com"
    bad = post_lead({**FORM, "phone": "2065550100"}, HTTP_ORIGIN="https://evil.example")
    assert bad.status_code == 403


def test_lead_id_is_a_uuid_and_request_id_is_on_timeline(post_lead):
    response = post_lead(HTTP_X_REQUEST_ID="form-req-123456")
    lead_id = uuid.UUID(response.json()["id"])
    fan_out(str(lead_id))
    assert LeadEvent.objects.get(lead_id=lead_id).request_id == "form-req-123456"
    assert set(OutboxEvent.objects.values_list("request_id", flat=True)) == {"form-req-123456"}
    assert Delivery.objects.get().request_id == "form-req-123456"


def test_the_installed_new_lead_function_is_the_one_the_duplicate_rule_builds(db) -> None:
    # The migration installs new_lead_function_sql()'s text; a change to the rule or the lock in
    # leads/intake/sql.py without a migration that installs it again fails here.
    from django.db import connection

    from leads.intake.sql import NEW_LEAD_FUNCTION, new_lead_function_sql

    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", [NEW_LEAD_FUNCTION])
        [(installed,)] = cursor.fetchall()
    assert installed == new_lead_function_sql().split("$fn$")[1]


def test_the_repeat_lookup_reads_only_the_matching_leads(post_lead) -> None:
    # PL/pgSQL plans the function's lookup once per session after five calls, on the statistics of
    # that moment. Cached plans seen: a sequential scan (every lead read for each new one), then a
    # walk down the created_at index (every lead of the last 30 days). The lookup must stay a
    # lookup by phone or email, whatever the table's statistics say.
    from django.db import connection

    def lead_table_reads() -> tuple[int, int]:
        with connection.cursor() as cursor:
            # This transaction's own counts (the test runs in one).
            cursor.execute(
                "SELECT seq_scan, seq_tup_read + idx_tup_fetch FROM pg_stat_xact_user_tables"
                " WHERE relname = 'leads_lead'"
            )
            return cursor.fetchone() or (0, 0)

    with connection.cursor() as cursor:
        # As on a new pooled connection: no plan cached by earlier tests (their foreign-key checks on
        # a near-empty table may have cached sequential scans, which would count here).
        cursor.execute("DISCARD PLANS")
    scans_before, read_before = lead_table_reads()
    n = 12
    for i in range(n):
        response = post_lead({**FORM, "phone": f"(206) 555-{1000 + i}", "email": f"seller{i}@example.com"})
        assert response.status_code == 201, response.content
    scans, read = lead_table_reads()
    assert scans - scans_before == 0
    # None of these leads repeats another: the only rows read are the outbox rows' foreign-key
    # checks (one a lead). A scan of recent leads would have read 0 + 1 + ... + 11 = 66 more.
    assert read - read_before <= n
    assert Lead.objects.count() == n
