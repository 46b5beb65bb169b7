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
import uuid
from typing import Any

from django.db import connection, transaction
from django.db.models import JSONField, Model
from django.utils import timezone

from leads.models import LeadStatus

DUPLICATE_WINDOW = datetime.timedelta(days=30)

_REPEAT_SQL = """SELECT id FROM leads_lead
WHERE (phone = %(phone)s OR email = %(email)s)
  AND address_key = %(address_key)s
  AND created_at >= %(since)s
  AND status <> %(spam)s
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
            cursor.execute(_REPEAT_SQL, params)
        row = cursor.fetchone()
    return row[0] if row else None


# The new-lead fast path: the lock, the lookup and the conditional inserts of the lead, its one
# outbox event and (with an Idempotency-Key) the idempotency record, as one query. Outside a
# transaction PostgreSQL runs such a multi-statement query as one implicit transaction: no BEGIN and
# COMMIT round trips, and the advisory locks are held until it ends. The lookup and the inserts are
# one statement, so nothing is written when a repeat is found. Each row is one JSON parameter, typed
# by jsonb_populate_record.
_NEW_LEAD_SQL = f"""{_LOCK_SQL};
WITH repeat AS (
{_REPEAT_SQL}
), new_lead AS (
  {{lead_insert}} WHERE NOT EXISTS (SELECT 1 FROM repeat) RETURNING 1
), outbox AS (
  {{outbox_insert}}, new_lead RETURNING id
){{idempotency_cte}}
SELECT (SELECT id FROM outbox)"""
_IDEMPOTENCY_CTE = """, idempotency AS (
  {idempotency_insert}, new_lead RETURNING 1
)"""


def insert_new_lead(*, lead: Model, outbox: Model, idempotency: Model | None = None) -> bool:
    """Insert a new lead with its outbox event (and idempotency record) unless it repeats a lead
    (PostgreSQL only); False, with nothing written, when it does."""
    params = _repeat_params(phone=lead.phone, email=lead.email, address_key=lead.address_key)
    sql = _NEW_LEAD_SQL.format(
        lead_insert=_insert_select(lead, "lead", params),
        outbox_insert=_insert_select(outbox, "outbox", params),
        idempotency_cte=_IDEMPOTENCY_CTE.format(idempotency_insert=_insert_select(idempotency, "idempotency", params))
        if idempotency is not None
        else "",
    )
    # Inside a transaction (tests, a caller's atomic block) a savepoint keeps an IntegrityError local.
    with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            cursor.nextset()
            (outbox_id,) = cursor.fetchone()
    return outbox_id is not None


@functools.cache
def _insert_select_sql(model: type[Model], param: str) -> tuple[str, tuple[Any, ...]]:
    """`INSERT INTO <table> (<columns>) SELECT <columns> FROM jsonb_populate_record(...)` for a model
    (no RETURNING; the caller appends a FROM item), and the fields it takes from the row's JSON
    document %(<param>)s. One parameter per row keeps the statement within psycopg's query cache."""
    meta = model._meta
    fields = tuple(f for f in meta.local_concrete_fields if not (f.primary_key and f.db_returning))
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    row = f"jsonb_populate_record(NULL::{quote(meta.db_table)}, %({param})s::jsonb)"
    values = ", ".join(f"r.{quote(f.column)}" for f in fields)
    return f"INSERT INTO {quote(meta.db_table)} ({columns}) SELECT {values} FROM {row} AS r", fields


def _json_value(field: Any, value: Any) -> Any:
    # JSON columns take the value itself; everything else its text form (uuid, timestamp, numeric, inet).
    if value is None or isinstance(field, JSONField):
        return value
    value = field.get_prep_value(value)
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def _insert_select(obj: Model, param: str, params: dict[str, Any]) -> str:
    sql, fields = _insert_select_sql(type(obj), param)
    params[param] = json.dumps(
        {f.column: _json_value(f, f.pre_save(obj, True)) for f in fields}, ensure_ascii=False, allow_nan=False
    )
    return sql
