"""From a continuous solution to an executable trade list.

1. **Round**: sales of a lot round down to whole shares (a loss lot rounds up, capped at the
   lot; a sale within a millionth of the lot sells the exact lot quantity, fractional lots
   included); purchases round down. Accounts that allow fractions use 0.001-share units (the
   finest quantity the custodians take, see docs/exports.md).
2. **Repair**: rounding may break a hard constraint by a share or two (cash after ticket fees,
   a drift band, a gain budget, a max weight); a greedy repair moves whole units to fix it.
3. **Drop**: orders below the minimum trade value, and orders whose removal lowers the exact
   objective (tracking-error benefit smaller than their bps cost plus ticket fee) are removed if
   the result stays feasible; the caller then re-solves with those orders fixed to zero.

Everything here works on share arrays with numpy; the final word belongs to the independent
checker in :mod:`optimizer.core.checker`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from optimizer.core.model import BIG, ProblemData

FRACTION_UNIT = 1e-3  # share unit in accounts that allow fractional shares
_EPS = 1e-9


@dataclass
class Discrete:
    """A candidate trade list: shares sold per lot (L) and shares bought per pair (P)."""

    sell: np.ndarray
    buy: np.ndarray

    def copy(self) -> Discrete:
        return Discrete(self.sell.copy(), self.buy.copy())


class Order(NamedTuple):
    """One ticket: all sales of one security in one account, or one purchase (a named tuple:
    built many times per run, it is quicker to make than a frozen dataclass)."""

    side: str
    pair: int
    lots: tuple[int, ...]
    value: float  # dollars


@dataclass(frozen=True)
class Violation:
    """A hard constraint broken by ``amount`` (weight units) at ``index``."""

    kind: str
    index: int
    amount: float


class Evaluator:
    """Exact objective and hard constraints of a discrete trade list (weights of V)."""

    def __init__(self, pd: ProblemData) -> None:
        self.pd = pd
        self.lp = pd.lot_price()
        self.pp = pd.pair_price()
        self.k_lot = pd.lot_k()
        self.k_pair = pd.pair_k()
        self.gN, self.gS, _ = pd.lot_gain_ratios()
        self.drag_pair = pd.pair_drag()
        self.lot_pair = pd.lot_pair
        self.DA = pd.DA  # pair -> risk label
        self.K = pd.K  # pair -> asset class
        self.dev_of_pair = pd.dev_of_pair  # the risk label of each pair's security
        self.m = pd.D.shape[0]
        # lambda TE^2 on the value that stays invested (see optimizer.core.model)
        lam = pd.settings.risk_aversion * pd.risk_scale
        self.Gt = pd.Gt * math.sqrt(lam)
        self.sig2 = pd.sig**2 * lam
        self.sigma_diag = (self.Gt**2).sum(axis=0) + self.sig2
        self.unit_pair = np.where(pd.fractional[pd.pair_acc], FRACTION_UNIT, 1.0)
        self.unit_lot = np.where(pd.fractional[pd.lot_acc], FRACTION_UNIT, 1.0)
        self.rows = np.nonzero((pd.class_lo > -BIG) | (pd.class_hi < BIG))[0]
        self.class_of_pair = pd.class_of_pair
        self.C = len(pd.classes)
        self.has_bps = float(bool((pd.k_sec > 0).any()))
        # S, A, Ea and Eb map every lot or pair to exactly one row, columns in order: their
        # products are bucket sums, done with bincount in the same order (same floats). The
        # products D A and Mc A keep their sparse form: scipy orders their columns its own way.
        self.has_cash_class = pd.cash_lo > -BIG or pd.cash_hi < BIG
        self.sell_net = 1 - self.k_lot  # cash per unit of sale weight
        self.buy_gross = 1 + self.k_pair  # cash per unit of purchase weight
        self.sell_rate = self.lp * (1 - self.k_lot) / pd.V  # cash weight per share sold
        self.buy_rate = self.pp * (1 + self.k_pair) / pd.V  # cash weight per share bought
        # per-run lookups of the hot loops (Python lists: no numpy scalar per element)
        self._sigma_cols: dict[int, np.ndarray] = {}
        self.pair_acc_l: list[int] = pd.pair_acc.tolist()
        self.pair_sec_l: list[int] = pd.pair_sec.tolist()
        self.class_of_pair_l: list[int] = np.asarray(pd.class_of_pair).tolist()

    # bucket sums (S @ v, A @ v, D A @ v, K @ v, Ea @ v, Eb @ v)

    def to_pairs(self, x: np.ndarray) -> np.ndarray:
        """``S @ x``: lot values summed per (account, security) pair."""
        return np.bincount(self.lot_pair, weights=x, minlength=self.pd.P)

    def to_secs(self, h: np.ndarray) -> np.ndarray:
        """``A @ h``: pair values summed per security."""
        return np.bincount(self.pd.pair_sec, weights=h, minlength=self.pd.n)

    def to_devs(self, h: np.ndarray) -> np.ndarray:
        """``D A @ h``: pair values summed per risk label."""
        return np.asarray(self.DA @ h)

    def to_classes(self, h: np.ndarray) -> np.ndarray:
        """``Mc A @ h``: pair values summed per asset class."""
        return np.asarray(self.K @ h)

    # ------------------------------------------------------------ basic quantities

    def weights(self, dz: Discrete) -> tuple[np.ndarray, np.ndarray]:
        """``(x, b)`` sale and purchase weights."""
        V = self.pd.V
        return dz.sell * self.lp / V, dz.buy * self.pp / V

    def orders(self, dz: Discrete) -> list[Order]:
        """Tickets of the trade list, sells first, in pair order (deterministic)."""
        out: list[Order] = []
        sold = np.nonzero(dz.sell > 0)[0]
        if len(sold):
            pairs = self.lot_pair[sold]
            # shares sold per pair, added lot by lot in lot order
            shares = np.bincount(pairs, weights=dz.sell[sold], minlength=self.pd.P)
            order = np.argsort(pairs, kind="stable")
            keys, starts = np.unique(pairs[order], return_index=True)
            lots = sold[order].tolist()
            ends = [*starts[1:].tolist(), len(lots)]
            values = (shares[keys] * self.pp[keys]).tolist()
            for k, a, e, value in zip(keys.tolist(), starts.tolist(), ends, values, strict=True):
                out.append(Order("sell", k, tuple(lots[a:e]), value))
        bought = np.nonzero(dz.buy > 0)[0]
        values = (dz.buy[bought] * self.pp[bought]).tolist()
        for kb, value in zip(bought.tolist(), values, strict=True):
            out.append(Order("buy", kb, (), value))
        return out

    def tickets_per_account(self, dz: Discrete) -> np.ndarray:
        """Orders per account (whole numbers: any way of counting gives the same floats)."""
        pd = self.pd
        sold = np.zeros(pd.P, dtype=bool)
        sold[self.lot_pair[dz.sell > 0]] = True
        tickets = sold | (dz.buy > 0)
        if pd.n_acc == 1:
            return np.array([float(np.count_nonzero(tickets))])
        return np.bincount(pd.pair_acc, weights=tickets, minlength=pd.n_acc)

    def cash_after(self, dz: Discrete) -> np.ndarray:
        """Cash per account after trades, bps costs and ticket fees (weights)."""
        x, b = self.weights(dz)
        return self._cash(x, b, self.tickets_per_account(dz))

    def _cash(self, x: np.ndarray, b: np.ndarray, tickets: np.ndarray) -> np.ndarray:
        return self._cash_of(self._inflow(x), self._outflow(b), tickets)

    def _inflow(self, x: np.ndarray) -> np.ndarray:
        """Cash from sales per account (weights)."""
        return np.bincount(self.pd.lot_acc, weights=x * self.sell_net, minlength=self.pd.n_acc)

    def _outflow(self, b: np.ndarray) -> np.ndarray:
        """Cash into purchases per account (weights)."""
        return np.bincount(self.pd.pair_acc, weights=b * self.buy_gross, minlength=self.pd.n_acc)

    def _cash_of(self, inflow: np.ndarray, outflow: np.ndarray, tickets: np.ndarray) -> np.ndarray:
        pd = self.pd
        return pd.cash0 + (inflow - outflow) - pd.ticket_fee_w * tickets

    def deviation(self, x: np.ndarray, b: np.ndarray) -> np.ndarray:
        pd = self.pd
        net = b - self.to_pairs(x)
        return self.to_devs(pd.h0 + net) - pd.t_dev_w

    def te2(self, d: np.ndarray) -> float:
        """lambda * TE^2 at deviation ``d``."""
        y = self.Gt @ d
        return float(y @ y + self.sig2 @ (d * d))

    def sigma_d(self, d: np.ndarray) -> np.ndarray:
        """lambda * Sigma @ d."""
        return self.Gt.T @ (self.Gt @ d) + self.sig2 * d

    def tax(self, R: float, R_S: float) -> float:
        """Model tax term (weights) for realized net gain ``R`` and short-term part ``R_S``."""
        pd = self.pd
        st = pd.settings
        R += pd.ytd_s_w + pd.ytd_l_w
        R_S += pd.ytd_s_w
        f = pd.tau_l * R + (pd.tau_s - pd.tau_l) * max(R_S, 0.0)
        kappa = st.loss_value_beyond_offset
        return st.tax_weight * max(f, kappa * f - (1 - kappa) * pd.tau_s * pd.offset_w)

    def tax_fn(self) -> Callable[[float, float], float]:
        """:meth:`tax` as a closure over plain floats (the same operations, for hot loops)."""
        pd = self.pd
        st = pd.settings
        ytd, ytd_s = pd.ytd_s_w + pd.ytd_l_w, pd.ytd_s_w
        tau_l, tau_sl = pd.tau_l, pd.tau_s - pd.tau_l
        kappa = st.loss_value_beyond_offset
        floor_c = (1 - kappa) * pd.tau_s * pd.offset_w
        omega = st.tax_weight

        def tax(R: float, R_S: float) -> float:
            R += ytd
            R_S += ytd_s
            f = tau_l * R + tau_sl * max(R_S, 0.0)
            return omega * max(f, kappa * f - floor_c)

        return tax

    def objective(self, dz: Discrete) -> float:
        """Exact objective J (weights): lambda TE^2 + tax + bps cost + ticket fees + drag."""
        pd = self.pd
        x, b = self.weights(dz)
        d = self.deviation(x, b)
        tickets = float(self.tickets_per_account(dz).sum())
        lin = self.k_lot @ x + self.k_pair @ b + pd.ticket_fee_w * tickets
        drag = self.drag_pair @ (b - self.to_pairs(x))
        return self.te2(d) + self.tax(float(self.gN @ x), float(self.gS @ x)) + lin + drag

    # ------------------------------------------------------------ constraints

    def violations(self, dz: Discrete) -> list[Violation]:
        """Hard constraints broken by the trade list (small safety margins included)."""
        pd = self.pd
        out: list[Violation] = []
        x, b = self.weights(dz)
        tickets = self.tickets_per_account(dz)
        cash = self._cash(x, b, tickets)
        # the checker rounds each order's proportional cost half-up to cents: allow for it
        margin = (0.005 * tickets * self.has_bps - 1e-6) / pd.V
        for a in np.nonzero(cash < pd.floor + margin)[0]:
            out.append(Violation("cash", int(a), float(pd.floor[a] + margin[a] - cash[a])))
        R = float(self.gN @ x)
        if pd.cap_net_w + _EPS * 0.1 < R:
            out.append(Violation("gain_net", 0, R - pd.cap_net_w + 1e-12))
        R_S = float(self.gS @ x)
        if pd.cap_st_w + _EPS * 0.1 < R_S:
            out.append(Violation("gain_st", 0, R_S - pd.cap_st_w + 1e-12))
        net = b - self.to_pairs(x)
        hold = pd.h0 + net
        if len(self.rows):
            cw = self.to_classes(hold)
            for c in self.rows:
                if cw[c] > pd.class_hi_w[c]:
                    out.append(Violation("class_hi", int(c), float(cw[c] - pd.class_hi_w[c])))
                if cw[c] < pd.class_lo_w[c]:
                    out.append(Violation("class_lo", int(c), float(pd.class_lo_w[c] - cw[c])))
        w = self.to_secs(hold)
        for i in np.nonzero(w > pd.mw_sec_w)[0]:
            out.append(Violation("max_weight", int(i), float(w[i] - pd.mw_sec_w[i])))
        if pd.has_pair_max:
            for k in np.nonzero(hold > pd.mw_pair)[0]:
                out.append(Violation("pair_max", int(k), float(hold[k] - pd.mw_pair[k])))
        if self.has_cash_class:
            total = float(cash.sum())
            if total < pd.cash_lo_w:
                out.append(Violation("cash_class_lo", 0, pd.cash_lo_w - total))
            if total > pd.cash_hi_w:
                out.append(Violation("cash_class_hi", 0, total - pd.cash_hi_w))
        return out


# ---------------------------------------------------------------- rounding


def round_solution(ev: Evaluator, x: np.ndarray, b: np.ndarray) -> Discrete:
    """Round a continuous solution to share units (see the module docstring)."""
    pd = ev.pd
    V = pd.V
    s = x * V / ev.lp if pd.L else np.zeros(0)
    q, unit = pd.lot_q, ev.unit_lot
    loss = (pd.lot_g < 0) & pd.lot_taxable
    r = np.where(loss, np.ceil(s / unit - 1e-6) * unit, np.floor(s / unit + 1e-6) * unit) + 0.0
    r = np.where(r >= q - 1e-12, q, r)
    sell = np.where(s <= 1e-9 * np.maximum(q, 1.0), 0.0, np.where(s >= q * (1 - 1e-6) - 1e-9, q, r))
    buy_cont = b * V / ev.pp
    buy = np.floor(buy_cont / ev.unit_pair + 1e-6) * ev.unit_pair
    buy[buy_cont <= 0] = 0.0
    return Discrete(sell, np.maximum(buy, 0.0))


def _units_for(amount_w: float, V: float, price: float, unit: float) -> float:
    return max(1.0, math.ceil(amount_w * V / price / unit - 1e-9)) * unit


def _reduce_buy(ev: Evaluator, dz: Discrete, cands: np.ndarray, amount_w: float) -> bool:
    """Reduce the largest purchase among pairs ``cands`` by enough units to cover ``amount_w``."""
    cands = cands[dz.buy[cands] > 0]
    if not len(cands):
        return False
    vals = dz.buy[cands] * ev.pp[cands]
    k = int(cands[np.argmax(vals)])
    step = _units_for(amount_w, ev.pd.V, ev.pp[k], ev.unit_pair[k])
    dz.buy[k] = max(0.0, dz.buy[k] - step)
    return True


def _increase_buy(
    ev: Evaluator, dz: Discrete, cands: np.ndarray, bu: np.ndarray, amount_w: float
) -> bool:
    cands = cands[bu[cands] > 0]
    if not len(cands):
        return False
    vals = dz.buy[cands] * ev.pp[cands] + 1e-9 * np.arange(len(cands))[::-1]
    k = int(cands[np.argmax(vals)])
    dz.buy[k] += _units_for(amount_w, ev.pd.V, ev.pp[k], ev.unit_pair[k])
    return True


def _reduce_sell(
    ev: Evaluator,
    dz: Discrete,
    cands: np.ndarray,
    amount_w: float,
    *,
    ratio: np.ndarray | None = None,
) -> bool:
    """Reduce the sale of the most gain-heavy lot among ``cands``.

    ``ratio`` (per lot) converts sale weight into the violated quantity (e.g. the gain ratio for
    a gain budget); by default one unit of sale weight fixes one unit of violation.
    """
    cands = cands[dz.sell[cands] > 0]
    if not len(cands):
        return False
    j = int(cands[np.argmax(ev.pd.lot_g[cands])])
    per = 1.0 if ratio is None else max(float(ratio[j]), 1e-12)
    step = _units_for(amount_w / per, ev.pd.V, ev.lp[j], ev.unit_lot[j])
    dz.sell[j] = max(0.0, math.floor((dz.sell[j] - step) / ev.unit_lot[j] + 1e-9) * ev.unit_lot[j])
    return True


def _increase_sell(
    ev: Evaluator,
    dz: Discrete,
    cands: np.ndarray,
    xu: np.ndarray,
    amount_w: float,
    *,
    ratio: np.ndarray | None = None,
) -> bool:
    """Increase the sale of the lowest-gain lot among ``cands`` that may still be sold."""
    pd = ev.pd
    room = (xu[cands] > 0) & (dz.sell[cands] < pd.lot_q[cands] - 1e-12)
    cands = cands[room]
    if not len(cands):
        return False
    j = int(cands[np.argmin(pd.lot_g[cands] + 1e-12 * np.arange(len(cands)))])
    per = 1.0 if ratio is None else max(float(ratio[j]), 1e-12)
    step = _units_for(amount_w / per, pd.V, ev.lp[j], ev.unit_lot[j])
    new = dz.sell[j] + step
    dz.sell[j] = pd.lot_q[j] if new >= pd.lot_q[j] - 1e-12 else new
    return True


def repair(
    ev: Evaluator, dz: Discrete, xu: np.ndarray, bu: np.ndarray, max_steps: int = 400
) -> bool:
    """Greedy unit moves until no hard constraint is violated; True when successful.

    ``xu``/``bu`` are the (direction-fixed) bounds: a lot or pair with a zero bound is never
    increased, so repairs never create a forbidden trade.
    """
    pd = ev.pd
    all_lots = np.arange(pd.L)
    all_pairs = np.arange(pd.P)
    seen: set[bytes] = set()
    for _ in range(max_steps):
        viol = ev.violations(dz)
        if not viol:
            return True
        state = dz.sell.tobytes() + dz.buy.tobytes()
        if state in seen:
            # the greedy moves go round in a cycle (e.g. a class at its upper bound and the cash
            # band at its upper bound, fixed in turn by undoing each other): take the one move
            # that leaves the least violation instead (a repair that cycles can only fail)
            if not _least_violation_move(ev, dz, xu, bu, viol):
                return False
            continue
        seen.add(state)
        v = viol[0]
        ok = False
        if v.kind == "cash":
            pairs = all_pairs[pd.pair_acc == v.index]
            lots = all_lots[pd.lot_acc == v.index]
            ok = _reduce_buy(ev, dz, pairs, v.amount) or _increase_sell(ev, dz, lots, xu, v.amount)
        elif v.kind in ("gain_net", "gain_st"):
            g = ev.gN if v.kind == "gain_net" else ev.gS
            gain_lots = all_lots[g > 0]
            ok = _reduce_sell(ev, dz, gain_lots, v.amount, ratio=g) or _increase_sell(
                ev, dz, all_lots[g < 0], xu, v.amount, ratio=-g
            )
        elif v.kind == "class_hi":
            pairs = all_pairs[ev.class_of_pair == v.index]
            lots = all_lots[ev.class_of_pair[ev.lot_pair] == v.index] if pd.L else all_lots
            ok = _reduce_buy(ev, dz, pairs, v.amount) or _increase_sell(ev, dz, lots, xu, v.amount)
        elif v.kind == "class_lo":
            pairs = all_pairs[ev.class_of_pair == v.index]
            lots = all_lots[ev.class_of_pair[ev.lot_pair] == v.index] if pd.L else all_lots
            ok = _reduce_sell(ev, dz, lots, v.amount) or _increase_buy(ev, dz, pairs, bu, v.amount)
        elif v.kind == "max_weight":
            pairs = all_pairs[pd.pair_sec == v.index]
            lots = all_lots[pd.lot_sec == v.index]
            ok = _reduce_buy(ev, dz, pairs, v.amount) or _increase_sell(ev, dz, lots, xu, v.amount)
        elif v.kind == "pair_max":
            lots = all_lots[ev.lot_pair == v.index]
            ok = _reduce_buy(ev, dz, np.array([v.index]), v.amount) or _increase_sell(
                ev, dz, lots, xu, v.amount
            )
        elif v.kind == "cash_class_lo":
            ok = _reduce_buy(ev, dz, all_pairs, v.amount) or _increase_sell(
                ev, dz, all_lots, xu, v.amount
            )
        elif v.kind == "cash_class_hi":
            ok = _reduce_sell(ev, dz, all_lots, v.amount) or _increase_buy(
                ev, dz, all_pairs, bu, v.amount
            )
        if not ok:
            return False
    return not ev.violations(dz)


def _least_violation_move(
    ev: Evaluator, dz: Discrete, xu: np.ndarray, bu: np.ndarray, viol: list[Violation]
) -> bool:
    """Apply the single move on an existing order (one lot's sale or one purchase, up or down
    by one unit or by the units that cover the first violation) that leaves the smallest total
    violation, ties broken by the exact objective, then by order; False when no move reduces
    it. Only orders already in the list are moved: a new ticket is never opened here, and the
    search stays as small as the trade list."""
    pd = ev.pd
    V = pd.V
    traded_pairs = set(ev.lot_pair[dz.sell > 0].tolist())
    amount = viol[0].amount
    current = sum(v.amount for v in viol)
    best: tuple[float, float, int] | None = None
    best_dz: Discrete | None = None
    n = 0

    def consider(cand: Discrete) -> None:
        nonlocal best, best_dz, n
        n += 1
        left = ev.violations(cand)
        total = sum(v.amount for v in left)
        if total >= current:
            return
        key = (total, ev.objective(cand), n)
        if best is None or key < best:
            best, best_dz = key, cand

    for j in range(pd.L):
        if int(ev.lot_pair[j]) not in traded_pairs:
            continue
        unit, price, q = float(ev.unit_lot[j]), float(ev.lp[j]), float(pd.lot_q[j])
        steps = sorted({unit, _units_for(amount, V, price, unit)})
        for step in steps:
            if dz.sell[j] > 0:
                cand = dz.copy()
                cand.sell[j] = max(0.0, math.floor((dz.sell[j] - step) / unit + 1e-9) * unit)
                consider(cand)
            if xu[j] > 0 and dz.sell[j] < q - 1e-12:
                cand = dz.copy()
                new = dz.sell[j] + step
                cand.sell[j] = q if new >= q - 1e-12 else new
                consider(cand)
    for k in np.nonzero(dz.buy > 0)[0].tolist():
        unit, price = float(ev.unit_pair[k]), float(ev.pp[k])
        steps = sorted({unit, _units_for(amount, V, price, unit)})
        for step in steps:
            cand = dz.copy()
            cand.buy[k] = max(0.0, dz.buy[k] - step)
            consider(cand)
            if bu[k] > 0:
                cand = dz.copy()
                cand.buy[k] = dz.buy[k] + step
                consider(cand)
    if best_dz is None:
        return False
    dz.sell[:] = best_dz.sell
    dz.buy[:] = best_dz.buy
    return True


# ---------------------------------------------------------------- dropping orders


def _remove(dz: Discrete, ev: Evaluator, o: Order) -> Discrete:
    out = dz.copy()
    if o.side == "sell":
        out.sell[np.array(o.lots, dtype=np.intp)] = 0.0
    else:
        out.buy[o.pair] = 0.0
    return out


def drop_orders(
    ev: Evaluator, dz: Discrete, *, min_trade_value: float, use_fee_test: bool = True
) -> tuple[Discrete, list[Order], list[Order]]:
    """Remove small orders and orders not worth their cost while staying feasible.

    Returns the new trade list, the removed orders and the small orders that could not be
    removed without breaking a hard constraint. The benefit of removing an order on pair k with
    signed weight change delta (purchase +, sale -) is computed in O(1):
    ``dJ = -2 delta (lambda Sigma d)_e + delta^2 (lambda Sigma)_ee + dTax + cost + fee``.
    """
    pd = ev.pd
    cur = dz.copy()
    removed: list[Order] = []
    stuck: list[Order] = []
    orders = sorted(ev.orders(cur), key=lambda o: (o.value, o.side, o.pair))
    x, b = ev.weights(cur)
    sd = ev.sigma_d(ev.deviation(x, b))
    R, R_S = float(ev.gN @ x), float(ev.gS @ x)
    tax = ev.tax_fn()
    base_tax = tax(R, R_S)
    for o in orders:
        small = o.value < min_trade_value - 1e-9
        e = int(ev.dev_of_pair[o.pair])
        if o.side == "buy":
            delta = o.value / pd.V
            dR = dS = 0.0
            lin = ev.k_pair[o.pair] * delta + ev.drag_pair[o.pair] * delta
        else:
            idx = np.array(o.lots, dtype=np.intp)
            xo = cur.sell[idx] * ev.lp[idx] / pd.V
            delta = -float(xo.sum())
            dR, dS = float(ev.gN[idx] @ xo), float(ev.gS[idx] @ xo)
            lin = float(ev.k_lot[idx] @ xo) + ev.drag_pair[o.pair] * delta
        d_te = -2.0 * delta * sd[e] + delta * delta * ev.sigma_diag[e]
        new_tax = tax(R - dR, R_S - dS)
        benefit = -(d_te + new_tax - base_tax - lin - pd.ticket_fee_w)
        if not small and (not use_fee_test or benefit <= 1e-12):
            continue
        cand = _remove(cur, ev, o)
        if ev.violations(cand):
            if small:
                stuck.append(o)
            continue
        cur = cand
        removed.append(o)
        sd = sd - delta * _sigma_col(ev, e)
        R, R_S = R - dR, R_S - dS
        base_tax = new_tax
    return cur, removed, stuck


def _unit(m: int, e: int) -> np.ndarray:
    v = np.zeros(m)
    v[e] = 1.0
    return v


def _sigma_col(ev: Evaluator, e: int) -> np.ndarray:
    """Column ``e`` of lambda Sigma (computed once per run and label; do not modify)."""
    col = ev._sigma_cols.get(e)
    if col is None:
        col = ev.Gt.T @ ev.Gt[:, e]
        col[e] += ev.sig2[e]
        ev._sigma_cols[e] = col
    return col


def bump_small(
    ev: Evaluator, dz: Discrete, orders: list[Order], xu: np.ndarray, min_trade_value: float
) -> Discrete:
    """Raise orders below the minimum up to it (when removing them is infeasible)."""
    pd = ev.pd
    out = dz.copy()
    for o in orders:
        short = (min_trade_value - o.value) / pd.V
        if short <= 0:
            continue
        if o.side == "buy":
            out.buy[o.pair] += _units_for(short, pd.V, ev.pp[o.pair], ev.unit_pair[o.pair])
        else:
            lots = np.nonzero(ev.lot_pair == o.pair)[0]
            _increase_sell(ev, out, lots, xu, short)
    return out


_BAND = 1e-12  # weights: far above the rounding drift of a few hundred incremental updates


class _Feasibility:
    """The constraints one added unit of an existing order can break, kept up to date move by
    move (for :func:`improve`).

    ``check`` answers True when the move clearly keeps every hard constraint, False when it
    clearly breaks one, and None when a value is within ``_BAND`` of its limit - then the caller
    asks :meth:`Evaluator.violations`, so every decision is the one the full check would make.
    Constraints a move does not touch keep their (satisfied) values exactly.
    """

    def __init__(self, ev: Evaluator, dz: Discrete) -> None:
        pd = ev.pd
        self.ev = ev
        x, b = ev.weights(dz)
        cash = ev.cash_after(dz)
        margin = (0.005 * ev.tickets_per_account(dz) * ev.has_bps - 1e-6) / pd.V
        hold = pd.h0 + (b - ev.to_pairs(x))
        # Python lists of float64 values: the same IEEE additions as the arrays, without a
        # numpy scalar per element
        self.cash: list[float] = cash.tolist()
        self.cash_min: list[float] = (pd.floor + margin).tolist()
        self.R = float(ev.gN @ x)
        self.R_S = float(ev.gS @ x)
        self.hold: list[float] = hold.tolist()
        self.cw: list[float] = ev.to_classes(hold).tolist()
        self.w: list[float] = ev.to_secs(hold).tolist()
        self.total = float(cash.sum())
        bounded = np.zeros(ev.C, dtype=bool)
        bounded[ev.rows] = True
        self.bounded: list[bool] = bounded.tolist()
        self.class_hi: list[float] = np.asarray(pd.class_hi_w, dtype=float).tolist()
        self.class_lo: list[float] = np.asarray(pd.class_lo_w, dtype=float).tolist()
        self.mw_sec: list[float] = np.asarray(pd.mw_sec_w, dtype=float).tolist()
        self.mw_pair: list[float] | None = (
            np.asarray(pd.mw_pair, dtype=float).tolist() if pd.has_pair_max else None
        )
        self.cap_net = pd.cap_net_w + _EPS * 0.1
        self.cap_st = pd.cap_st_w + _EPS * 0.1

    @staticmethod
    def _above(value: float, limit: float) -> bool | None:
        """``value >= limit`` (None when too close to tell)."""
        if value - limit > _BAND:
            return True
        if limit - value > _BAND:
            return False
        return None

    def check(self, k: int, dw: float, dcash: float, dR: float, dS: float) -> bool | None:
        """Pair ``k``'s holding changes by ``dw``, its account's cash by ``dcash``."""
        ev, pd = self.ev, self.ev.pd
        above = self._above
        a, c, i = ev.pair_acc_l[k], ev.class_of_pair_l[k], ev.pair_sec_l[k]
        tests = [above(self.cash[a] + dcash, self.cash_min[a])]
        if dR:
            tests.append(above(self.cap_net, self.R + dR))
        if dS:
            tests.append(above(self.cap_st, self.R_S + dS))
        if self.bounded[c]:
            cw = self.cw[c] + dw
            tests.append(above(self.class_hi[c], cw))
            tests.append(above(cw, self.class_lo[c]))
        tests.append(above(self.mw_sec[i], self.w[i] + dw))
        if self.mw_pair is not None:
            tests.append(above(self.mw_pair[k], self.hold[k] + dw))
        if ev.has_cash_class:
            total = self.total + dcash
            tests.append(above(total, pd.cash_lo_w))
            tests.append(above(pd.cash_hi_w, total))
        if False in tests:
            return False
        return None if None in tests else True

    def apply(self, k: int, dw: float, dcash: float, dR: float, dS: float) -> None:
        ev = self.ev
        self.cash[ev.pair_acc_l[k]] += dcash
        self.total += dcash
        self.R += dR
        self.R_S += dS
        self.hold[k] += dw
        self.cw[ev.class_of_pair_l[k]] += dw
        self.w[ev.pair_sec_l[k]] += dw


def improve(
    ev: Evaluator, dz: Discrete, xu: np.ndarray, bu: np.ndarray, passes: int = 2
) -> Discrete:
    """Local search after rounding down: add one unit to an existing order when that lowers
    the exact objective and keeps every hard constraint (an interior-point solution of a flat
    objective can sit a hair below a whole share, which plain flooring would lose).

    Moves are tried in order (purchases, then lot sales), each with the state left by the moves
    accepted before it. The arithmetic is on Python floats (the same IEEE operations as numpy,
    without its per-element overhead) and the hard constraints are checked incrementally
    (:class:`_Feasibility`, deferring to :meth:`Evaluator.violations` when a value is too close
    to its limit to tell).
    """
    pd = ev.pd
    cur = dz.copy()
    x, b = ev.weights(cur)
    sd = ev.sigma_d(ev.deviation(x, b))  # lambda Sigma d, kept up to date move by move
    R, R_S = float(ev.gN @ x), float(ev.gS @ x)
    # a move can only be judged locally from a feasible trade list (repair's output)
    feas = _Feasibility(ev, cur) if not ev.violations(cur) else None
    tax = ev.tax_fn()
    V = float(pd.V)
    sdl: list[float] = sd.tolist()
    sigma_diag: list[float] = ev.sigma_diag.tolist()
    cash_now: list[float] | None = None  # ev.cash_after(cur) - floor, when first needed
    # ev.cash_after(cur) in parts: a move only adds to an existing order (the tickets stay),
    # a purchase leaves the sales' inflow as it was and a sale the purchases' outflow
    tickets = ev.tickets_per_account(cur)
    inflow: np.ndarray | None = None
    outflow: np.ndarray | None = None
    tax0 = tax(R, R_S)
    for _ in range(passes):
        changed = False
        buys = np.nonzero((cur.buy > 0) & (bu > 0))[0]
        sells = np.nonzero((cur.sell > 0) & (xu > 0) & (cur.sell < pd.lot_q - 1e-12))[0]
        if not len(buys) and not len(sells):
            break
        lot_pair = ev.lot_pair[sells]
        moves = zip(
            [True] * len(buys) + [False] * len(sells),
            buys.tolist() + sells.tolist(),
            np.concatenate([buys, lot_pair]).tolist(),  # pair
            np.concatenate([ev.dev_of_pair[buys], ev.dev_of_pair[lot_pair]]).tolist(),
            np.concatenate([ev.unit_pair[buys], ev.unit_lot[sells]]).tolist(),
            np.concatenate([ev.pp[buys], ev.lp[sells]]).tolist(),  # price
            np.concatenate([ev.k_pair[buys], ev.k_lot[sells]]).tolist(),  # cost rate
            ev.drag_pair[np.concatenate([buys, lot_pair])].tolist(),
            np.concatenate([np.zeros(len(buys)), pd.lot_q[sells] - cur.sell[sells]]).tolist(),
            np.concatenate([np.zeros(len(buys)), ev.gN[sells]]).tolist(),
            np.concatenate([np.zeros(len(buys)), ev.gS[sells]]).tolist(),
            strict=True,
        )
        for is_buy, idx, k, e, unit, price, kc, drag, room, gn, gs in moves:
            if is_buy:
                rate = kc + drag
                # best step along this coordinate, capped by the account's spare cash
                best = -(2.0 * sdl[e] + rate) / (2.0 * max(sigma_diag[e], 1e-18))
                if cash_now is None:
                    if inflow is None:
                        inflow = ev._inflow(cur.sell * ev.lp / pd.V)
                    if outflow is None:
                        outflow = ev._outflow(cur.buy * ev.pp / pd.V)
                    cash_now = (ev._cash_of(inflow, outflow, tickets) - pd.floor).tolist()
                spare = cash_now[ev.pair_acc_l[k]]
                best = min(best, spare / (1.0 + kc))
                units = max(1.0, math.floor(best * V / price / unit))
                unit *= units
                delta = unit * price / V
                dR = dS = 0.0
                lin = rate * delta
                dcash = -(delta * (1.0 + kc))
            else:
                unit = min(unit, room)
                w = unit * price / V
                delta = -w
                dR, dS = gn * w, gs * w
                lin = kc * w - drag * w
                dcash = w * (1.0 - kc)
            d_te = 2.0 * delta * sdl[e] + delta * delta * sigma_diag[e]
            gain = d_te + tax(R + dR, R_S + dS) - tax0 + lin
            if gain >= -1e-15:
                continue
            ok = feas.check(k, delta, dcash, dR, dS) if feas is not None else None
            if ok is False:
                continue
            if ok is None:
                cand = cur.copy()
                if is_buy:
                    cand.buy[idx] += unit
                else:
                    cand.sell[idx] += unit
                if ev.violations(cand):
                    continue
                cur = cand
            elif is_buy:  # clearly feasible: cur is this function's own copy
                cur.buy[idx] += unit
            else:
                cur.sell[idx] += unit
            if feas is not None:
                feas.apply(k, delta, dcash, dR, dS)
            cash_now = None
            if is_buy:
                outflow = None
            else:
                inflow = None
            sd += delta * _sigma_col(ev, e)
            sdl = sd.tolist()
            R, R_S = R + dR, R_S + dS
            tax0 = tax(R, R_S)
            changed = True
        if not changed:
            break
    return cur
