"""Data: the staff groups Acquisitions and Managers (their permissions: leadsite.permissions)."""

from django.apps.registry import Apps
from django.contrib.auth.management import create_permissions
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

from leadsite.permissions import groups_create

def create_groups(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # Permissions are normally created after all migrations (post_migrate): make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    groups_create(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("leads", "0007_lead_follow_up_and_archive"),
        ("grading", "0001_offers_grades_and_grader"),
        ("leadsite", "0001_initial"),
        ("logs", "0002_fulltext_search"),
        ("notifications", "0004_follow_up_due_event"),
        ("valuation", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
