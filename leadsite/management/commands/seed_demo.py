from __future__ import annotations

import os
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from leadsite.models import ApiKey, Scope
from leadsite.services import api_key_create

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "leadsite-demo"
DEMO_APPS = ("leads", "notifications", "valuation", "grading", "logs")


class Command(BaseCommand):
    help = "Create the demo staff login, a demo API key and each app's demo data (safe to run again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="seed even with DJANGO_DEBUG off (creates a superuser with a published password and an all-scope key)",
        )

    def handle(self, *args: object, **options: object) -> None:
        if not settings.DEBUG and not options["allow_production"]:
            # The demo login's password is in the README and the demo key can do everything.
            raise CommandError(
                "seed_demo creates a superuser with a published password (demo / leadsite-demo) and an "
                "all-scope API key; with DJANGO_DEBUG off it refuses. Pass --allow-production if this "
                "really is a throwaway demo."
            )
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"is_staff": True, "is_superuser": True, "email": "demo@example.com"}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        port = os.environ.get("PORT", "8000")
        self.stdout.write(f"Demo staff login: {DEMO_USERNAME} / {DEMO_PASSWORD}  (http://127.0.0.1:{port}/admin/)")

        if not ApiKey.objects.filter(name="demo").exists():
            _, raw_key = api_key_create(name="demo", scopes=list(Scope.values), rate_limit=0)
            self.stdout.write(f"Demo API key (all scopes, shown once): {raw_key}")

        # Each app may ship a `demo.seed(stdout)` that adds its own demo data.
        for label in DEMO_APPS:
            try:
                module = import_module(f"{label}.demo")
            except ModuleNotFoundError as exc:
                if exc.name != f"{label}.demo":
                    raise
                continue
            module.seed(self.stdout)
