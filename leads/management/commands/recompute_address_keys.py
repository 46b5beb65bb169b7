from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from leads.services import lead_address_keys_recompute


class Command(BaseCommand):
    help = "Recompute every lead's duplicate-matching address key (after the address normalisation changed)."

    def handle(self, *args: Any, **options: Any) -> None:
        changed = lead_address_keys_recompute()
        self.stdout.write(f"{changed} address key(s) changed")
