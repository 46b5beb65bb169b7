from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from valuation.services import TrainingError, model_train


class Command(BaseCommand):
    help = "Train the valuation model on every sale in the database and make it the active version."

    def handle(self, *args, **options) -> None:
        try:
            version = model_train(progress=self.stdout.write)
        except TrainingError as exc:
            raise CommandError(str(exc)) from None
        m = version.metrics
        self.stdout.write(
            f"model v{version.id}: {version.n_train} sales {version.trained_from}..{version.trained_to}, "
            f"{version.training_seconds:.1f}s; calibration months: median abs. error {m['median_ape']:.1%}, "
            f"within 10% {m['within_10']:.1%}, COD {m['cod']:.1f}"
        )
