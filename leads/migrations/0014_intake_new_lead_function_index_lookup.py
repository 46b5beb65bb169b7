"""The intake's new-lead function looks up repeats through the indexes, never a sequential scan.

PL/pgSQL caches a generic plan for the repeat lookup after five calls in a session, costed on the
statistics of the moment: on a young table that plan was a sequential scan, and every pooled
connection kept it while the table grew (each new lead read every lead). The function now runs with
`enable_seqscan = off` (leads.intake.sql.new_lead_function_sql). Nothing on other databases.
"""

from django.db import migrations


def _install(seqscan_off: bool):
    def run(apps, schema_editor):
        from leads.intake.sql import new_lead_function_sql

        if schema_editor.connection.vendor != "postgresql":
            return
        sql = new_lead_function_sql()
        if not seqscan_off:
            sql = sql.replace(" SET enable_seqscan = off", "")
        schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("leads", "0013_outbox_notify_unless_woken_after_commit")]

    operations = [migrations.RunPython(_install(True), _install(False), elidable=False)]
