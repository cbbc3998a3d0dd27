"""Trade-direction fixing (Moehle, Kochenderfer, Boyd and Ang, 2021).

Selling some lots of a security while buying it (or a substantially identical one) is
non-convex to forbid directly, and with losses valued by the tax term the convex problem would
happily "sell the loss lot and buy it back" - a wash sale. Following the paper, a first convex
solve *without* the no-buy-and-sell rule decides each identical group's direction from its net
trade; a second solve with the directions fixed (the other side's bounds set to 0) then decides
the lot-level trades. Directions are per identical group and household-wide, so no account buys a
group another account sells in the same run.

Only parameter values change between the two solves, so the compiled problem is reused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.core.model import ProblemData

SELL, BUY, HOLD = "sell", "buy", "hold"


@dataclass(frozen=True)
class Directions:
    """Direction of every identical group (index as ``ProblemData.groups``)."""

    by_group: tuple[str, ...]

    def bounds(
        self, pd: ProblemData, xu: np.ndarray, bu: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Upper bounds ``(xu, bu)`` with the non-chosen side of every group set to zero."""
        sell = np.array([g == SELL for g in self.by_group], dtype=bool)
        buy = np.array([g == BUY for g in self.by_group], dtype=bool)
        xu2 = np.where(sell[pd.group_of_lot], xu, 0.0) if pd.L else xu.copy()
        bu2 = np.where(buy[pd.group_of_pair], bu, 0.0)
        return xu2, bu2


def group_flows(pd: ProblemData, x: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Household-wide sale and purchase weight of every identical group."""
    G = len(pd.groups)
    sells = np.bincount(pd.group_of_lot, weights=x, minlength=G) if pd.L else np.zeros(G)
    buys = np.bincount(pd.group_of_pair, weights=b, minlength=G)
    return sells, buys


def decide_directions(
    pd: ProblemData, x: np.ndarray, b: np.ndarray, *, hold_below: float
) -> Directions:
    """Direction per group from the relaxed solution: the larger side wins; tiny flows hold.

    ``hold_below`` (weight) is the flow under which a group is not traded at all (half the
    minimum order value keeps the second solve from proposing orders that will be dropped).
    """
    sells, buys = group_flows(pd, x, b)
    out = []
    for s_g, b_g in zip(sells.tolist(), buys.tolist(), strict=True):
        if max(s_g, b_g) < hold_below:
            out.append(HOLD)
        elif s_g >= b_g:
            out.append(SELL)
        else:
            out.append(BUY)
    return Directions(tuple(out))


def flip_ambiguous(pd: ProblemData, x: np.ndarray, b: np.ndarray, dirs: Directions) -> Directions:
    """Fallback: groups the relaxation both bought and sold take the other direction."""
    sells, buys = group_flows(pd, x, b)
    out = list(dirs.by_group)
    for g, (s_g, b_g) in enumerate(zip(sells, buys, strict=True)):
        if s_g > 1e-7 and b_g > 1e-7:
            out[g] = BUY if out[g] == SELL else SELL
    return Directions(tuple(out))
