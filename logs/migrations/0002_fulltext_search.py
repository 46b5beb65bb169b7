"""Full-text search on PostgreSQL: a generated tsvector column and its GIN index.

Not a model field: SQLite (the `make run` default) has no tsvector, so there the search falls back to
icontains (logs.selectors.text_filter). The 'simple' configuration keeps ids, codes and names as they
are (no stemming), which suits log lines better than a language's dictionary.
"""

from django.db import migrations

FORWARD = [
    """
    ALTER TABLE logs_logentry ADD COLUMN search tsvector GENERATED ALWAYS AS (
        to_tsvector('simple'::regconfig, coalesce(event, '') || ' ' || left(message, 8000))
    ) STORED
    """,
    "CREATE INDEX logs_search_gin ON logs_logentry USING gin (search)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS logs_search_gin",
    "ALTER TABLE logs_logentry DROP COLUMN IF EXISTS search",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("logs", "0001_initial")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
