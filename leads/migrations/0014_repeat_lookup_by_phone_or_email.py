"""The duplicate check's lookup reads only the leads with the submission's phone or email.

PL/pgSQL caches a generic plan for the intake function's lookup after five calls in a session,
costed on the statistics of that moment, and a pooled connection keeps it while the table grows. On
a young table (a new deployment, the bench's fresh database) the plans it cached read every lead
(a sequential scan) or every lead of the last 30 days (the created_at index, for ORDER BY ... LIMIT
1). Now the phone and email have one-column indexes, the lookup's WHERE clause holds only the
contact (the 30-day window is a FILTER on the few rows found), and the function runs with
`enable_seqscan = off`: the two indexes are the only plan there is (leads.intake.sql). The function
is installed again from new_lead_function_sql(). Nothing but the indexes on other databases.
"""

from django.conf import settings
from django.db import migrations, models


def _install_function(apps, schema_editor):
    from leads.intake.sql import new_lead_function_sql

    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(new_lead_function_sql())


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0013_outbox_notify_unless_woken_after_commit"),
        ("leadsite", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(model_name="lead", name="leads_lead_phone_fcc2d4_idx"),
        migrations.RemoveIndex(model_name="lead", name="leads_lead_email_231c4f_idx"),
        migrations.AddIndex(model_name="lead", index=models.Index(fields=["phone"], name="lead_phone_idx")),
        migrations.AddIndex(model_name="lead", index=models.Index(fields=["email"], name="lead_email_idx")),
        # Going back leaves today's function in place: it works with either set of indexes.
        migrations.RunPython(_install_function, migrations.RunPython.noop, elidable=False),
    ]
