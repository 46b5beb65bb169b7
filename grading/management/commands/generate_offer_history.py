from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from grading.synthetic import offer_history_generate


class Command(BaseCommand):
    help = (
        "Create a SYNTHETIC offer history (leads named '[synthetic] ...', offers marked synthetic) "
        "for demos, so train_grader has outcomes to learn from. Never run it on real data you report on."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=240)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: Any, count: int = 240, seed: int = 7, **options: Any) -> None:
        made = offer_history_generate(count=count, seed=seed)
        self.stdout.write(f"created {made} synthetic offers (marked synthetic; see Offers in the admin)")
