from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from logs.handler import CentralLogHandler
from logs.models import LogEntry


@pytest.fixture
def make_entry(db) -> Callable[..., LogEntry]:
    def make(message: str = "something happened", *, time: datetime, **fields: Any) -> LogEntry:
        level = fields.pop("level", logging.INFO)
        return LogEntry.objects.create(
            time=time,
            level=level,
            level_name=logging.getLevelName(level),
            service=fields.pop("service", "web"),
            message=message,
            **fields,
        )

    return make


@pytest.fixture
def central_logger(transactional_db, settings) -> Iterator[Callable[..., tuple[logging.Logger, CentralLogHandler]]]:
    """Factory: a logger wired to its own CentralLogHandler (the store switched on for this test)."""
    settings.LOGS_TO_DATABASE = True
    made: list[CentralLogHandler] = []

    def make(**options: Any) -> tuple[logging.Logger, CentralLogHandler]:
        handler = CentralLogHandler(**{"flush_interval": 0.05, "service": "web", **options})
        log = logging.getLogger(f"tests.logs.{uuid.uuid4().hex[:8]}")
        log.propagate = False
        log.setLevel(logging.DEBUG)
        log.addHandler(handler)
        made.append(handler)
        return log, handler

    yield make
    for handler in made:
        handler.stop()  # closes the flusher's connection, or the test database could not be dropped
        handler.close()
