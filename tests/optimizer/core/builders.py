"""Small snapshot builders shared by the optimizer core tests."""

from __future__ import annotations

import copy
from typing import Any

from optimizer.core.snapshot import Snapshot, snapshot_from_dict


def two_security_ira() -> dict[str, Any]:
    """IRA with 100 AAA at $50 and $5,000 cash; target 50/50 AAA/BBB (BBB $25); no costs.

    Hand solution: buy exactly 200 BBB (AAA already at 50%, cash goes to 0).
    """
    return {
        "as_of": "2025-06-30",
        "mode": "rebalance",
        "accounts": [{"id": "IRA1", "tax_treatment": "deferred", "cash": "5000.00"}],
        "securities": [
            {"symbol": "AAA", "asset_class": "equity", "price": "50"},
            {"symbol": "BBB", "asset_class": "bonds", "price": "25"},
        ],
        "lots": [
            {
                "lot_id": "L1",
                "account": "IRA1",
                "symbol": "AAA",
                "quantity": "100",
                "cost_basis": "4000",
                "acquired": "2020-01-02",
            }
        ],
        "targets": {"securities": {"AAA": "0.5", "BBB": "0.5"}},
        "risk_model": {
            "level": "security",
            "labels": ["AAA", "BBB"],
            "covariance": [[0.04, 0.0], [0.0, 0.01]],
        },
        "tax": {"short_term_rate": "0.37", "long_term_rate": "0.20"},
    }


def loss_only_portfolio() -> dict[str, Any]:
    """Taxable account with NO long-term gains: gains are short term, long-term lots are losses.

    AAPL is heavily overweight with a short-term gain; the new model wants MSFT, VTI and BND.
    """
    lots = [
        ("A1", "AAPL", "400", "56000", "2025-01-15"),  # ST gain (price 190 -> 76,000)
        ("A2", "AAPL", "100", "21000", "2023-03-01"),  # LT loss
        ("M1", "MSFT", "50", "17000", "2025-02-10"),  # ST gain (price 420 -> 21,000)
        ("X1", "XOM", "300", "39000", "2022-05-01"),  # LT loss (price 110 -> 33,000)
        ("X2", "XOM", "100", "12500", "2025-03-01"),  # ST loss
        ("T1", "TSLA", "100", "35000", "2023-01-10"),  # LT loss (price 250 -> 25,000)
        ("T2", "TSLA", "40", "8000", "2025-04-01"),  # ST gain
    ]
    return {
        "as_of": "2025-06-30",
        "mode": "transition",
        "accounts": [{"id": "TX1", "tax_treatment": "taxable", "cash": "2000.00", "owner": "Pat"}],
        "securities": [
            {"symbol": "AAPL", "asset_class": "us_equity", "price": "190"},
            {"symbol": "MSFT", "asset_class": "us_equity", "price": "420"},
            {"symbol": "XOM", "asset_class": "us_equity", "price": "110"},
            {"symbol": "TSLA", "asset_class": "us_equity", "price": "250"},
            {"symbol": "VTI", "asset_class": "us_equity", "price": "280"},
            {"symbol": "BND", "asset_class": "bonds", "price": "72"},
        ],
        "lots": [
            {
                "lot_id": lid,
                "account": "TX1",
                "symbol": sym,
                "quantity": q,
                "cost_basis": basis,
                "acquired": acq,
            }
            for lid, sym, q, basis, acq in lots
        ],
        "targets": {"securities": {"AAPL": "0.05", "MSFT": "0.10", "VTI": "0.55", "BND": "0.28"}},
        "risk_model": {
            "level": "security",
            "labels": ["AAPL", "MSFT", "XOM", "TSLA", "VTI", "BND"],
            "covariance": _cov(),
        },
        "tax": {"short_term_rate": "0.37", "long_term_rate": "0.20"},
        "budgets": {"max_net_realized_gain": "25000.00", "no_short_term_gains": True},
        "costs": {"bps": "2", "ticket_fee": "1.00", "min_trade_value": "100.00"},
        "restrictions": [{"symbol": "AAPL", "no_sell": True, "reason": "client request"}],
        "holding": {"near_long_term_days": 30, "hold_back_near_long_term": True},
    }


def _cov() -> list[list[float]]:
    vols = [0.28, 0.26, 0.25, 0.55, 0.17, 0.06]
    corr = [
        [1.0, 0.7, 0.4, 0.5, 0.8, 0.0],
        [0.7, 1.0, 0.4, 0.5, 0.8, 0.0],
        [0.4, 0.4, 1.0, 0.3, 0.6, 0.1],
        [0.5, 0.5, 0.3, 1.0, 0.6, 0.0],
        [0.8, 0.8, 0.6, 0.6, 1.0, 0.0],
        [0.0, 0.0, 0.1, 0.0, 0.0, 1.0],
    ]
    return [[vols[i] * vols[j] * corr[i][j] for j in range(6)] for i in range(6)]


def build(d: dict[str, Any], **changes: Any) -> Snapshot:
    """Validate a (deep-copied, updated) dict into a snapshot."""
    data = copy.deepcopy(d)
    data.update(changes)
    return snapshot_from_dict(data)
