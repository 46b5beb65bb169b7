from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class LeadsiteConfig(AppConfig):
    default = True
    name = "leadsite"
    verbose_name = "Access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from leadsite import signals  # noqa: F401  (CORS per API key)


class LeadsiteAdminConfig(admin_apps.AdminConfig):
    default = False  # named explicitly in INSTALLED_APPS
    default_site = "leadsite.admin_site.LeadsiteAdminSite"
