"""Walk-forward evaluation: for each month, train on earlier sales only and value that month's sales.

Each sale is valued as of its own sale date with comps strictly before it; the model, the price
index and the calibration see only sales before the month starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.neighbors import BallTree

from valuation import core


@dataclass
class MonthResult:
    month: str
    n: int
    valued: int
    metrics: dict[str, float]


def walk_forward(
    sales: core.SaleArrays,
    months: list[str],
    model_params: core.ModelParams | None = None,
    comp_params: core.CompParams | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, float], list[MonthResult], int]:
    """Returns (overall metrics, per-month results, sales skipped as insufficient data)."""
    actual_all, est_all, low_all, high_all = [], [], [], []
    results: list[MonthResult] = []
    skipped = 0
    for month in months:
        start = core.to_day(np.datetime64(month, "M").astype("datetime64[D]"))
        end = core.to_day((np.datetime64(month, "M") + 1).astype("datetime64[D]"))
        train = sales.take(sales.day < start)
        target_idx = np.flatnonzero((sales.day >= start) & (sales.day < end))
        model = core.fit_valuation_model(train, model_params, comp_params)
        # Comps may be any sale strictly before the one being valued, including earlier sales of
        # the same month (they were known by then); the model only knows sales before the month.
        known = sales.take(sales.day < end)
        residual = model.residuals(known)
        coords = np.radians(np.column_stack([known.lat, known.lon]))
        tree = BallTree(coords, metric="haversine")
        subjects = sales.take(target_idx)
        base = model.predict_log(subjects)
        near_all = tree.query_radius(
            np.radians(np.column_stack([subjects.lat, subjects.lon])),
            r=core.COMP_RADIUS_MILES / core.EARTH_RADIUS_MILES,
        )
        a, e, lo, hi = [], [], [], []
        for j in range(len(target_idx)):
            near = near_all[j]
            near = near[known.day[near] < subjects.day[j]]
            cand = known.take(near)
            subject = subjects.take(slice(j, j + 1))
            weights, dist = core.comp_weights(subject, cand, int(subject.day[0]), model.comp_params)
            idx = core.select_comps(weights)
            if len(idx) < core.COMP_MIN:
                skipped += 1
                continue
            corr = core.local_correction(residual[near][idx], weights[idx], model.comp_params)
            est = core.finish_estimate(
                model,
                float(base[j]),
                corr,
                float(np.sum(weights[idx])),
                core.Comps(idx, weights[idx], dist[idx], residual[near][idx], float(np.sum(weights[idx]))),
            )
            a.append(subjects.price[j])
            e.append(est.estimate)
            lo.append(est.low)
            hi.append(est.high)
        m = core.accuracy_metrics(np.array(a), np.array(e), np.array(lo), np.array(hi))
        results.append(MonthResult(month, len(target_idx), len(a), m))
        if progress:
            progress(
                f"{month}: {len(a)}/{len(target_idx)} valued, median APE {m['median_ape']:.1%}, "
                f"within 10% {m['within_10']:.1%}, inside range {m['inside_range']:.1%}, ratio {m['median_ratio']:.3f}"
            )
        actual_all += a
        est_all += e
        low_all += lo
        high_all += hi
    overall = core.accuracy_metrics(np.array(actual_all), np.array(est_all), np.array(low_all), np.array(high_all))
    return overall, results, skipped
