"""Day partitions of the central log on PostgreSQL (see migration 0003): create ahead, create on
demand, drop whole expired days.

One partition per UTC day, `logs_logentry_pYYYYMMDD` for [day 00:00, next day 00:00), plus
`logs_logentry_default` for anything no day partition covers (so an insert never fails). DDL on a
partitioned table takes a strong lock on the parent for a moment; every statement here runs with a
short lock_timeout and gives up (to be retried on the next run) rather than queue behind a long
search and stall the writers queued behind it.

SQLite has one plain table: every function here is a no-op there (`is_partitioned`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from django.db import DatabaseError, connections, transaction

PARENT = "logs_logentry"
DEFAULT_PARTITION = "logs_logentry_default"
LOCK_TIMEOUT = "2s"
_NAME = re.compile(r"^logs_logentry_p(\d{8})$")

# Days this process knows to have a partition: the writer asks the database only about new days.
_known_days: dict[str, set[date]] = {}


def is_partitioned(using: str = "default") -> bool:
    return connections[using].vendor == "postgresql"


def partition_name(day: date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def partition_days(using: str = "default") -> list[date]:
    """The days that have a partition, oldest first."""
    if not is_partitioned(using):
        return []
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [PARENT],
        )
        names = [row[0] for row in cursor.fetchall()]
    days = []
    for name in names:
        match = _NAME.match(name)
        if match:
            days.append(datetime.strptime(match.group(1), "%Y%m%d").date())
    return sorted(days)


def partitions_ensure(days: Iterable[date], *, using: str = "default") -> list[date]:
    """Create the missing partitions for `days`. Returns the days created. A day whose rows already
    sit in the default partition cannot get its own (PostgreSQL refuses) and stays in the default
    one; so does a day whose DDL could not get its lock in time (the next call retries)."""
    if not is_partitioned(using):
        return []
    known = _known_days.setdefault(using, set())
    wanted = sorted(set(days) - known)
    if not wanted:
        return []
    existing = set(partition_days(using))
    known |= existing
    created = []
    connection = connections[using]
    for day in wanted:
        if day in existing:
            continue
        try:
            with transaction.atomic(using=using), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                cursor.execute(
                    f'CREATE TABLE IF NOT EXISTS "{partition_name(day)}" PARTITION OF {PARENT} '
                    "FOR VALUES FROM (%s) TO (%s)",
                    [day_start(day), day_start(day + timedelta(days=1))],
                )
        except DatabaseError:
            continue  # rows of that day are in the default partition, or the lock was busy
        known.add(day)
        created.append(day)
    return created


def partitions_ensure_around(now: datetime, *, behind_days: int, ahead_days: int, using: str = "default") -> list[date]:
    """Partitions from `behind_days` ago (late entries from outside services) to `ahead_days` ahead."""
    today = now.astimezone(UTC).date()
    return partitions_ensure(
        (today + timedelta(days=offset) for offset in range(-behind_days, ahead_days + 1)), using=using
    )


def partitions_drop_before(cutoff: datetime, *, limit: int, using: str = "default") -> list[date]:
    """Drop up to `limit` partitions whose whole day lies before `cutoff`, oldest first, each in its
    own short transaction. Dropping a table frees its space at once and writes no WAL per row,
    unlike DELETE. Returns the days dropped; a drop that cannot get its lock in time is left for the
    next run."""
    if not is_partitioned(using):
        return []
    connection = connections[using]
    dropped = []
    for day in partition_days(using):
        if len(dropped) >= limit or day_start(day + timedelta(days=1)) > cutoff:
            break
        try:
            with transaction.atomic(using=using), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                cursor.execute(f'DROP TABLE IF EXISTS "{partition_name(day)}"')
        except DatabaseError:
            break
        _known_days.get(using, set()).discard(day)
        dropped.append(day)
    return dropped


def forget_known_days() -> None:
    """Tests drop and recreate tables behind this process's back."""
    _known_days.clear()
