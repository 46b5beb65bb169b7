from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class LeadsiteConfig(AppConfig):
    default = True
    name = "leadsite"
    verbose_name = "Access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from leadsite import signals  # noqa: F401  (CORS per API key)

        post_migrate.connect(_staff_groups_ensure)


def _staff_groups_ensure(app_config: AppConfig, **kwargs: object) -> None:
    # The groups come from a data migration; a database flushed since (tests) gets them back here,
    # once every app's permissions exist again (post_migrate is sent per app, in INSTALLED_APPS order).
    from django.apps import apps
    from django.contrib.auth.models import Group, Permission

    if app_config is not list(apps.get_app_configs())[-1]:
        return

    from leadsite.permissions import groups_create

    groups_create(Group, Permission, only_missing=True)


class LeadsiteAdminConfig(admin_apps.AdminConfig):
    default = False  # named explicitly in INSTALLED_APPS
    default_site = "leadsite.admin_site.LeadsiteAdminSite"
