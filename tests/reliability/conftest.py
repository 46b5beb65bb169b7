"""Fixtures of the reliability suite: the leads tests' form key and staff, plus the fault harness."""

from __future__ import annotations

from tests.leads.conftest import acquisitions, form_key  # noqa: F401 - fixtures shared with the leads tests
