"""Walk-forward evaluation: for each month, train on earlier sales only and value that month's sales.

Each sale is valued as of its own sale date with comps strictly before it; the model, the price
index and the calibration see only sales before the month starts. The same sales are valued three
ways, side by side:

- `full`: every fact the assessor has (grade, waterfront, lot, year built, ...);
- `lead`: the facts a lead gives (`core.lead_facts_mask`: no grade, no waterfront, lot size
  unknown for 30% and year built for 15%, a fixed seeded mask), the rest imputed from nearby
  earlier sales exactly as the engine does;
- `zip`: lead facts and only the ZIP code's centroid for a location (the sales data has no ZIP,
  so the nearest ZIP centroid stands in for the sale's own), the offline geocoding fallback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from valuation import core

VARIANTS = ("full", "lead", "zip")


@dataclass
class MonthResult:
    month: str
    n: int
    valued: dict[str, int]
    metrics: dict[str, dict[str, float]]


def walk_forward(
    sales: core.SaleArrays,
    months: list[str],
    model_params: core.ModelParams | None = None,
    comp_params: core.CompParams | None = None,
    progress: Callable[[str], None] | None = None,
    zip_centroids: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[dict[str, dict[str, float]], list[MonthResult], dict[str, int]]:
    """Returns (overall metrics per variant, per-month results, sales skipped per variant)."""
    variants = {"full": sales, "lead": core.lead_facts_mask(sales)}
    if zip_centroids is not None:
        moved = variants["lead"].take(slice(None))
        moved.lat, moved.lon = np.asarray(zip_centroids[0], float), np.asarray(zip_centroids[1], float)
        variants["zip"] = moved
    collected: dict[str, list[list[float]]] = {v: [[], [], [], []] for v in variants}
    skipped = dict.fromkeys(variants, 0)
    results: list[MonthResult] = []
    for month in months:
        start = core.to_day(np.datetime64(month, "M").astype("datetime64[D]"))
        end = core.to_day((np.datetime64(month, "M") + 1).astype("datetime64[D]"))
        train = sales.take(sales.day < start)
        target_idx = np.flatnonzero((sales.day >= start) & (sales.day < end))
        train_zip = None
        if zip_centroids is not None:
            train_zip = (zip_centroids[0][sales.day < start], zip_centroids[1][sales.day < start])
        model = core.fit_valuation_model(train, model_params, comp_params, zip_centroids=train_zip)
        # Comps may be any sale strictly before the one being valued, including earlier sales of
        # the same month (they were known by then); the model only knows sales before the month.
        known = sales.take(sales.day < end)
        residuals = {lead: model.residuals(known, lead) for lead in (False, True)}
        month_metrics: dict[str, dict[str, float]] = {}
        valued_counts: dict[str, int] = {}
        for name, described in variants.items():
            subjects = described.take(target_idx)
            lead = name != "full"
            valued, raw, support = core.value_walk_forward(model, known, subjects, residuals[lead], lead)
            skipped[name] += len(target_idx) - len(valued)
            a, e, lo, hi = collected[name]
            month_a, month_e, month_lo, month_hi = [], [], [], []
            for pos, raw_log, sup in zip(valued, raw, support, strict=True):
                log_est, q_low, q_high, _ = core.calibrated(
                    model, float(raw_log), float(sup), coarse=name == "zip", lead_facts=lead
                )
                month_a.append(float(subjects.price[pos]))
                month_e.append(float(np.exp(log_est)))
                month_lo.append(float(np.exp(log_est + q_low)))
                month_hi.append(float(np.exp(log_est + q_high)))
            a += month_a
            e += month_e
            lo += month_lo
            hi += month_hi
            month_metrics[name] = core.accuracy_metrics(
                np.array(month_a), np.array(month_e), np.array(month_lo), np.array(month_hi)
            )
            valued_counts[name] = len(month_a)
        results.append(MonthResult(month, len(target_idx), valued_counts, month_metrics))
        if progress:
            progress(
                f"{month}: {len(target_idx)} sales; "
                + "; ".join(
                    f"{name} median APE {m['median_ape']:.1%}, within 10% {m['within_10']:.1%}, "
                    f"inside range {m['inside_range']:.1%}"
                    for name, m in month_metrics.items()
                )
            )
    overall = {name: core.accuracy_metrics(*(np.array(column) for column in collected[name])) for name in variants}
    return overall, results, skipped
