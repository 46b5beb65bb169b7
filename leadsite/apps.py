from django.apps import AppConfig


class LeadsiteConfig(AppConfig):
    name = "leadsite"
    verbose_name = "Access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from leadsite import signals  # noqa: F401  (CORS per API key)
