from django.apps import AppConfig


class LogsConfig(AppConfig):
    name = "logs"
    verbose_name = "Central logs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from logs import signals  # noqa: F401 - connects the Celery logging/shutdown hooks
