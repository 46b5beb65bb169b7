"""A NOTIFY when outbox rows commit, so the workers' outbox pumps publish them at once (leads.outbox).

A statement-level trigger: one notification per inserting statement, sent by PostgreSQL at commit
(and never for a rolled-back insert). Nothing on other databases (the embedded SQLite publishes
from the writer itself).
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION leads_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('leadsite_outbox', '');
  RETURN NULL;
END $$;
CREATE TRIGGER leads_outbox_notify AFTER INSERT ON leads_outboxevent
  FOR EACH STATEMENT EXECUTE FUNCTION leads_outbox_notify();
"""
DROP = """
DROP TRIGGER IF EXISTS leads_outbox_notify ON leads_outboxevent;
DROP FUNCTION IF EXISTS leads_outbox_notify();
"""


def _on_postgresql(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("leads", "0009_lead_search_trigram_indexes")]

    operations = [migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP), elidable=False)]
