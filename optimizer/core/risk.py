"""Covariance estimation from price history (pandas), with Ledoit-Wolf shrinkage.

``estimate_covariance`` turns a price DataFrame (rows = dates ascending, columns = symbols) into an
annualized covariance of simple returns, shrunk toward a scaled identity with the Ledoit-Wolf
(2004) optimal intensity, so the result is positive definite even with fewer observations than
securities. ``asset_class_covariance`` aggregates it to asset classes
(``Sigma_c = W Sigma W'`` with within-class weights W). ``risk_model_dict`` freezes either into the
snapshot's ``risk_model`` JSON. Units: (fraction of value)^2 per year.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from optimizer.core.blas import one_blas_thread
from optimizer.core.errors import InvalidSnapshot

PERIODS_PER_YEAR = 252


def ledoit_wolf(returns: np.ndarray) -> tuple[np.ndarray, float]:
    """Shrunk covariance ``(1 - delta) S + delta mu I`` of demeaned returns (T x n) and ``delta``.

    ``S`` is the sample covariance (divided by T), ``mu = trace(S)/n``, and ``delta`` the
    Ledoit-Wolf estimate of the optimal intensity, clipped to [0, 1].
    """
    X = returns - returns.mean(axis=0)
    T, n = X.shape
    S = X.T @ X / T
    mu = float(np.trace(S)) / n
    target = mu * np.eye(n)
    d2 = float(((S - target) ** 2).sum())
    b2_bar = float(sum(((np.outer(x, x) - S) ** 2).sum() for x in X)) / T**2
    b2 = min(b2_bar, d2)
    delta = 0.0 if d2 == 0 else b2 / d2
    return (1 - delta) * S + delta * target, delta


@one_blas_thread()
def estimate_covariance(prices: pd.DataFrame, *, min_observations: int = 20) -> pd.DataFrame:
    """Annualized, shrunk covariance of daily simple returns of ``prices`` (labels = columns)."""
    if prices.empty or prices.shape[1] == 0:
        raise InvalidSnapshot("prices", "the price history is empty")
    if prices.isna().any().any():
        bad = [str(c) for c in prices.columns[prices.isna().any()]]
        raise InvalidSnapshot(f"prices.{bad[0]}", "has missing prices")
    if (prices <= 0).any().any():
        bad = [str(c) for c in prices.columns[(prices <= 0).any()]]
        raise InvalidSnapshot(f"prices.{bad[0]}", "prices must be > 0")
    returns = prices.sort_index().pct_change().iloc[1:]
    if len(returns) < min_observations:
        raise InvalidSnapshot(
            "prices", f"needs at least {min_observations + 1} dates, got {len(prices)}"
        )
    shrunk, _ = ledoit_wolf(returns.to_numpy(dtype=float))
    sigma = (shrunk + shrunk.T) / 2 * PERIODS_PER_YEAR
    return pd.DataFrame(sigma, index=prices.columns, columns=prices.columns)


def asset_class_covariance(
    sigma: pd.DataFrame, classes: Mapping[str, str], weights: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """Covariance of asset-class returns: ``W Sigma W'``, W = within-class weights (equal by default)."""
    names = sorted(set(classes[s] for s in sigma.index))
    W = np.zeros((len(names), len(sigma.index)))
    for j, sym in enumerate(sigma.index):
        W[names.index(classes[sym]), j] = 1.0 if weights is None else float(weights.get(sym, 0.0))
    totals = W.sum(axis=1, keepdims=True)
    W = np.divide(W, totals, out=np.zeros_like(W), where=totals > 0)
    out = W @ sigma.to_numpy() @ W.T
    return pd.DataFrame((out + out.T) / 2, index=names, columns=names)


def risk_model_dict(sigma: pd.DataFrame, level: str = "security") -> dict[str, Any]:
    """The snapshot's ``risk_model`` section for a covariance DataFrame."""
    return {
        "level": level,
        "labels": [str(x) for x in sigma.index],
        # np.round is what round() does on numpy floats (one call instead of one per entry)
        "covariance": np.round(sigma.to_numpy(dtype=float), 12).tolist(),
    }
