"""The valuation method in plain numpy + scikit-learn (no Django here).

One method, used the same way by the API/lead engine (candidates from the database), by training
(`fit_valuation_model`) and by the walk-forward evaluation (candidates from a BallTree over the CSV):

1. A monthly price index from the sales themselves (hedonic time-dummy regression, log price on
   month dummies + location cells + facts), so every price can be moved to any date.
2. A learned hedonic model (HistGradientBoostingRegressor) of the index-deflated log price (its
   median: absolute-error loss), and
   a second one without the facts a lead never gives (grade, waterfront, remodel)
   for lead-facts subjects.
3. Comparable sales strictly before the as-of date, weighted by distance, size, age, recency and
   type; an earlier sale of the same parcel (by parcel id, or the same point and size) weighs most
   and counts for 6 years. Each comp says how far the market paid above or below the model for
   that house; the shrunk weighted mean of those residuals (each clipped to +-0.2) corrects the
   model locally:
   estimate = model(subject) x exp(local correction) x index(as_of).
4. An honest ~80% range: the 10th/90th percentiles of the log errors the whole method made on the
   last months before the training cut-off (walk-forward, a model fitted without them), bucketed
   by how much comp support the estimate has. `confidence` is the share of those past estimates
   with the same support that landed within 10% of the price.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

# One OpenMP thread for the gradient boosting in every process that values (web, worker, commands):
# on a busy machine (web, workers and other jobs sharing two cores) the default thread per core
# spin-waits against the other processes. Measured training on 600 sales at load 10: 106 s with
# the default, 0.6 s with one thread. Set once per process (a per-call limit costs ~1 ms).
threadpool_limits(limits=1, user_api="openmp")

EARTH_RADIUS_MILES = 3958.8
LAT0, LON0 = 47.6, -122.33  # only a local origin for the rotated-coordinate features
COS_LAT0 = math.cos(math.radians(LAT0))

# Comps: where and how far back we look, and how many we need before we answer at all.
COMP_RADIUS_MILES = 1.0
COMP_WINDOW_DAYS = 730
COMP_MIN = 3
COMP_MAX = 10
SAME_PARCEL_MILES = 0.01  # ~16 m: the same point on the map (repeat sale of the parcel)


@dataclass(frozen=True)
class CompParams:
    distance_miles: float = 0.25
    size_log: float = 0.2
    age_years: float = 25.0
    months: float = 8.0
    other_type: float = 0.3
    same_parcel_boost: float = 12.0
    # An earlier sale of the house itself counts for 6 years (most repeat sales are 1-5 years apart)
    # and loses weight with time more slowly than a neighbour's: it is the same house.
    parcel_window_days: int = 2190
    parcel_months: float = 36.0
    shrink: float = 0.8  # prior weight of "no correction" in the shrunk mean
    # A comp moves the estimate by at most this much (log): a sale 22% or more off the model is
    # more likely unusual (condition, terms) than a sign of the neighbourhood's level.
    residual_clip: float = 0.2
    lead_shrink: float | None = None  # the same for lead facts valued by the lead-facts model


@dataclass
class SaleArrays:
    """Columns of sales (or of one subject property). Unknown facts are NaN."""

    ids: np.ndarray  # str
    day: np.ndarray  # int: days since 1970-01-01 (sale date; for a subject: the as-of date)
    price: np.ndarray  # float (NaN for a subject)
    lat: np.ndarray
    lon: np.ndarray
    living: np.ndarray
    lot: np.ndarray
    grade: np.ndarray
    beds: np.ndarray
    baths: np.ndarray
    year_built: np.ndarray
    waterfront: np.ndarray
    townhouse: np.ndarray
    eff_age: np.ndarray  # years since built or last major remodel, at the sale (NaN: unknown)
    area: np.ndarray  # assessor area code (NaN: unknown; imputed from the nearest sale)
    parcel: np.ndarray  # str: the assessor's parcel id (pinx); "" unknown (a lead's subject)

    COLUMNS = (
        "ids",
        "day",
        "price",
        "lat",
        "lon",
        "living",
        "lot",
        "grade",
        "beds",
        "baths",
        "year_built",
        "waterfront",
        "townhouse",
        "eff_age",
        "area",
        "parcel",
    )

    def __len__(self) -> int:
        return len(self.day)

    def take(self, idx: Any) -> SaleArrays:
        return SaleArrays(**{c: getattr(self, c)[idx] for c in self.COLUMNS})

    @classmethod
    def concat(cls, parts: list[SaleArrays]) -> SaleArrays:
        return cls(**{c: np.concatenate([getattr(p, c) for p in parts]) for c in cls.COLUMNS})

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]]) -> SaleArrays:
        """rows: dicts with the column names (day as int days since epoch, or a date)."""
        out: dict[str, np.ndarray] = {}
        for c in cls.COLUMNS:
            values = [r.get(c) for r in rows]
            if c in ("ids", "parcel"):
                out[c] = np.array(["" if v is None else str(v) for v in values], dtype=object)
            elif c == "day":
                out[c] = np.array([to_day(v) for v in values], dtype=np.int64)
            else:
                out[c] = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
        return cls(**out)


def to_day(value: Any) -> int:
    """A date (or an int already) as days since 1970-01-01."""
    if isinstance(value, int | np.integer):
        return int(value)
    return int(np.datetime64(value, "D").astype(np.int64))


def day_to_date(day: int) -> Any:
    return np.datetime64(int(day), "D").astype(object)


def _frac_month(day: np.ndarray) -> np.ndarray:
    d = np.asarray(day).astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    start = m.astype("datetime64[D]")
    length = (m + 1).astype("datetime64[D]") - start
    return m.astype(np.int64) + (d - start).astype(np.int64) / length.astype(np.int64)


def _year(day: np.ndarray) -> np.ndarray:
    return np.asarray(day).astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def haversine_miles(lat1: Any, lon1: Any, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_MILES * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


# --- 1. Price index -------------------------------------------------------------------------------


@dataclass
class PriceIndex:
    """Monthly log price index; `at(day)` interpolates and extrapolates a damped recent trend."""

    first_month: int  # months since 1970-01
    log_index: np.ndarray  # one per month, 0 at the first month
    slope: float  # log change per month at the end (from the last months' trend)
    damping: float = 0.5
    max_extrapolation_months: float = 6.0  # beyond that the index stays flat: no guessing a trend

    @property
    def last_month(self) -> int:
        return self.first_month + len(self.log_index) - 1

    def at(self, day: Any) -> np.ndarray:
        fm = _frac_month(np.atleast_1d(day)) - 0.5  # month values sit at mid-month
        x = np.arange(len(self.log_index)) + self.first_month
        inside = np.interp(fm, x, self.log_index)
        beyond = fm - self.last_month
        tail = self.log_index[-1] + self.slope * self.damping * np.clip(beyond, 0, self.max_extrapolation_months)
        return np.where(beyond > 0, tail, inside)


def fit_price_index(sales: SaleArrays, cell_deg: float = 0.02) -> PriceIndex:
    """Hedonic time-dummy regression: log price ~ month + location cell + facts (least squares)."""
    month = sales.day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    first, last = int(month.min()), int(month.max())
    n_months = last - first + 1
    cells = np.floor(sales.lat / cell_deg).astype(np.int64) * 10_000 + np.floor(sales.lon / cell_deg).astype(np.int64)
    _, cell_idx = np.unique(cells, return_inverse=True)
    n_cells = int(cell_idx.max()) + 1
    age = _year(sales.day) - sales.year_built
    facts = np.column_stack(
        [
            np.log(sales.living),
            np.log(np.nan_to_num(sales.lot, nan=5000.0)),
            np.nan_to_num(sales.grade, nan=7.0),
            np.nan_to_num(age, nan=60.0) / 100,
            (np.nan_to_num(age, nan=60.0) / 100) ** 2,
            np.nan_to_num(sales.beds, nan=3.0),
            np.nan_to_num(sales.baths, nan=2.0),
            np.nan_to_num(sales.waterfront, nan=0.0),
            np.nan_to_num(sales.townhouse, nan=0.0),
        ]
    )
    n = len(sales)
    x = np.zeros((n, n_months + n_cells + facts.shape[1]))
    x[np.arange(n), month - first] = 1.0  # month dummies (no intercept: they carry it)
    x[np.arange(n), n_months + cell_idx] = 1.0
    x[:, n_months + n_cells :] = facts
    # Drop the first cell (collinear with the month dummies) and add a tiny ridge for empty months.
    keep = np.ones(x.shape[1], dtype=bool)
    keep[n_months] = False
    x = x[:, keep]
    y = np.log(sales.price)
    ridge = 1e-3
    xtx = x.T @ x + ridge * np.eye(x.shape[1])
    coef = np.linalg.solve(xtx, x.T @ y)
    months = coef[:n_months]
    counts = np.bincount(month - first, minlength=n_months)
    # Months without sales take their neighbours' value.
    have = counts > 0
    months = np.interp(np.arange(n_months), np.flatnonzero(have), months[have])
    smooth = _smooth(months, counts)
    tail = min(6, n_months)
    slope = float(np.polyfit(np.arange(tail), smooth[-tail:], 1)[0]) if tail >= 3 else 0.0
    return PriceIndex(first_month=first, log_index=smooth - smooth[0], slope=slope)


def _smooth(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Count-weighted local linear smoothing over +-2 months (no lag at the ends, unlike a moving mean)."""
    n = len(values)
    out = np.empty(n)
    for i in range(n):
        lo, hi = max(0, i - 2), min(n, i + 3)
        xs = np.arange(lo, hi) - i
        w = np.maximum(counts[lo:hi], 1).astype(float)
        if hi - lo >= 3:
            a = np.vstack([np.ones_like(xs), xs]).T * np.sqrt(w)[:, None]
            beta = np.linalg.lstsq(a, values[lo:hi] * np.sqrt(w), rcond=None)[0]
            out[i] = beta[0]
        else:
            out[i] = np.average(values[lo:hi], weights=w)
    return out


# --- 2. Learned model -----------------------------------------------------------------------------

FEATURE_NAMES = (
    "lat",
    "lon",
    "rot30",
    "rot60",
    "rot120",
    "rot150",
    "log_living",
    "log_lot",
    "grade",
    "beds",
    "baths",
    "age",
    "waterfront",
    "townhouse",
)


def feature_matrix(s: SaleArrays, params: ModelParams, lead: bool = False) -> np.ndarray:
    """Model features of each row at its own `day` (age is age at that day). `extra_facts`: also the
    years a major remodel took off the house's age and the assessor area.
    `lead`: for the lead-facts model, without the facts a lead never gives (grade, waterfront, remodel)."""
    x = (s.lon - LON0) * COS_LAT0 * 69.0
    y = (s.lat - LAT0) * 69.0
    rots = [x * math.cos(math.radians(t)) + y * math.sin(math.radians(t)) for t in (30, 60, 120, 150)]
    age = _year(s.day) - s.year_built
    extra = []
    if getattr(params, "extra_facts", False):
        extra = [s.area] if lead else [age - s.eff_age, s.area]
    assessor_only = [] if lead else [s.grade, s.waterfront]
    return np.column_stack(
        [
            *extra,
            s.lat,
            s.lon,
            *rots,
            np.log(s.living),
            np.log(s.lot),
            *assessor_only,
            s.beds,
            s.baths,
            age,
            s.townhouse,
        ]
    )


@dataclass(frozen=True)
class ModelParams:
    max_iter: int = 400
    learning_rate: float = 0.06
    max_leaf_nodes: int = 63
    min_samples_leaf: int = 20
    l2_regularization: float = 1.0
    calibration_days: int = 91
    extra_facts: bool = True
    lead_model: bool = True
    # The median of the log price of a house like this one, not the mean: sales far from the market
    # (between relatives, distressed, bought for the lot) pull a least-squares model; walk-forward
    # over March, June and September 2015 this took the median error from 8.37% to 8.26% with
    # full facts and from 9.19% to 8.94% with lead facts.
    loss: str = "absolute_error"


def fit_hedonic(
    sales: SaleArrays, index: PriceIndex, params: ModelParams, seed: int = 0, lead: bool = False
) -> HistGradientBoostingRegressor:
    target = np.log(sales.price) - index.at(sales.day)
    model = HistGradientBoostingRegressor(
        loss=params.loss,
        max_iter=params.max_iter,
        learning_rate=params.learning_rate,
        max_leaf_nodes=params.max_leaf_nodes,
        min_samples_leaf=params.min_samples_leaf,
        l2_regularization=params.l2_regularization,
        early_stopping=False,
        categorical_features=None,
        random_state=seed,
    )
    model.fit(feature_matrix(sales, params, lead), target)
    return model


# --- 3. Comps and the combined estimate -----------------------------------------------------------


@dataclass
class Comps:
    idx: np.ndarray  # positions in the candidate arrays, best first
    weight: np.ndarray
    distance: np.ndarray
    residual: np.ndarray  # log(price) - index(day) - model(comp)
    support: float  # sum of weights: how much comp evidence there is


def comp_weights(subject: SaleArrays, cand: SaleArrays, as_of: int, p: CompParams) -> tuple[np.ndarray, np.ndarray]:
    """Similarity weight and distance of every candidate (0 weight: not a comp)."""
    dist = haversine_miles(subject.lat[0], subject.lon[0], cand.lat, cand.lon)
    age_days = as_of - cand.day
    dsize = np.abs(np.log(cand.living / subject.living[0]))
    same_parcel = same_parcel_mask(subject, cand, dist, dsize)
    window = np.where(same_parcel, p.parcel_window_days, COMP_WINDOW_DAYS)
    eligible = (age_days > 0) & (age_days <= window) & (dist <= COMP_RADIUS_MILES)
    dyear = np.abs(cand.year_built - subject.year_built[0])
    dyear = np.where(np.isnan(dyear), 0.0, dyear)
    other_type = (cand.townhouse != subject.townhouse[0]) & ~np.isnan(subject.townhouse[0])
    months = np.where(same_parcel, p.parcel_months, p.months)
    w = np.exp(-dist / p.distance_miles - dsize / p.size_log - dyear / p.age_years - age_days / (30.44 * months))
    w *= np.where(other_type, p.other_type, 1.0)
    w = np.where(same_parcel, w * p.same_parcel_boost, w)
    return np.where(eligible, w, 0.0), dist


def same_parcel_mask(subject: SaleArrays, cand: SaleArrays, dist: np.ndarray, dsize: np.ndarray) -> np.ndarray:
    """Which candidates are earlier sales of the subject's own parcel (or its twin: a townhouse of
    the same size at the same point): the same parcel id when the subject has one (a recorded
    sale), or a sale at the same point with the same living area (all a lead can offer)."""
    same_point = (dist <= SAME_PARCEL_MILES) & (dsize <= 0.05)
    if subject.parcel[0]:
        return same_point | (cand.parcel == subject.parcel[0])
    return same_point


def clipped(residual: np.ndarray, p: CompParams) -> np.ndarray:
    """Comp residuals as they enter the correction (see `CompParams.residual_clip`)."""
    clip = getattr(p, "residual_clip", None)  # None on models trained before it existed
    return residual if clip is None else np.clip(residual, -clip, clip)


def select_comps(weights: np.ndarray, k: int = COMP_MAX) -> np.ndarray:
    nz = np.flatnonzero(weights > 0)
    if len(nz) > k:
        nz = nz[np.argpartition(-weights[nz], k - 1)[:k]]
    return nz[np.argsort(-weights[nz], kind="stable")]


# --- Facts a lead does not give ------------------------------------------------------------------

IMPUTE_NEIGHBOURS = 7
# column -> rounding of the imputed value
IMPUTABLE = {
    "grade": 1.0,
    "lot": 1.0,
    "year_built": 1.0,
    "beds": 1.0,
    "baths": 0.25,
    "townhouse": 1.0,
    "area": 1.0,
}


def impute_subject(subject: SaleArrays, cand: SaleArrays) -> tuple[SaleArrays, dict[str, float]]:
    """Fill a subject's unknown facts (NaN) with the median of its nearest similar-sized past sales
    (distance in quarter miles plus size difference in 20% steps). Returns the filled row and what
    was filled. The API, the leads and the evaluation all impute through this one function."""
    missing = [c for c in IMPUTABLE if np.isnan(getattr(subject, c)[0])]
    if not missing or len(cand) == 0:
        return subject, {}
    dist = haversine_miles(subject.lat[0], subject.lon[0], cand.lat, cand.lon)
    score = dist / 0.25 + np.abs(np.log(cand.living / subject.living[0])) / 0.2
    near = np.argsort(score)[:IMPUTE_NEIGHBOURS]
    filled = subject.take(slice(None))
    imputed: dict[str, float] = {}
    for column in missing:
        if column == "area":
            nearest = int(np.argmin(dist))
            if not np.isnan(cand.area[nearest]):
                setattr(filled, column, np.array([cand.area[nearest]]))
                imputed[column] = float(cand.area[nearest])
            continue
        values = getattr(cand, column)[near]
        values = values[~np.isnan(values)]
        if len(values) == 0:
            continue
        step = IMPUTABLE[column]
        guess = float(np.round(np.median(values) / step) * step)
        setattr(filled, column, np.array([guess]))
        imputed[column] = guess
    return filled, imputed


def lead_facts_mask(sales: SaleArrays, seed: int = 2015) -> SaleArrays:
    """The facts a lead really gives, for measuring: never the assessor's grade or waterfront; the
    lot size unknown for 30% and the year built for 15% (a fixed seeded random mask)."""
    rng = np.random.default_rng(seed)
    n = len(sales)
    masked = sales.take(slice(None))
    masked.grade = np.full(n, np.nan)
    masked.waterfront = np.zeros(n)  # unknown is valued as not waterfront, as the engine does
    masked.eff_age = np.full(n, np.nan)  # a form does not ask when the house was last remodelled
    masked.lot = np.where(rng.random(n) < 0.30, np.nan, sales.lot)
    masked.year_built = np.where(rng.random(n) < 0.15, np.nan, sales.year_built)
    masked.area = np.full(n, np.nan)  # imputed from the nearest sale: the assessor's areas are places
    masked.parcel = np.full(n, "", dtype=object)  # a lead gives an address, not the parcel id
    return masked


# --- 4. Calibrated ranges -------------------------------------------------------------------------


@dataclass
class Calibration:
    bias: float  # median log error of the method on the calibration months (added to estimates)
    edges: np.ndarray  # support bucket edges
    q_low: np.ndarray  # per bucket: 10th percentile of log error after bias
    q_high: np.ndarray  # per bucket: 90th percentile
    within10: np.ndarray  # per bucket: share of estimates within 10%
    n: int
    metrics: dict[str, float] = field(default_factory=dict)

    def bucket(self, support: float) -> int:
        return int(np.searchsorted(self.edges, support, side="right"))


def fit_calibration(log_error: np.ndarray, support: np.ndarray, n_buckets: int = 4) -> Calibration:
    bias = float(np.median(log_error))
    e = log_error - bias
    edges = np.quantile(support, np.linspace(0, 1, n_buckets + 1)[1:-1]) if len(support) >= 40 else np.array([])
    b = np.searchsorted(edges, support, side="right")
    q_low, q_high, within = [], [], []
    for i in range(len(edges) + 1):
        eb = e[b == i]
        if len(eb) < 10:
            eb = e
        q_low.append(float(np.quantile(eb, 0.10)))
        q_high.append(float(np.quantile(eb, 0.90)))
        within.append(float(np.mean(np.abs(np.expm1(eb)) <= 0.10)))
    return Calibration(
        bias=bias,
        edges=np.asarray(edges),
        q_low=np.array(q_low),
        q_high=np.array(q_high),
        within10=np.array(within),
        n=len(e),
        metrics=accuracy_metrics(np.exp(log_error - bias), np.ones_like(log_error)),
    )


def accuracy_metrics(actual: np.ndarray, estimate: np.ndarray, low: Any = None, high: Any = None) -> dict[str, float]:
    """The assessor's yardsticks: median APE, shares within 5/10/20%, median ratio, COD, PRD, coverage."""
    ratio = estimate / actual
    ape = np.abs(ratio - 1)
    med_ratio = float(np.median(ratio))
    out = {
        "n": len(actual),
        "median_ape": float(np.median(ape)),
        "within_5": float(np.mean(ape <= 0.05)),
        "within_10": float(np.mean(ape <= 0.10)),
        "within_20": float(np.mean(ape <= 0.20)),
        "median_ratio": med_ratio,
        "cod": float(100 * np.mean(np.abs(ratio - med_ratio)) / med_ratio),
        "prd": float(np.mean(ratio) / (np.sum(estimate) / np.sum(actual))),
    }
    if low is not None and high is not None:
        out["inside_range"] = float(np.mean((actual >= low) & (actual <= high)))
    return out


# --- The trained bundle ---------------------------------------------------------------------------


@dataclass
class ValuationModel:
    hedonic: HistGradientBoostingRegressor
    index: PriceIndex
    calibration: Calibration
    comp_params: CompParams
    model_params: ModelParams
    trained_from: int
    trained_to: int
    n_train: int
    # Ranges for a subject placed only at its ZIP code's centroid (measured by valuing the
    # calibration sales from their nearest ZIP centroid). None on models trained before it existed.
    coarse_calibration: Calibration | None = None
    # Ranges for a subject with lead facts (grade and waterfront unknown, imputed): measured with
    # `lead_facts_mask` on the calibration sales. None on older models.
    lead_calibration: Calibration | None = None
    # A model trained without the facts a lead never gives (`feature_matrix(lead=True)`), for lead-facts subjects
    # and their comps. None: lead facts are valued by `hedonic` with the missing facts imputed.
    lead_hedonic: HistGradientBoostingRegressor | None = None

    def uses_lead_model(self, lead: bool) -> bool:
        return lead and getattr(self, "lead_hedonic", None) is not None

    def predict_log(self, s: SaleArrays, lead: bool = False) -> np.ndarray:
        """Model value (log, in today's-index terms of each row's own day); `lead`: from the facts a
        lead gives, with the lead-facts model when there is one."""
        mp = self.model_params
        if self.uses_lead_model(lead):
            return self.lead_hedonic.predict(feature_matrix(s, mp, lead=True)) + self.index.at(s.day)
        return self.hedonic.predict(feature_matrix(s, mp)) + self.index.at(s.day)

    def shrink(self, lead: bool = False) -> float:
        """The learned blend of model and comps (see `fit_shrink`) for this kind of subject."""
        if self.uses_lead_model(lead) and self.comp_params.lead_shrink is not None:
            return self.comp_params.lead_shrink
        return self.comp_params.shrink

    def residuals(self, cand: SaleArrays, lead: bool = False) -> np.ndarray:
        return np.log(cand.price) - self.predict_log(cand, lead)


@dataclass
class Estimate:
    estimate: float
    low: float
    high: float
    confidence: float
    model_value: float
    correction: float
    comps: Comps


def estimate_one(
    model: ValuationModel,
    subject: SaleArrays,
    cand: SaleArrays,
    cand_residual: np.ndarray | None = None,
    coarse: bool = False,
    lead_facts: bool = False,
    support_day: int | None = None,
) -> Estimate | None:
    """Value `subject` (one row, day = as-of) from candidate sales. None: too few comps.
    `support_day`: the day the comp support that picks the calibrated range is measured at (default
    the as-of day). A stale valuation measures it where the calibration did, near the newest sale:
    its comps weigh less as of today only because time passed, which the staleness widening
    (`engine.stale_widened`) already counts; measured as of today it could land in a support bucket
    whose measured range is narrower than a fresh valuation's."""
    as_of = int(subject.day[0])
    weights, dist = comp_weights(subject, cand, as_of, model.comp_params)
    idx = select_comps(weights)
    if len(idx) < COMP_MIN:
        return None
    chosen = cand.take(idx)
    residual = cand_residual[idx] if cand_residual is not None else model.residuals(chosen, lead_facts)
    weight = weights[idx]
    correction = float(
        np.sum(weight * clipped(residual, model.comp_params)) / (np.sum(weight) + model.shrink(lead_facts))
    )
    support = float(np.sum(weight))
    if support_day is not None and support_day < as_of:
        earlier = replace(subject, day=np.array([support_day]))
        support = float(np.sum(comp_weights(earlier, chosen, support_day, model.comp_params)[0]))
    base = float(model.predict_log(subject, lead_facts)[0])
    return finish_estimate(
        model,
        base,
        correction,
        support,
        Comps(idx, weights[idx], dist[idx], residual, support),
        coarse=coarse,
        lead_facts=lead_facts,
    )


def calibrated(
    model: ValuationModel, raw_log: float, support: float, coarse: bool = False, lead_facts: bool = False
) -> tuple[float, float, float, float]:
    """(log estimate, log offset of the low end, of the high end, share within 10%) for a raw log
    estimate, from the calibration measured for this kind of subject."""
    cal = model.calibration
    if lead_facts and getattr(model, "lead_calibration", None) is not None:
        cal = model.lead_calibration
    log_est = raw_log + cal.bias
    b = cal.bucket(support)
    q_low, q_high, within10 = float(cal.q_low[b]), float(cal.q_high[b]), float(cal.within10[b])
    coarse_cal = getattr(model, "coarse_calibration", None) if coarse else None
    if coarse_cal is not None:
        # Never narrower or surer than the same estimate with the house's own location: on a small
        # calibration sample the measured coarse quantiles alone could say otherwise by chance.
        c = coarse_cal.bucket(support)
        q_low, q_high = min(q_low, float(coarse_cal.q_low[c])), max(q_high, float(coarse_cal.q_high[c]))
        within10 = min(within10, float(coarse_cal.within10[c]))
    return log_est, q_low, q_high, within10


def finish_estimate(
    model: ValuationModel,
    base: float,
    correction: float,
    support: float,
    comps: Comps,
    coarse: bool = False,
    lead_facts: bool = False,
) -> Estimate:
    """`coarse`: the subject is located only by its ZIP centroid; `lead_facts`: its grade was not
    given (imputed). Each uses the ranges measured for that case."""
    log_est, q_low, q_high, within10 = calibrated(model, base + correction, support, coarse, lead_facts)
    return Estimate(
        estimate=float(np.exp(log_est)),
        low=float(np.exp(log_est + q_low)),
        high=float(np.exp(log_est + q_high)),
        confidence=round(float(within10), 2),
        model_value=float(np.exp(base)),
        correction=correction,
        comps=comps,
    )


def fit_valuation_model(
    sales: SaleArrays,
    model_params: ModelParams | None = None,
    comp_params: CompParams | None = None,
    progress: Any = None,
    zip_centroids: tuple[np.ndarray, np.ndarray] | None = None,
) -> ValuationModel:
    """Train on `sales` (all strictly before whatever will be valued with the result).

    Calibration is walk-forward inside the data: fit on everything before the last
    `calibration_days`, value each sale of those days with comps strictly before it, and keep the
    errors. The shipped model is then refitted on all sales.
    """
    mp = model_params or ModelParams()
    cp = comp_params or CompParams()
    end = int(sales.day.max()) + 1
    cut = end - mp.calibration_days
    early = sales.day < cut
    cal_idx = np.flatnonzero(~early)
    if early.sum() < 200 or len(cal_idx) < 20:
        # Too little history to hold months out: calibrate on the training sales themselves
        # (ranges will be narrow-ish; only happens on tiny data sets such as tests).
        early = np.ones(len(sales), dtype=bool)
        cal_idx = np.arange(len(sales))
    train_a = sales.take(early)
    index_a = fit_price_index(train_a)
    hedonic_a = fit_hedonic(train_a, index_a, mp)
    partial = ValuationModel(
        hedonic_a, index_a, Calibration(0.0, np.array([]), np.zeros(1), np.zeros(1), np.zeros(1), 0), cp, mp, 0, 0, 0
    )
    if mp.lead_model:
        partial.lead_hedonic = fit_hedonic(train_a, index_a, mp, lead=True)
    if progress:
        progress("calibration model fitted")
    # Learn the blend of model and comps on the held-out months, then calibrate with it.
    valued, base_a, weighted_a, support_a = walk_forward_parts(partial, sales, sales.take(cal_idx))
    shrink = fit_shrink(np.log(sales.price[cal_idx][valued]), base_a, weighted_a, support_a)
    cp = replace(cp, shrink=shrink)
    partial.comp_params = cp
    if progress:
        progress(f"learned blend: shrink {shrink:g}")
    log_error = np.log(sales.price[cal_idx][valued]) - (base_a + weighted_a / (support_a + shrink))
    calibration = fit_calibration(log_error, support_a)
    # The same sales valued from the facts a lead gives, then also placed only at their ZIP centroid.
    lead_subjects = lead_facts_mask(sales)
    if mp.lead_model:
        valued, base_a, weighted_a, support_a = walk_forward_parts(
            partial, sales, lead_subjects.take(cal_idx), lead=True
        )
        lead_shrink = fit_shrink(np.log(sales.price[cal_idx][valued]), base_a, weighted_a, support_a)
        cp = replace(cp, lead_shrink=lead_shrink)
        partial.comp_params = cp
    lead_error, lead_support = walk_forward_errors(partial, sales, cal_idx, subjects_from=lead_subjects, lead=True)
    lead_calibration = fit_calibration(lead_error, lead_support) if len(lead_error) >= 20 else None
    coarse_calibration = None
    if zip_centroids is not None:
        moved = lead_subjects.take(slice(None))
        moved.lat, moved.lon = np.asarray(zip_centroids[0], float), np.asarray(zip_centroids[1], float)
        coarse_error, coarse_support = walk_forward_errors(partial, sales, cal_idx, subjects_from=moved, lead=True)
        if len(coarse_error) >= 20:
            coarse_calibration = fit_calibration(coarse_error, coarse_support)
    if progress:
        progress(f"calibrated on {len(log_error)} sales")
    index = fit_price_index(sales)
    hedonic = fit_hedonic(sales, index, mp)
    model = ValuationModel(
        hedonic=hedonic,
        index=index,
        calibration=calibration,
        comp_params=cp,
        model_params=mp,
        trained_from=int(sales.day.min()),
        trained_to=int(sales.day.max()),
        n_train=len(sales),
        coarse_calibration=coarse_calibration,
        lead_calibration=lead_calibration,
    )
    if mp.lead_model:
        model.lead_hedonic = fit_hedonic(sales, index, mp, lead=True)
    return model


def value_walk_forward(
    model: ValuationModel,
    known: SaleArrays,
    subjects: SaleArrays,
    residual: np.ndarray | None = None,
    lead: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions valued, log estimates before calibration, comp support): see `walk_forward_parts`."""
    valued, base, weighted_residual, support = walk_forward_parts(model, known, subjects, residual, lead)
    return valued, base + weighted_residual / (support + model.shrink(lead)), support


def walk_forward_parts(
    model: ValuationModel,
    known: SaleArrays,
    subjects: SaleArrays,
    residual: np.ndarray | None = None,
    lead: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Value each subject at its own `day` with comps from `known` strictly before that day, the
    way the engine values one property: unknown facts imputed from nearby earlier sales, the model
    corrected by the comps. Returns (positions of the subjects valued, their model log values, the
    weighted sum of their comps' residuals, their comp support = sum of weights), so that the blend
    of model and comps (`shrink`) can be chosen afterwards; subjects without enough comps are left out.
    `lead`: the subjects have lead facts (valued, with their comps' residuals, by the lead-facts model)."""
    from sklearn.neighbors import BallTree

    residual = model.residuals(known, lead) if residual is None else residual
    tree = BallTree(np.radians(np.column_stack([known.lat, known.lon])), metric="haversine")
    neighbours = tree.query_radius(
        np.radians(np.column_stack([subjects.lat, subjects.lon])), r=COMP_RADIUS_MILES / EARTH_RADIUS_MILES
    )
    needs_imputing = any(np.isnan(getattr(subjects, c)).any() for c in IMPUTABLE)
    rows, nears = [], []
    for j in range(len(subjects)):
        near = neighbours[j]
        near = near[known.day[near] < subjects.day[j]]
        row = subjects.take(slice(j, j + 1))
        if needs_imputing:
            row, _ = impute_subject(row, known.take(near))
        rows.append(row)
        nears.append(near)
    if not rows:
        return np.array([], dtype=int), np.array([]), np.array([]), np.array([])
    filled = SaleArrays.concat(rows)
    base = model.predict_log(filled, lead)
    valued, bases, weighted, supports = [], [], [], []
    for j, near in enumerate(nears):
        if len(near) < COMP_MIN:
            continue
        weights, _ = comp_weights(rows[j], known.take(near), int(subjects.day[j]), model.comp_params)
        idx = select_comps(weights)
        if len(idx) < COMP_MIN:
            continue
        valued.append(j)
        bases.append(base[j])
        weighted.append(float(np.sum(weights[idx] * clipped(residual[near][idx], model.comp_params))))
        supports.append(float(np.sum(weights[idx])))
    return np.array(valued, dtype=int), np.array(bases), np.array(weighted), np.array(supports)


SHRINK_GRID = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)


def fit_shrink(log_price: np.ndarray, base: np.ndarray, weighted_residual: np.ndarray, support: np.ndarray) -> float:
    """The blend of model and comps, learned: the `shrink` (prior weight of "the model is right")
    whose estimates had the smallest median absolute log error on held-out later sales."""
    if len(log_price) < 20:
        return CompParams().shrink
    errors = [np.median(np.abs(log_price - base - weighted_residual / (support + k))) for k in SHRINK_GRID]
    return float(SHRINK_GRID[int(np.argmin(errors))])


def walk_forward_errors(
    model: ValuationModel,
    sales: SaleArrays,
    targets: np.ndarray,
    subjects_from: SaleArrays | None = None,
    lead: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Log errors (actual vs estimate before calibration) of `sales[targets]`, each valued at its own
    date with comps strictly before it. Targets without enough comps are skipped.

    `subjects_from`: the same rows with other facts (lead facts, coordinates moved to the ZIP
    centroid), used to describe the subjects; comps and prices still come from `sales`."""
    subjects = (sales if subjects_from is None else subjects_from).take(targets)
    valued, raw, support = value_walk_forward(model, sales, subjects, lead=lead)
    return np.log(sales.price[targets][valued]) - raw, support


def arrays_from_records(records: list[dict[str, Any]]) -> SaleArrays:
    """Sale-field dicts (Sale.values() or parsed CSV rows) -> SaleArrays."""
    rows = [
        {
            "ids": r["sale_id"],
            "day": to_day(r["sale_date"]),
            "price": r["price"],
            "lat": r["latitude"],
            "lon": r["longitude"],
            "living": r["living_area_sqft"],
            "lot": r["lot_sqft"],
            "grade": r["bldg_grade"],
            "beds": r["beds"],
            "baths": r["baths"],
            "year_built": r["year_built"],
            "waterfront": float(r["waterfront"]),
            "townhouse": float(r["use_type"] == "townhouse"),
            "eff_age": r.get("eff_age"),
            "area": r.get("area"),
            "parcel": r.get("pinx"),
        }
        for r in records
    ]
    return SaleArrays.from_rows(rows)
