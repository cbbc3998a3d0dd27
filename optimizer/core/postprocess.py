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
from typing import Any, NamedTuple

import numpy as np

from optimizer.core import kernels
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


class OrderArrays(NamedTuple):
    """The tickets of a trade list as arrays (:func:`optimizer.core.kernels.order_arrays`)."""

    sides: np.ndarray  # 1 sale, 0 purchase
    pairs: np.ndarray
    values: np.ndarray  # dollars
    lot_ptr: np.ndarray  # the lots of ticket o: lot_idx[lot_ptr[o]:lot_ptr[o + 1]]
    lot_idx: np.ndarray


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
        self.has_bps = float(bool((pd.k_sec > 0).any()))
        # S, A, Ea and Eb map every lot or pair to exactly one row, columns in order: their
        # products are bucket sums, done with bincount in the same order (same floats). The
        # products D A and Mc A keep their sparse form: scipy orders their columns its own way.
        self.has_cash_class = pd.cash_lo > -BIG or pd.cash_hi < BIG
        self.sell_net = 1 - self.k_lot  # cash per unit of sale weight
        self.buy_gross = 1 + self.k_pair  # cash per unit of purchase weight
        f64 = np.float64
        self.lot_q = np.ascontiguousarray(pd.lot_q, dtype=f64)
        self.loss_lot = np.ascontiguousarray((pd.lot_g < 0) & pd.lot_taxable, dtype=np.bool_)
        self.dev_of_pair_i = np.ascontiguousarray(pd.dev_of_pair, dtype=np.int64)
        self.class_of_pair_i = np.ascontiguousarray(pd.class_of_pair, dtype=np.int64)
        for name in ("unit_lot", "unit_pair", "k_lot", "k_pair", "drag_pair", "sigma_diag"):
            setattr(self, name, np.ascontiguousarray(getattr(self, name), dtype=f64))
        self.Gt = np.ascontiguousarray(self.Gt, dtype=f64)
        self.sig2 = np.ascontiguousarray(self.sig2, dtype=f64)
        # the compiled check and local search (optimizer.core.kernels) read these
        self.kst = self._kernel_state()
        self.tax_args = self._tax_args()
        # columns of lambda Sigma, computed when first needed (kernels.sigma_col)
        self._cols = np.empty((self.m, self.m))
        self._have = np.zeros(self.m, dtype=np.bool_)

    def _kernel_state(self) -> tuple[Any, ...]:
        """The arrays and scalars of the hard constraints, typed for the compiled check (the
        order is the one :mod:`optimizer.core.kernels` reads)."""
        pd = self.pd

        def f(a: Any) -> np.ndarray:
            return np.ascontiguousarray(a, dtype=np.float64)

        def i(a: Any) -> np.ndarray:
            return np.ascontiguousarray(a, dtype=np.int64)

        K = self.K
        return (
            f(self.lp),  # 0
            f(self.pp),
            float(pd.V),
            i(pd.lot_pair),
            i(pd.lot_acc),
            i(pd.pair_acc),  # 5
            i(pd.pair_sec),
            f(self.sell_net),
            f(self.buy_gross),
            f(pd.cash0),
            float(pd.ticket_fee_w),  # 10
            f(pd.floor),
            float(self.has_bps),
            f(self.gN),
            f(self.gS),
            float(pd.cap_net_w),  # 15
            float(pd.cap_st_w),
            f(pd.h0),
            i(K.indptr),
            i(K.indices),
            f(K.data),  # 20
            i(self.rows),
            f(pd.class_lo_w),
            f(pd.class_hi_w),
            f(pd.mw_sec_w),
            bool(pd.has_pair_max),  # 25
            f(pd.mw_pair),
            bool(self.has_cash_class),
            float(pd.cash_lo_w),
            float(pd.cash_hi_w),
            int(pd.n_acc),  # 30
            int(pd.n),
            i(self.DA.indptr),
            i(self.DA.indices),
            f(self.DA.data),
            f(pd.t_dev_w),  # 35
        )

    def _tax_args(self) -> tuple[float, ...]:
        """:meth:`tax_fn`'s constants for the compiled local search."""
        pd = self.pd
        st = pd.settings
        kappa = float(st.loss_value_beyond_offset)
        return (
            float(pd.ytd_s_w + pd.ytd_l_w),
            float(pd.ytd_s_w),
            float(pd.tau_l),
            float(pd.tau_s - pd.tau_l),
            kappa,
            float((1 - kappa) * pd.tau_s * pd.offset_w),
            float(st.tax_weight),
        )

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

    def order_arrays(self, dz: Discrete) -> OrderArrays:
        """The tickets as arrays (see :func:`optimizer.core.kernels.order_arrays`)."""
        return OrderArrays(
            *kernels.order_arrays(self.kst[3], self.kst[1], _f64(dz.sell), _f64(dz.buy))
        )

    def orders(self, dz: Discrete) -> list[Order]:
        """Tickets of the trade list, sells first, in pair order (deterministic)."""
        return _orders(self.order_arrays(dz))

    def smallest_order(self, dz: Discrete) -> float:
        """The smallest ticket's value in dollars (``inf`` without any ticket)."""
        return float(kernels.smallest_order(self.kst[3], self.kst[1], _f64(dz.sell), _f64(dz.buy)))

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

    def deviation_of(self, dz: Discrete) -> np.ndarray:
        """``deviation(*weights(dz))``, compiled (the same floats)."""
        return kernels.deviation(self.kst, _f64(dz.sell), _f64(dz.buy))

    def te2(self, d: np.ndarray) -> float:
        """lambda * TE^2 at deviation ``d``."""
        y = self.Gt @ d
        return float(y @ y + self.sig2 @ (d * d))

    def sigma_d(self, d: np.ndarray) -> np.ndarray:
        """lambda * Sigma @ d (:func:`optimizer.core.kernels.sigma_d`: loops of a fixed order,
        so the same floats whatever BLAS numpy has)."""
        return kernels.sigma_d(self.Gt, self.sig2, _f64(d))

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
        """:meth:`tax` as a closure over plain floats (the same operations; the constants are
        the compiled loops' ``tax_args``)."""
        ytd, ytd_s, tau_l, tau_sl, kappa, floor_c, omega = self.tax_args

        def tax(R: float, R_S: float) -> float:
            R += ytd
            R_S += ytd_s
            f = tau_l * R + tau_sl * max(R_S, 0.0)
            return omega * max(f, kappa * f - floor_c)

        return tax

    def objective(self, dz: Discrete) -> float:
        """Exact objective J (weights): lambda TE^2 + tax + bps cost + ticket fees + drag.

        All but lambda TE^2 compiled (:func:`optimizer.core.kernels.objective_terms`; the same
        operations as the numpy form the tests keep as its specification)."""
        d, tax, lin, drag = kernels.objective_terms(
            self.kst, self.tax_args, self.k_lot, self.k_pair, self.drag_pair,
            _f64(dz.sell), _f64(dz.buy),
        )  # fmt: skip
        return self.objective_of(d, tax, lin, drag)

    def objective_of(self, d: np.ndarray, tax: float, lin: float, drag: float) -> float:
        """The objective from :func:`optimizer.core.kernels.objective_terms`' terms."""
        return float(self.te2(d) + tax + lin + drag)

    # ------------------------------------------------------------ constraints

    def violations(self, dz: Discrete) -> list[Violation]:
        """Hard constraints broken by the trade list (small safety margins included): the cash
        per account after costs and ticket fees (with half a cent per order for the checker's
        rounding of proportional costs), the net and short-term gain budgets, the asset-class
        bounds, the maximum weights per security and per account, and the IPS cash band.
        Compiled (:func:`optimizer.core.kernels.violations`)."""
        return kernels.violation_list(self.kst, dz.sell, dz.buy)

    def feasible(self, dz: Discrete) -> bool:
        """``not self.violations(dz)``, stopping at the first broken constraint."""
        return kernels.feasible(self.kst, dz.sell, dz.buy)


def _f64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _orders(arrays: OrderArrays, which: list[int] | None = None) -> list[Order]:
    """:class:`Order` tuples from the arrays (all of them, in order, or those numbered in
    ``which``)."""
    side_l, pair_l, value_l = arrays.sides.tolist(), arrays.pairs.tolist(), arrays.values.tolist()
    ptr, lots = arrays.lot_ptr.tolist(), arrays.lot_idx.tolist()
    return [
        Order(
            "sell" if side_l[o] else "buy", pair_l[o], tuple(lots[ptr[o] : ptr[o + 1]]), value_l[o]
        )
        for o in (range(len(side_l)) if which is None else which)
    ]


# ---------------------------------------------------------------- rounding


def round_solution(ev: Evaluator, x: np.ndarray, b: np.ndarray) -> Discrete:
    """Round a continuous solution to share units (see the module docstring; compiled:
    :func:`optimizer.core.kernels.round_solution`)."""
    sell, buy = kernels.round_solution(
        np.ascontiguousarray(x, dtype=np.float64),
        np.ascontiguousarray(b, dtype=np.float64),
        float(ev.pd.V),
        ev.kst[0],
        ev.kst[1],
        ev.lot_q,
        ev.unit_lot,
        ev.unit_pair,
        ev.loss_lot,
    )
    return Discrete(sell, buy)


def round_checked(ev: Evaluator, x: np.ndarray, b: np.ndarray) -> tuple[Discrete, bool, np.ndarray]:
    """:func:`round_solution`, whether the result breaks no hard constraint
    (:meth:`Evaluator.feasible`) and, when it breaks none, its deviation
    (:meth:`Evaluator.deviation_of`), in one compiled call."""
    sell, buy, ok, d = kernels.round_checked(
        ev.kst, _f64(x), _f64(b), ev.lot_q, ev.unit_lot, ev.unit_pair, ev.loss_lot
    )
    return Discrete(sell, buy), bool(ok), d


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
    if ev.feasible(dz):
        return True  # nothing to repair (the common case after rounding)
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


def drop_orders(
    ev: Evaluator, dz: Discrete, *, min_trade_value: float, use_fee_test: bool = True
) -> tuple[Discrete, list[Order], list[Order]]:
    """Remove small orders and orders not worth their cost while staying feasible.

    Returns the new trade list, the removed orders and the small orders that could not be
    removed without breaking a hard constraint. The benefit of removing an order on pair k with
    signed weight change delta (purchase +, sale -) is computed in O(1):
    ``dJ = -2 delta (lambda Sigma d)_e + delta^2 (lambda Sigma)_ee + dTax + cost + fee``.
    Orders are taken smallest first; the loop is compiled
    (:func:`optimizer.core.kernels.drop_judged`).
    """
    step = drop_judged(ev, dz, min_trade_value=min_trade_value, use_fee_test=use_fee_test)
    return step.dz, step.removed, step.stuck


class DropStep(NamedTuple):
    """What :func:`drop_judged` returns: the trade list after :func:`drop_orders`, its removed
    and stuck orders, and the trade list judged: no hard constraint broken, its smallest
    ticket (dollars) and its objective (:meth:`Evaluator.objective`)."""

    dz: Discrete
    removed: list[Order]
    stuck: list[Order]
    feasible: bool
    smallest: float
    objective: float


def drop_judged(
    ev: Evaluator,
    dz: Discrete,
    *,
    min_trade_value: float,
    use_fee_test: bool = True,
    deviation: np.ndarray | None = None,
) -> DropStep:
    """:func:`drop_orders` and the result judged, in one compiled call
    (:func:`optimizer.core.kernels.drop_judged`: the same kernels, so the same floats as the
    separate calls). ``deviation`` is ``ev.deviation_of(dz)`` when the caller has it."""
    d0 = ev.deviation_of(dz) if deviation is None else deviation
    out = kernels.drop_judged(
        ev.kst, ev.tax_args, _f64(dz.sell), _f64(dz.buy), float(min_trade_value),
        bool(use_fee_test), ev.k_lot, ev.k_pair, ev.drag_pair, ev.dev_of_pair_i,
        ev.sigma_diag, ev.sigma_d(d0), ev.Gt, ev.sig2, ev._cols, ev._have,
    )  # fmt: skip
    return _drop_step(ev, *out)


def _drop_step(
    ev: Evaluator,
    sell: np.ndarray,
    buy: np.ndarray,
    status: np.ndarray,
    sides: np.ndarray,
    pairs: np.ndarray,
    values: np.ndarray,
    lot_ptr: np.ndarray,
    lot_idx: np.ndarray,
    perm: np.ndarray,
    ok: bool,
    smallest: float,
    d: np.ndarray,
    tax: float,
    lin: float,
    drag: float,
) -> DropStep:
    """The :class:`DropStep` of :func:`optimizer.core.kernels.drop_judged`'s values."""
    removed: list[Order] = []
    stuck: list[Order] = []
    if np.count_nonzero(status):
        arrays = OrderArrays(sides, pairs, values, lot_ptr, lot_idx)
        codes = status[perm].tolist()
        order_no = perm.tolist()
        removed = _orders(arrays, [o for o, c in zip(order_no, codes, strict=True) if c == 1])
        stuck = _orders(arrays, [o for o, c in zip(order_no, codes, strict=True) if c == 2])
    return DropStep(
        Discrete(sell, buy),
        removed,
        stuck,
        bool(ok),
        float(smallest),
        ev.objective_of(d, tax, lin, drag),
    )


def round_step(
    ev: Evaluator,
    x: np.ndarray,
    b: np.ndarray,
    xu: np.ndarray,
    bu: np.ndarray,
    *,
    min_trade_value: float,
    use_fee_test: bool = True,
    passes: int = 2,
) -> tuple[Discrete, DropStep | None]:
    """A rounding round in one compiled call (:func:`optimizer.core.kernels.round_step`):
    :func:`round_checked`, then, when the rounded list breaks no hard constraint,
    :func:`improve_step` and :func:`drop_judged` (the same floats as the three calls).

    Returns the improved list and its :class:`DropStep`; or, when the rounded list breaks a
    hard constraint, that list (to be repaired) and ``None``."""
    ok, sell, buy, *out = kernels.round_step(
        ev.kst, ev.tax_args, _f64(x), _f64(b), _f64(xu), _f64(bu), ev.lot_q, ev.unit_lot,
        ev.unit_pair, ev.loss_lot, ev.dev_of_pair_i, ev.k_lot, ev.k_pair, ev.drag_pair,
        ev.class_of_pair_i, ev.sigma_diag, ev.Gt, ev.sig2, ev._cols, ev._have, passes,
        float(min_trade_value), bool(use_fee_test),
    )  # fmt: skip
    if not ok:
        return Discrete(sell, buy), None
    return Discrete(sell, buy), _drop_step(ev, *out)


def _unit(m: int, e: int) -> np.ndarray:
    v = np.zeros(m)
    v[e] = 1.0
    return v


def _sigma_col(ev: Evaluator, e: int) -> np.ndarray:
    """Column ``e`` of lambda Sigma (computed once per run and label; do not modify)."""
    col: np.ndarray = kernels.sigma_col(ev.Gt, ev.sig2, e, ev._cols, ev._have)
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


def improve(
    ev: Evaluator, dz: Discrete, xu: np.ndarray, bu: np.ndarray, passes: int = 2
) -> Discrete:
    """Local search after rounding down: add one unit to an existing order when that lowers
    the exact objective and keeps every hard constraint (an interior-point solution of a flat
    objective can sit a hair below a whole share, which plain flooring would lose).

    Moves are tried in order (purchases, then lot sales), each with the state left by the moves
    accepted before it; a purchase moves by its best step along its coordinate, capped by the
    account's spare cash, a sale by one unit. The hard constraints are checked incrementally
    from a feasible start (each move changes one pair, one account, one class and one security;
    a value within 1e-12 of its limit is judged by the full check instead). Compiled:
    :func:`optimizer.core.kernels.improve`.
    """
    return improve_step(ev, dz, xu, bu, passes)[0]


def improve_step(
    ev: Evaluator,
    dz: Discrete,
    xu: np.ndarray,
    bu: np.ndarray,
    passes: int = 2,
    *,
    deviation: np.ndarray | None = None,
) -> tuple[Discrete, np.ndarray]:
    """:func:`improve` and the deviation of its result (``ev.deviation_of``), in one compiled
    call. ``deviation`` is ``ev.deviation_of(dz)`` when the caller has it."""
    d0 = ev.deviation_of(dz) if deviation is None else deviation
    sd = ev.sigma_d(d0)  # lambda Sigma d
    sell, buy, d = kernels.improve(
        ev.kst,
        ev.tax_args,
        _f64(dz.sell),
        _f64(dz.buy),
        _f64(xu),
        _f64(bu),
        ev.lot_q,
        ev.dev_of_pair_i,
        ev.unit_lot,
        ev.unit_pair,
        ev.k_lot,
        ev.k_pair,
        ev.drag_pair,
        ev.class_of_pair_i,
        ev.sigma_diag,
        sd,
        ev.Gt,
        ev.sig2,
        ev._cols,
        ev._have,
        passes,
    )
    return Discrete(sell, buy), d
