from django.apps import AppConfig


class ValuationConfig(AppConfig):
    name = "valuation"
    default_auto_field = "django.db.models.BigAutoField"
