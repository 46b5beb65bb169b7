"""The learned part of grading: the chance that a seller accepts an offer, from our own outcomes.

Plain numpy + scikit-learn (no Django). A calibrated logistic regression on a few features of the
offer and the lead, validated in time order: fitted on the earlier offers, scored on the later
ones, against the rules-only baseline (the same kind of classifier given only the rules' score,
fitted on the same earlier offers). It is adopted only with enough outcomes and when it beats the baseline on BOTH log loss
and Brier score on the later offers (by more than a noise margin); then it is refitted on every
outcome.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

FEATURES = ("offer_to_arv", "gap", "all_in_ratio", "confidence", "offer_to_asking", "has_asking", "urgent")
VALID_SHARE = 0.3
# "Beats" means by more than the noise of a few dozen held-out offers: with outcomes that depend on
# the score alone, a model with extra features wins by up to ~0.008 log loss / ~0.003 Brier by luck.
MIN_GAIN_LOG_LOSS = 0.01
MIN_GAIN_BRIER = 0.003
EPS = 1e-6


@dataclass(frozen=True)
class Example:
    at: dt.datetime  # when the outcome became known: the split is by this time
    grade: str
    score: int  # the rules' score (0-100), all the rules-only baseline sees
    features: dict[str, float]
    accepted: bool


def _baseline_matrix(examples: list[Example]) -> np.ndarray:
    return np.array([[float(e.score)] for e in examples], dtype=float)


@dataclass
class TrainingResult:
    adopted: bool
    reason: str
    n_outcomes: int
    n_train: int = 0
    n_valid: int = 0
    train_until: dt.datetime | None = None
    valid_from: dt.datetime | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    model: Any = None  # the fitted classifier (refitted on every outcome) when adopted


def matrix(rows: list[dict[str, float]]) -> np.ndarray:
    return np.array([[float(row.get(name, 0.0)) for name in FEATURES] for row in rows], dtype=float)


def _classifier() -> CalibratedClassifierCV:
    # Sigmoid calibration: isotonic needs far more outcomes than a small business has.
    return CalibratedClassifierCV(make_pipeline(StandardScaler(), LogisticRegression(C=1.0)), method="sigmoid", cv=3)


def _enough_of_each(y: np.ndarray, n: int = 3) -> bool:
    return int(np.sum(y)) >= n and int(len(y) - np.sum(y)) >= n


def train(examples: list[Example], *, min_outcomes: int, valid_share: float = VALID_SHARE) -> TrainingResult:
    examples = sorted(examples, key=lambda e: e.at)
    n = len(examples)
    if n < min_outcomes:
        return TrainingResult(
            False, f"only {n} offers with a known outcome; the model needs at least {min_outcomes}", n_outcomes=n
        )
    cut = int(round(n * (1 - valid_share)))
    train_rows, valid_rows = examples[:cut], examples[cut:]
    y_train = np.array([e.accepted for e in train_rows], dtype=int)
    y_valid = np.array([e.accepted for e in valid_rows], dtype=int)
    result = TrainingResult(
        False,
        "",
        n_outcomes=n,
        n_train=len(train_rows),
        n_valid=len(valid_rows),
        train_until=train_rows[-1].at,
        valid_from=valid_rows[0].at,
    )
    if not _enough_of_each(y_train) or len(set(y_valid.tolist())) < 2:
        result.reason = "the outcomes are nearly all accepted or all rejected: nothing to learn from yet"
        return result
    model = _classifier().fit(matrix([e.features for e in train_rows]), y_train)
    p_model = np.clip(model.predict_proba(matrix([e.features for e in valid_rows]))[:, 1], EPS, 1 - EPS)
    # The rules-only baseline: the same calibrated classifier, seeing nothing but the rules' score.
    baseline = _classifier().fit(_baseline_matrix(train_rows), y_train)
    p_base = np.clip(baseline.predict_proba(_baseline_matrix(valid_rows))[:, 1], EPS, 1 - EPS)
    result.metrics = {
        "model_log_loss": round(float(log_loss(y_valid, p_model, labels=[0, 1])), 4),
        "baseline_log_loss": round(float(log_loss(y_valid, p_base, labels=[0, 1])), 4),
        "model_brier": round(float(brier_score_loss(y_valid, p_model)), 4),
        "baseline_brier": round(float(brier_score_loss(y_valid, p_base)), 4),
        "valid_accept_rate": round(float(np.mean(y_valid)), 4),
    }
    m = result.metrics
    beats = (
        m["baseline_log_loss"] - m["model_log_loss"] >= MIN_GAIN_LOG_LOSS
        and m["baseline_brier"] - m["model_brier"] >= MIN_GAIN_BRIER
    )
    scores = (
        f"log loss {m['model_log_loss']} vs {m['baseline_log_loss']}, "
        f"Brier {m['model_brier']} vs {m['baseline_brier']} on the {len(valid_rows)} latest offers"
    )
    if not beats:
        result.reason = f"the model does not beat the rules-only baseline ({scores})"
        return result
    y_all = np.array([e.accepted for e in examples], dtype=int)
    result.model = _classifier().fit(matrix([e.features for e in examples]), y_all)
    result.adopted = True
    result.reason = f"beats the rules-only baseline ({scores})"
    return result


@dataclass(frozen=True)
class CompactModel:
    """The fitted calibrated classifier reduced to its numbers: per fold a standardiser, a linear
    score and a sigmoid. Hand-written on purpose: scikit-learn's predict_proba validates its input
    on every call (~15 ms for one row on a busy 2-core box), which the request that grades an offer
    pays; the arithmetic is three dot products. `compact()` checks it reproduces predict_proba."""

    mean: np.ndarray  # (folds, features)
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray  # (folds,)
    a: np.ndarray  # sigmoid calibration: p = 1 / (1 + exp(a * score + b))
    b: np.ndarray

    def predict(self, features: dict[str, float]) -> float:
        x = np.array([float(features.get(name, 0.0)) for name in FEATURES])
        score = np.sum((x - self.mean) / self.scale * self.coef, axis=1) + self.intercept
        return float(np.mean(1.0 / (1.0 + np.exp(self.a * score + self.b))))


def compact(model: CalibratedClassifierCV) -> CompactModel:
    folds = model.calibrated_classifiers_
    scalers = [f.estimator.named_steps["standardscaler"] for f in folds]
    linear = [f.estimator.named_steps["logisticregression"] for f in folds]
    small = CompactModel(
        mean=np.array([s.mean_ for s in scalers]),
        scale=np.array([s.scale_ for s in scalers]),
        coef=np.array([m.coef_[0] for m in linear]),
        intercept=np.array([m.intercept_[0] for m in linear]),
        a=np.array([f.calibrators[0].a_ for f in folds]),
        b=np.array([f.calibrators[0].b_ for f in folds]),
    )
    probe = {name: 0.5 for name in FEATURES}
    if abs(small.predict(probe) - float(model.predict_proba(matrix([probe]))[0, 1])) > 1e-9:
        raise ValueError("the compact grader does not reproduce scikit-learn's predict_proba")
    return small


def predict(model: CompactModel | CalibratedClassifierCV, features: dict[str, float]) -> float:
    if isinstance(model, CompactModel):
        return model.predict(features)
    return float(model.predict_proba(matrix([features]))[0, 1])
