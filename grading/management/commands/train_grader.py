from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from grading.services import grader_train


class Command(BaseCommand):
    help = (
        "Fit the offer-acceptance model on offers with a known outcome (time-ordered validation). "
        "It is used only if it beats the rules-only baseline on log loss and Brier score; "
        "otherwise the rules decide and this says why."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--min-outcomes", type=int, default=None, help="default: GRADING_MIN_OUTCOMES (50)")

    def handle(self, *args: Any, min_outcomes: int | None = None, **options: Any) -> None:
        row = grader_train(min_outcomes=min_outcomes)
        verdict = (
            "ADOPTED: its chance of acceptance is shown and feeds the score"
            if row.adopted
            else "NOT USED: the rules decide"
        )
        self.stdout.write(f"grader v{row.id}: {verdict}")
        self.stdout.write(f"  {row.n_outcomes} outcomes ({row.synthetic_outcomes} synthetic); {row.reason}")
        if row.n_train:
            self.stdout.write(
                f"  trained on {row.n_train} offers decided up to {row.train_until:%Y-%m-%d}, "
                f"validated on the {row.n_valid} decided from {row.valid_from:%Y-%m-%d}"
            )
