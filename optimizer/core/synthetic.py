"""Seeded, deterministic synthetic snapshots for tests and benchmarks.

``synthetic_snapshot`` builds a household with a factor risk model
(``Sigma = B F B' + diag(spec)``, k factors), a universe of ``n_stocks`` stocks plus
``n_funds`` broad funds (whose loadings are the average stock loading, so a stock basket can
replace them), and ``n_lots`` lots spread over the accounts. In ``transition`` mode the target is
a cap-weighted direct index of all stocks and the funds have target 0 (funds-to-direct-index);
in ``rebalance`` mode the target is the current mix nudged by noise. Cost bases mix gains and
losses, short and long term. The same arguments always give the same snapshot.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from optimizer.core.snapshot import Snapshot, snapshot_from_dict

SECTORS = ("tech", "health", "financials", "industrials", "consumer", "energy")


def synthetic_dict(
    *,
    n_stocks: int = 30,
    n_lots: int = 150,
    n_funds: int = 0,
    accounts: tuple[str, ...] = ("taxable",),
    mode: str = "rebalance",
    seed: int = 0,
    n_factors: int = 8,
    cash_weight: float = 0.02,
    value: float = 1_000_000.0,
    as_of: str = "2025-06-30",
    gain_cap: str | None = None,
    ticket_fee: str = "0",
    bps: str = "2",
    min_trade_value: str = "0",
) -> dict[str, Any]:
    """A synthetic snapshot as a JSON-like dict (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n = n_stocks + n_funds
    symbols = [f"S{i:03d}" for i in range(n_stocks)] + [f"FUND{i}" for i in range(n_funds)]
    classes = [SECTORS[i % len(SECTORS)] for i in range(n_stocks)] + ["fund"] * n_funds
    prices = np.round(rng.uniform(10, 400, n), 2)
    B = rng.normal(0.0, 0.3, (n_stocks, n_factors))
    B[:, 0] = rng.uniform(0.8, 1.2, n_stocks)  # market factor
    if n_funds:
        B = np.vstack([B, np.tile(B.mean(axis=0), (n_funds, 1))])
    F = np.diag(np.concatenate([[0.03], rng.uniform(0.002, 0.01, n_factors - 1)]))
    spec = np.concatenate([rng.uniform(0.01, 0.06, n_stocks), np.full(n_funds, 0.0004)])

    cap = rng.lognormal(0.0, 1.0, n_stocks)
    index_w = cap / cap.sum() * (1 - cash_weight)
    # current holdings: funds (if any) hold most of the value, the rest in a subset of stocks
    if n_funds:
        hold_w = np.concatenate([np.zeros(n_stocks), np.full(n_funds, 1.0 / n_funds)])
        held_stocks = rng.choice(n_stocks, size=max(1, n_stocks // 3), replace=False)
        hold_w[held_stocks] = rng.uniform(0.2, 1.0, len(held_stocks)) * 0.6 / len(held_stocks)
    else:
        hold_w = index_w * rng.lognormal(0.0, 0.5, n_stocks)
    hold_w = hold_w / hold_w.sum() * (1 - cash_weight)
    holders = np.nonzero(hold_w > 0)[0]
    lot_sec = np.concatenate(
        [
            holders,
            rng.choice(
                holders,
                size=max(0, n_lots - len(holders)),
                p=hold_w[holders] / hold_w[holders].sum(),
            ),
        ]
    )[:n_lots]
    acc_ids = [f"ACC{i}" for i in range(len(accounts))]
    lot_acc = rng.integers(0, len(accounts), size=len(lot_sec))
    as_of_d = dt.date.fromisoformat(as_of)
    lots = []
    share = np.zeros(n)
    np.add.at(share, lot_sec, 1.0)
    for j, (i, a) in enumerate(zip(lot_sec, lot_acc, strict=True)):
        mv = value * hold_w[i] / share[i]
        q = max(1, int(mv / prices[i]))
        basis_ratio = float(np.exp(rng.normal(-0.1, 0.35)))
        days = int(rng.integers(5, 1500))
        acquired = as_of_d - dt.timedelta(days=days)
        lots.append(
            {
                "lot_id": f"L{j:05d}",
                "account": acc_ids[a],
                "symbol": symbols[i],
                "quantity": str(q),
                "cost_basis": f"{q * prices[i] * basis_ratio:.2f}",
                "acquired": acquired.isoformat(),
            }
        )
    invested = sum(float(lt["quantity"]) * prices[symbols.index(lt["symbol"])] for lt in lots)
    cash_total = max(value - invested, value * cash_weight)
    acc_objs = [
        {
            "id": acc_ids[a],
            "tax_treatment": accounts[a],
            "cash": f"{cash_total / len(accounts):.2f}",
            "owner": "synthetic",
        }
        for a in range(len(accounts))
    ]
    if mode == "transition":
        target = {symbols[i]: f"{index_w[i]:.6f}" for i in range(n_stocks)}
    else:
        noisy = hold_w * rng.lognormal(0.0, 0.3, n)
        noisy = noisy / noisy.sum() * (1 - cash_weight)
        target = {symbols[i]: f"{noisy[i]:.6f}" for i in range(n) if noisy[i] > 0}
    return {
        "as_of": as_of,
        "mode": mode,
        "household_id": f"SYN{seed}",
        "accounts": acc_objs,
        "securities": [
            {"symbol": symbols[i], "asset_class": classes[i], "price": f"{prices[i]:.2f}"}
            for i in range(n)
        ],
        "lots": lots,
        "targets": {"securities": target},
        "risk_model": {
            "level": "security",
            "labels": symbols,
            "factor_loadings": B.round(6).tolist(),
            "factor_covariance": F.round(8).tolist(),
            "specific_variance": spec.round(8).tolist(),
        },
        "tax": {"short_term_rate": "0.37", "long_term_rate": "0.20"},
        "budgets": {"max_net_realized_gain": gain_cap},
        "costs": {"bps": bps, "ticket_fee": ticket_fee, "min_trade_value": min_trade_value},
    }


def synthetic_snapshot(**kwargs: Any) -> Snapshot:
    """:func:`synthetic_dict` validated into a :class:`Snapshot`."""
    return snapshot_from_dict(synthetic_dict(**kwargs))
