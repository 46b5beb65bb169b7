from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from leadsite.models import Scope
from leadsite.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key. The key is printed alone on the last line; it is stored hashed and never shown again."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument("--scope", action="append", required=True, choices=Scope.values, dest="scopes")
        parser.add_argument("--origin", action="append", default=[], dest="origins", help="allowed browser origin")
        parser.add_argument("--rate-limit", type=int, default=60, help="requests per minute, 0 = unlimited")

    def handle(self, *args, name: str, scopes: list[str], origins: list[str], rate_limit: int, **options) -> None:
        try:
            key, raw_key = api_key_create(name=name, scopes=scopes, allowed_origins=origins, rate_limit=rate_limit)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(f"Created API key {key.name!r} (prefix {key.prefix}) with scopes {', '.join(key.scopes)}.")
        self.stdout.write(raw_key)
