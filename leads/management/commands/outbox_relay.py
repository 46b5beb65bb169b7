from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandParser

from leads.outbox import RELAY_GRACE, outbox_relay


class Command(BaseCommand):
    help = "Publish outbox events still waiting for the broker (what the leads.relay_outbox beat task does)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--grace",
            type=float,
            default=RELAY_GRACE.total_seconds(),
            help="leave events younger than this many seconds to their own request (default %(default)s)",
        )

    def handle(self, *args: object, grace: float, **options: object) -> None:
        published = outbox_relay(grace=timedelta(seconds=grace))
        self.stdout.write(f"published {published} outbox event(s)")
