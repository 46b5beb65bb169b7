"""The outbox trigger stays quiet for a transaction that wakes the pumps itself after commit.

NOTIFY serialises the commits of all notifying transactions (a global lock held through the WAL
flush), which made every new lead wait for every other's commit. The intake's new-lead function sets
`leadsite.outbox_wake = after_commit` for its transaction and wakes the pumps after the commit
(leads.intake.wake); every other writer keeps the trigger's NOTIFY. Nothing on other databases.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION leads_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('leadsite.outbox_wake', true) IS DISTINCT FROM 'after_commit' THEN
    PERFORM pg_notify('leadsite_outbox', '');
  END IF;
  RETURN NULL;
END $$;
"""
# As migration 0010 created it.
PREVIOUS = """
CREATE OR REPLACE FUNCTION leads_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('leadsite_outbox', '');
  RETURN NULL;
END $$;
"""


def _on_postgresql(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("leads", "0012_intake_new_lead_function")]

    operations = [migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(PREVIOUS), elidable=False)]
