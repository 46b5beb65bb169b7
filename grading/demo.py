"""Demo data for `make run`: a synthetic offer history and a grader trained on it (marked synthetic)."""

from __future__ import annotations

from typing import TextIO

from grading.services import grader_train
from grading.synthetic import offer_history_exists, offer_history_generate


def seed(stdout: TextIO) -> None:
    if offer_history_exists():
        return
    made = offer_history_generate()
    row = grader_train()
    state = "in use" if row.adopted else "not used (the rules decide)"
    stdout.write(f"Grading: {made} SYNTHETIC past offers; grader v{row.id} {state}: {row.reason}")
