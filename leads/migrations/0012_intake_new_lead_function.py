"""The intake's new-lead round trip as a PL/pgSQL function (leads.intake.sql.insert_new_lead).

The function's text is built by leads.intake.sql.new_lead_function_sql() from the duplicate rule
written there, so the rule stays written once; tests/leads/test_intake.py checks that the installed
function is what that code builds today (a change to the rule or the lock needs a migration that
runs this again). Nothing on other databases (the embedded SQLite takes the ORM path).
"""

from django.db import migrations

DROP = (
    "DROP FUNCTION IF EXISTS leads_intake_new_lead(text[], text, text, text, timestamptz, text, jsonb, jsonb, jsonb)"
)


def create(apps, schema_editor):
    from leads.intake.sql import new_lead_function_sql

    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(new_lead_function_sql())


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("leads", "0011_lead_sla_breached_index")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
