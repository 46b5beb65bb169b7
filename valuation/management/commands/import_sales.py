from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from valuation.csvformat import CsvFormatError
from valuation.services import sales_import


class Command(BaseCommand):
    help = "Import (upsert by sale_id) sales from a CSV in the shared Seattle file's format."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("path")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, path: str, no_progress: bool, **options) -> None:
        bar = tqdm(desc="sales", unit=" rows", disable=no_progress or None, file=self.stderr._out)
        try:
            report = sales_import(path=path, progress=bar.update)
        except (CsvFormatError, FileNotFoundError) as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        for line, error in report.errors:
            self.stderr.write(f"line {line}: {error}")
        self.stdout.write(
            f"{report.rows} rows: {report.created} new, {report.updated} updated, {len(report.errors)} bad rows skipped"
        )
