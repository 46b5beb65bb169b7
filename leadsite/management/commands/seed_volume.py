"""`manage.py seed_volume`: a production-sized back office to measure the admin against (make bench admin).

50,000 leads over 90 days (statuses, assignees among 10 reps, follow-ups, coordinates), their
timelines, valuations and Slack deliveries, and 1,000,000 central log entries over 30 days. Generated
inside PostgreSQL (INSERT ... SELECT generate_series), so it takes seconds, not the hours a row-by-row
path would; the log table's indexes are dropped for the load and built once after (like bench_logs).
Rows it made before are removed first, so it can be run again.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from leads.models import Lead
from leadsite.permissions import ACQUISITIONS

SOURCE = "seed-volume"
REPS = 10
REP_PASSWORD = "seed-volume-rep"
SEEDED_TABLES = ("leads_lead", "leads_leadevent", "valuation_valuation", "notifications_delivery", "logs_logentry")

LEADS_SQL = """
INSERT INTO leads_lead (
    id, status, name, phone, email, address, street, unit, city, state, postal_code, address_key,
    latitude, longitude, beds, baths, living_area_sqft, lot_sqft, year_built, property_type,
    message, asking_price, timeline, condition, extra, source, utm_source, utm_medium, utm_campaign,
    utm_term, utm_content, page_url, request_id, consent, consent_text, consent_user_agent,
    assigned_to_id, first_contacted_at, sla_breached_at, follow_up_at, follow_up_note, follow_up_reminded_at,
    archived_at, created_at, updated_at, location_precision, fan_out_done_at, fan_out_repairs
)
SELECT
    md5('seed-lead-' || i)::uuid,
    st,
    (ARRAY['Maria','James','Wei','Aisha','Dwayne','Olga','Tomas','Priya','Hannah','Luis','Grace','Omar',
           'Ingrid','Kofi','Sofia','Raj','Emily','Noah','Yuki','Carlos'])[1 + i %% 20] || ' ' ||
    (ARRAY['Gonzalez','Smith','Chen','Khan','Carter','Ivanova','Novak','Patel','Berg','Garcia','Kim',
           'Haddad','Larsen','Mensah','Rossi','Singh','Brown','Miller','Tanaka','Lopez','Nguyen','Olsen',
           'Baker','Price','Reyes'])[1 + (i / 20) %% 25],
    '+1' || (ARRAY['206','253','425','360'])[1 + i %% 4] || (2 + (i * 7919) %% 8)::text
        || lpad(((i * 104729) %% 1000000)::text, 6, '0'),
    'seller' || i || '@example.com',
    (100 + i %% 9000) || ' ' || street || ', ' || city || ', WA 98' || lpad((i %% 200)::text, 3, '0'),
    (100 + i %% 9000) || ' ' || street, '', city, 'WA', '98' || lpad((i %% 200)::text, 3, '0'),
    lower((100 + i %% 9000) || ' ' || street || ' ' || city || ' wa'),
    47.5 + (i %% 1000) / 4000.0, -122.4 + ((i * 37) %% 1000) / 4000.0,
    2 + i %% 4, 1 + (i %% 5) * 0.5, 900 + (i * 13) %% 2600, 2000 + (i * 17) %% 8000, 1910 + i %% 110, 'sfr',
    'Seeded lead ' || i, NULL, (ARRAY['asap','1-3 months','3-6 months'])[1 + i %% 3],
    (ARRAY['good','needs work','poor'])[1 + i %% 3], '{}'::jsonb, %(source)s,
    (ARRAY['google','facebook','radio','mailer'])[1 + i %% 4], '', '', '', '', '',
    md5('seed-request-' || i), true, 'I agree to be contacted.', 'seed_volume',
    CASE WHEN i %% 10 = 0 THEN NULL ELSE (%(reps)s::int[])[1 + (i / 10) %% %(nreps)s] END,
    CASE WHEN st IN ('new', 'spam') THEN NULL ELSE created + (i %% 30) * interval '1 minute' END,
    CASE WHEN st NOT IN ('new', 'spam') AND i %% 30 > 5 THEN created + interval '5 minutes' END,
    fu, CASE WHEN fu IS NULL THEN '' ELSE 'Call back about the offer' END,
    CASE WHEN fu < now() THEN fu - interval '15 minutes' END,
    CASE WHEN i %% 100 = 0 THEN created + interval '20 days' END,
    created, created,
    'manual', created, 0  -- seeded as history: located by hand, fan-out complete (the repair skips them)
FROM (
    SELECT i,
           now() - i * interval '155.52 seconds' AS created,   -- 50,000 leads over 90 days
           (ARRAY['new','contacted','appointment','offer_made','under_contract','won','lost','lost',
                  'contacted','spam'])[1 + (i * 3) %% 10] AS st,
           CASE WHEN i %% 3 = 0 AND (i * 3) %% 10 BETWEEN 0 AND 4
                THEN now() + ((i %% 240) - 60) * interval '1 hour' END AS fu,
           (ARRAY['Main St','Fremont Ave N','Pine St','Rainier Ave S','Aurora Ave N','Market St',
                  'Beacon Ave S','Holman Rd NW'])[1 + i %% 8] AS street,
           (ARRAY['Seattle','Seattle','Tacoma','Bellevue','Everett','Kent','Renton','Federal Way'])[1 + (i / 8) %% 8]
               AS city
    FROM generate_series(1::bigint, %(leads)s::bigint) AS i
) AS s
"""

EVENTS_SQL = """
INSERT INTO leads_leadevent (lead_id, kind, message, data, actor_id, request_id, created_at)
SELECT l.id, e.kind, e.message, '{}'::jsonb, CASE WHEN e.kind IN ('note', 'status') THEN l.assigned_to_id END,
       l.request_id, l.created_at + e.after
FROM leads_lead l
CROSS JOIN LATERAL (VALUES
    ('created', 'New lead from ' || l.source, interval '0'),
    ('assigned', 'Assigned (round-robin)', interval '2 seconds'),
    ('valuation', 'Valued', interval '5 seconds'),
    ('status', 'Status new → ' || l.status, interval '20 minutes'),
    ('note', 'Left a voicemail', interval '25 minutes')
) AS e(kind, message, after)
WHERE l.source = %(source)s
  AND (e.kind IN ('created', 'valuation') OR (e.kind = 'assigned' AND l.assigned_to_id IS NOT NULL)
       OR (e.kind = 'status' AND l.status <> 'new') OR (e.kind = 'note' AND l.status <> 'new'))
"""

VALUATIONS_SQL = """
INSERT INTO valuation_valuation (lead_id, status, estimate, low, high, confidence, as_of, result, comps,
                                 created_at, updated_at, location_precision)
SELECT id, 'ok', est, est * 92 / 100, est * 109 / 100, 0.6 + (living_area_sqft %% 30) / 100.0, created_at::date,
       jsonb_build_object('status', 'ok', 'estimate', est, 'low', est * 92 / 100, 'high', est * 109 / 100,
                          'confidence', 0.6 + (living_area_sqft %% 30) / 100.0, 'as_of', created_at::date,
                          'method', 'seeded', 'model_version', NULL, 'comps', comps),
       comps, created_at, created_at, location_precision
FROM (
    SELECT l.*, 300000 + l.living_area_sqft * 250 AS est,
           (SELECT jsonb_agg(jsonb_build_object('sale_id', 's' || k, 'price', 300000 + k * 1000,
                                                'date', '2015-05-01', 'distance_miles', k / 10.0,
                                                'living_area_sqft', 1500 + k * 10,
                                                'indicated_value', 310000 + k * 1000, 'weight', 0.2))
              FROM generate_series(1, 5) AS k) AS comps
    FROM leads_lead l WHERE l.source = %(source)s AND l.latitude IS NOT NULL AND abs(hashtext(l.id::text)) %% 10 < 7
) AS s
"""

DELIVERIES_SQL = """
INSERT INTO notifications_delivery (key, channel, event_type, lead_id, payload, status, attempts, last_error, text,
                                    ts, thread_ts, sent_at, request_id, created_at, updated_at)
SELECT 'seed:lead:' || l.id || ':new_lead', '#leads', 'new_lead', l.id, '{}'::jsonb,
       CASE WHEN n %% 50 = 0 THEN 'dead' ELSE 'sent' END, 1,
       CASE WHEN n %% 50 = 0 THEN 'channel_not_found' ELSE '' END, '🔥 *New Lead!* ' || l.name,
       CASE WHEN n %% 50 = 0 THEN '' ELSE (extract(epoch FROM l.created_at)::bigint)::text || '.000' || (n %% 1000) END,
       '', l.created_at, l.request_id, l.created_at, l.created_at
FROM (SELECT *, row_number() OVER (ORDER BY created_at) AS n FROM leads_lead WHERE source = %(source)s) AS l
"""

LOGS_SQL = """
INSERT INTO logs_logentry
    (time, level, level_name, service, logger, event, message, context, request_id, lead_id, exception, host, process)
SELECT
    now() - i * interval '2.592 seconds',  -- 1,000,000 rows over 30 days
    lv,
    CASE lv WHEN 10 THEN 'DEBUG' WHEN 20 THEN 'INFO' WHEN 30 THEN 'WARNING' ELSE 'ERROR' END,
    (ARRAY['web', 'worker', 'beat'])[1 + i %% 3],
    'seed_volume',
    (ARRAY['lead.created', 'valuation.done', 'slack.sent', 'http.request', 'offer.graded'])[1 + i %% 5],
    (ARRAY['lead received from the website form', 'valuation finished for the property',
           'slack post delivered to channel leads', 'slack post failed with timeout after retries',
           'offer graded against comparable sales', 'POST /api/leads 201 in 35 ms',
           'payment received from stripe', 'speed to lead sla breached'])[1 + (i * 7) %% 8]
        || ' ' || substr(md5(i::text), 1, 12),
    jsonb_build_object('n', i),
    md5('seed-request-' || (i / 6)),
    CASE WHEN i %% 3 = 0 THEN md5('seed-lead-' || (i / 6))::uuid::text ELSE '' END,
    '', 'seed-host', 1000 + i %% 50
FROM (
    SELECT i, CASE WHEN i %% 500 = 0 THEN 40 WHEN i %% 10 = 1 THEN 30 WHEN i %% 4 = 2 THEN 10 ELSE 20 END AS lv
    FROM generate_series(1::bigint, %(logs)s::bigint) AS i
) AS s
"""


class Command(BaseCommand):
    help = "Create 50,000 leads (timelines, valuations, deliveries) and 1,000,000 log entries for benchmarks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--leads", type=int, default=50_000)
        parser.add_argument("--logs", type=int, default=1_000_000)

    def handle(self, *args: Any, leads: int, logs: int, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("seed_volume needs PostgreSQL (set DATABASE_URL)")
        if leads < 1 or logs < 0:
            raise CommandError("--leads must be at least 1 and --logs at least 0")
        reps = self._reps()
        params = {"source": SOURCE, "reps": reps, "nreps": len(reps), "leads": leads, "logs": logs}
        with transaction.atomic(), connection.cursor() as cursor:
            # Bulk loads, not requests: the per-connection statement_timeout (DATABASE_STATEMENT_TIMEOUT_MS)
            # would cancel them on a busy box.
            cursor.execute("SET LOCAL statement_timeout = 0")
            # The ORM's delete follows every app's foreign keys to leads (timelines, valuations, ...).
            Lead.objects.filter(source=SOURCE).delete()
            cursor.execute("DELETE FROM notifications_delivery WHERE key LIKE 'seed:%%'")
            cursor.execute("DELETE FROM logs_logentry WHERE logger = 'seed_volume'")
            for name, sql in (
                ("leads", LEADS_SQL),
                ("timeline entries", EVENTS_SQL),
                ("valuations", VALUATIONS_SQL),
                ("deliveries", DELIVERIES_SQL),
            ):
                cursor.execute(sql, params)
                self.stdout.write(f"{name}: {cursor.rowcount:,}")
        self._logs(params)
        with connection.cursor() as cursor:
            # The state autovacuum keeps a live database in: GIN pending lists merged (50,000 leads left
            # in the trigram indexes' pending lists make every name search scan them), visibility maps
            # set (index-only counts), statistics fresh. Measured against an unvacuumed table, the admin
            # would be timing the seed, not the back office.
            cursor.execute("SET statement_timeout = 0")
            try:
                for table in SEEDED_TABLES:
                    cursor.execute(f"VACUUM (ANALYZE) {table}")
            finally:
                cursor.execute("RESET statement_timeout")
        self.stdout.write(f"Reps (Acquisitions, password {REP_PASSWORD!r}): rep01 … rep{REPS:02d}")

    def _reps(self) -> list[int]:
        group = Group.objects.get(name=ACQUISITIONS)
        ids = []
        for n in range(1, REPS + 1):
            user, created = get_user_model().objects.get_or_create(
                username=f"rep{n:02d}", defaults={"is_staff": True, "first_name": "Rep", "last_name": f"{n:02d}"}
            )
            if created:
                user.set_password(REP_PASSWORD)
                user.save()
            user.groups.add(group)
            ids.append(user.pk)
        return ids

    def _logs(self, params: dict[str, Any]) -> None:
        """Load the log rows with the table's secondary indexes dropped, then build them once."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'logs_logentry' "
                "AND indexname <> 'logs_logentry_pkey'"
            )
            indexes = cursor.fetchall()
            with transaction.atomic():
                cursor.execute("SET LOCAL statement_timeout = 0")
                for name, _ in indexes:
                    cursor.execute(f'DROP INDEX "{name}"')
                cursor.execute(LOGS_SQL, params)
                self.stdout.write(f"log entries: {cursor.rowcount:,}")
                cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
                for _, definition in indexes:
                    # pg_indexes shows a partitioned table's index as "ON ONLY <parent>": run as such it
                    # builds an invalid index on the parent alone and none on the partitions.
                    cursor.execute(definition.replace(" ON ONLY ", " ON ", 1))
