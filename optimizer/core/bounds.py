"""Upper bounds of the sale and purchase variables from the blocks (restrictions, wash sales...).

A lot whose sale is blocked gets ``xu_j = 0``; a pair whose purchase is blocked gets ``bu_k = 0``.
``lift`` removes blocks by reason (``no_sell``, ``no_buy``, ``wash_sale``, ``near_long_term``,
``no_short_term_gains``, ``mode``), optionally only for one symbol (``"no_sell:AAPL"``); this is how
the binding-constraint facts and the infeasibility diagnosis ask "what if this rule were lifted".
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from optimizer.core.model import ProblemData

BUY_CAP = 1.0  # a purchase can never exceed the household value


def _lifted(reasons: list[str], symbol: str, lift: set[str]) -> bool:
    return all(r in lift or f"{r}:{symbol}" in lift for r in reasons)


def base_bounds(pd: ProblemData, lift: Iterable[str] = ()) -> tuple[np.ndarray, np.ndarray]:
    """``(xu, bu)`` with every block applied except the lifted ones."""
    lift_set = set(lift)
    syms = [x.symbol for x in pd.snapshot.securities]
    xu = pd.lot_u.copy()
    for j, reasons in pd.sell_block.items():
        if not _lifted(reasons, syms[pd.lot_sec[j]], lift_set):
            xu[j] = 0.0
    bu = np.full(pd.P, BUY_CAP)
    for k, reasons in pd.buy_block.items():
        if not _lifted(reasons, syms[pd.pair_sec[k]], lift_set):
            bu[k] = 0.0
    return xu, bu


def block_reasons(pd: ProblemData) -> list[str]:
    """The block reasons present in this run (sorted)."""
    out: set[str] = set()
    for reasons in pd.sell_block.values():
        out.update(reasons)
    for reasons in pd.buy_block.values():
        out.update(reasons)
    return sorted(out)
