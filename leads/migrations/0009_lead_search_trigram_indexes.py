"""Trigram indexes for the staff search box (leads.selectors.lead_search_q): `icontains` on name, email and
address (Django writes UPPER(col::text) LIKE UPPER(%s)) and `contains` on phone digits use them instead
of scanning every lead. PostgreSQL only (pg_trgm, a trusted extension); other databases get nothing."""

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

INDEXES = {
    "lead_name_trgm_idx": "(UPPER(name::text)) gin_trgm_ops",
    "lead_email_trgm_idx": "(UPPER(email::text)) gin_trgm_ops",
    "lead_address_trgm_idx": "(UPPER(address::text)) gin_trgm_ops",
    "lead_phone_trgm_idx": "phone gin_trgm_ops",
}


def create(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, expression in INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON leads_lead USING gin ({expression})")


def drop(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("leads", "0008_staff_groups")]

    operations = [migrations.RunPython(create, drop)]
