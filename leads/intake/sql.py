"""The intake's SQL: the duplicate-lead rule, defined here once, and the new lead in one round trip.

The rule: a submission repeats a lead when it has the same phone or the same email (an empty one
never matches) and the same address key, the lead came in within DUPLICATE_WINDOW and is not
spam; the newest such lead is the one repeated.

Lock, then look: two submissions of the same person and property at the same moment (a double
click without an Idempotency-Key) must not both become new leads, so the contact keys are locked
(transaction-scoped advisory locks, in sorted order) before the lookup. The lock and the lookup are
two statements (in READ COMMITTED the lookup needs a snapshot taken after the lock is granted)
sent as one simple-protocol query: Django's psycopg cursor binds client-side. The embedded SQLite
needs no lock: its writing transactions are IMMEDIATE, one at a time.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import re
import uuid
from typing import Any

import psycopg
from django.db import connection, transaction
from django.db.models import JSONField, Model
from django.utils import timezone

from leads.intake.wake import WAKE_AFTER_COMMIT, WAKE_SETTING
from leads.models import IdempotencyRecord, Lead, LeadStatus, OutboxEvent

DUPLICATE_WINDOW = datetime.timedelta(days=30)

# The rule, written once: a lead with the same contact and property ...
_REPEAT_MATCH = """(phone = %(phone)s OR email = %(email)s)
  AND address_key = %(address_key)s"""
# ... that is recent and not spam.
_REPEAT_RECENT = "created_at >= %(since)s AND status <> %(spam)s"
# The newest such lead. On PostgreSQL only the contact is in the WHERE clause, so only the phone and
# email indexes (one column each) can serve it, whatever the statistics say: the address key and the
# window are checked on the few rows they find.
# PL/pgSQL caches the plan of its first calls in a session: with ORDER BY created_at DESC LIMIT 1
# and the window in the WHERE clause, that plan walked the created_at index from the newest lead
# back, reading every lead of the last 30 days to find none (18M index entries read for 6,007 leads
# in one bench run), and every pooled connection kept it while the table grew.
_REPEAT_SQL = f"""SELECT (array_agg(id ORDER BY created_at DESC) FILTER (WHERE {_REPEAT_RECENT}))[1]
FROM leads_lead
WHERE {_REPEAT_MATCH}"""
# The embedded SQLite (no array_agg; one writer at a time, a small database).
_REPEAT_SQL_SQLITE = f"""SELECT id FROM leads_lead
WHERE {_REPEAT_MATCH}
  AND {_REPEAT_RECENT}
ORDER BY created_at DESC
LIMIT 1"""

_LOCK_SQL = "SELECT count(pg_advisory_xact_lock(hashtext(k))) FROM unnest(%(keys)s::text[]) AS k"


def _repeat_params(*, phone: str, email: str, address_key: str) -> dict[str, Any]:
    return {
        "keys": sorted(f"lead-contact:{c}|{address_key}" for c in (phone, email) if c),
        # NULL never matches: a lead without an email must not match every other one without.
        "phone": phone or None,
        "email": email or None,
        "address_key": address_key,
        "since": timezone.now() - DUPLICATE_WINDOW,
        "spam": LeadStatus.SPAM.value,
    }


def lock_and_find_repeat(*, phone: str, email: str, address_key: str) -> uuid.UUID | str | None:
    """The id of the lead this submission repeats, or None; call inside the transaction that then
    writes (the lock is held until it ends)."""
    params = _repeat_params(phone=phone, email=email, address_key=address_key)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"{_LOCK_SQL};\n{_REPEAT_SQL}", params)
            cursor.nextset()
        else:
            del params["keys"]
            params["since"] = connection.ops.adapt_datetimefield_value(params["since"])
            cursor.execute(_REPEAT_SQL_SQLITE, params)
        row = cursor.fetchone()
    return row[0] if row else None


# The new-lead fast path: one call of a PL/pgSQL function (installed by migration
# leads.0012_intake_new_lead_function from new_lead_function_sql() below): the lock, the lookup,
# and the inserts of the lead, its one outbox event and (with an Idempotency-Key) the idempotency
# record. Outside a transaction the call is one implicit transaction: no BEGIN and COMMIT round
# trips, and the advisory locks are held until it commits. A function's statements are planned once
# per session (the multi-statement query it replaces was parsed and planned on every request), and
# each statement takes a fresh snapshot, so the lookup sees whatever committed before the lock was
# granted. Each row is one JSON document (every column), typed by jsonb_populate_record.
#
# `SET enable_seqscan = off`: with it, the phone and email indexes are the only way to run the
# lookup (see _REPEAT_SQL). PL/pgSQL caches a generic plan after five calls in a session, costed on
# the statistics of that moment; on a young table (a new deployment, the bench's fresh database) that
# plan was a sequential scan, kept by every pooled connection while the table grew: each new lead
# read every lead (11.4M rows read for 4,791 leads in one bench run, PostgreSQL ~40% of the box's CPU).
NEW_LEAD_FUNCTION = "leads_intake_new_lead"
_FUNCTION_PARAMS = re.compile(r"%\((\w+)\)s")


def new_lead_function_sql() -> str:
    """CREATE OR REPLACE FUNCTION for the new lead's round trip, built from _LOCK_SQL and _REPEAT_SQL
    so that the duplicate rule stays written once (a test checks the installed function against this)."""

    def plpgsql(sql: str) -> str:
        return _FUNCTION_PARAMS.sub(r"p_\1", sql)

    repeat = plpgsql(_REPEAT_SQL).replace("\n", "\n    ")
    return f"""CREATE OR REPLACE FUNCTION {NEW_LEAD_FUNCTION}(
  p_keys text[], p_phone text, p_email text, p_address_key text, p_since timestamptz, p_spam text,
  p_lead jsonb, p_outbox jsonb, p_idempotency jsonb
) RETURNS uuid LANGUAGE plpgsql SET enable_seqscan = off AS $fn$
-- NULL when the lead, its outbox event and its idempotency record were inserted; the id of the lead
-- it repeats (and nothing written) otherwise. Generated by leads.intake.sql.new_lead_function_sql().
DECLARE
  repeat_id uuid;
BEGIN
  PERFORM {plpgsql(_LOCK_SQL).removeprefix("SELECT ")};
  repeat_id := (
    {repeat}
  );
  IF repeat_id IS NOT NULL THEN
    RETURN repeat_id;
  END IF;
  INSERT INTO leads_lead SELECT * FROM jsonb_populate_record(NULL::leads_lead, p_lead);
  -- The outbox trigger's NOTIFY would serialise this commit with every other lead's: the caller
  -- wakes the pumps after the commit instead (leads.intake.wake).
  PERFORM set_config('{WAKE_SETTING}', '{WAKE_AFTER_COMMIT}', true);
  INSERT INTO leads_outboxevent SELECT * FROM jsonb_populate_record(
    NULL::leads_outboxevent,
    p_outbox || jsonb_build_object('id', nextval(pg_get_serial_sequence('leads_outboxevent', 'id')))
  );
  IF p_idempotency IS NOT NULL THEN
    INSERT INTO leads_idempotencyrecord SELECT * FROM jsonb_populate_record(
      NULL::leads_idempotencyrecord,
      p_idempotency || jsonb_build_object('id', nextval(pg_get_serial_sequence('leads_idempotencyrecord', 'id')))
    );
  END IF;
  RETURN NULL;
END
$fn$"""


_NEW_LEAD_CALL = (
    f"SELECT {NEW_LEAD_FUNCTION}(%(keys)s, %(phone)s, %(email)s, %(address_key)s, %(since)s, %(spam)s,"
    " %(lead)s::jsonb, %(outbox)s::jsonb, %(idempotency)s::jsonb)"
)


def insert_new_lead(*, lead: dict[str, Any], outbox: dict[str, Any], idempotency: dict[str, Any] | None = None) -> bool:
    """Insert a new lead with its outbox event (and idempotency record) unless it repeats a lead
    (PostgreSQL only); False, with nothing written, when it does. Each row is given as its field
    values (row_document fills in the rest)."""
    params = _repeat_params(phone=lead["phone"], email=lead["email"], address_key=lead["address_key"])
    params["lead"] = row_document(Lead, lead)
    params["outbox"] = row_document(OutboxEvent, outbox)
    params["idempotency"] = row_document(IdempotencyRecord, idempotency) if idempotency is not None else None
    # Inside a transaction (tests, a caller's atomic block) a savepoint keeps an IntegrityError local.
    with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
        connection.ensure_connection()
        # Server-side binding (a plain psycopg cursor; Django's binds client-side): the two JSON
        # documents go as parameters instead of being escaped into the query text, ~0.2 ms of CPU
        # a lead. Not prepared (Django's prepare_threshold=None keeps transaction poolers working);
        # the function's own statements are planned once per session anyway. Errors are Django's.
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(_NEW_LEAD_CALL, params)
            (repeat_id,) = cursor.fetchone()
    return repeat_id is None


@functools.cache
def _row_template(model: type[Model]) -> tuple[dict[str, Any], tuple[str, ...], dict[str, str]]:
    """A model's row document with every column at its default, the columns that take the insert's
    time (auto_now, auto_now_add), and the field name -> column map (the id is the function's)."""
    fields = [f for f in model._meta.local_concrete_fields if not (f.primary_key and f.db_returning)]
    template = {f.column: None if f.primary_key else _json_value(f, f.get_default()) for f in fields}
    stamped = tuple(f.column for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False))
    return template, stamped, {f.attname: f.column for f in fields}


def row_document(model: type[Model], values: dict[str, Any]) -> str:
    """One row as the JSON document jsonb_populate_record takes: the given field values (by attname)
    over the model's defaults, the insert's time in auto_now(_add) fields."""
    template, stamped, columns = _row_template(model)
    doc = dict(template)
    now = timezone.now()
    for column in stamped:
        doc[column] = now
    for name, value in values.items():
        doc[columns[name]] = value
    # default=str: uuid, Decimal, datetime and IP addresses in their text forms, which PostgreSQL reads.
    return json.dumps(doc, ensure_ascii=False, allow_nan=False, default=str)


def _json_value(field: Any, value: Any) -> Any:
    # JSON columns take the value itself; everything else its text form (uuid, timestamp, numeric, inet).
    if value is None or isinstance(field, JSONField):
        return value
    value = field.get_prep_value(value)
    return value if isinstance(value, (str, int, float, bool)) else str(value)
