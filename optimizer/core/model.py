"""Numerical data of one run: the snapshot turned into arrays in *weight* units.

Scaling: every money amount is divided by the household value ``V`` (dollars), so variables and
coefficients are O(1) whatever the size of the household. With ``p_j`` the price of the security
of lot ``j``:

- ``x_j`` (sell weight of lot j) = shares sold * p_j / V, with 0 <= x_j <= u_j = q_j p_j / V.
- ``b_k`` (buy weight of pair k = (account, security)) = shares bought * p / V.
- ``h_k = h0_k - (S x)_k + b_k``: holding weight of pair k after trading (S: lot -> pair).
- ``w = A h``: household security weights (A: pair -> security).
- ``g_j = 1 - B_j / (q_j p_j)``: realized gain per unit of sale weight (dimensionless), so the
  realized gain of the sale is ``g_j x_j`` (times V for dollars).

Cash to raise leaves the portfolio. With ``r = sum_a cash_to_raise_a / V`` the share of V that
stays invested is ``s = 1 - r``, and everything that describes the allocation after trading is
measured on ``s V``, not on V: targets (``t_dev_w = s t_dev``), asset-class bounds
(``s lo <= (Mc w)_c <= s hi``), the cash band on the cash that stays (``s lo <= cash - r <= s
hi``), maximum weights (``s m``, per account ``m (V_a - raise_a) / V``), the cash floor as a
weight of the account (of ``V_a - raise_a``) and the tracking error (``|d| / s``); the risk
term is ``lambda |d|^2 / s`` (``lambda TE^2`` on the invested value, in dollars of V). Without
cash to raise ``s = 1`` and all of this is the plain formulation.

This module is pure numpy/scipy; it does not import cvxpy.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import scipy.sparse as sp

from optimizer.core import kernels
from optimizer.core.errors import InvalidSnapshot
from optimizer.core.scenarios import Settings
from optimizer.core.snapshot import (
    CASH_CLASS,
    Snapshot,
    last_long_term_start,
    memo,
)

BIG = 2.0  # "no limit" in weight units: no weight or realized gain can exceed 1


@dataclass
class WashInfo:
    """Wash-sale status of one identical group (dates inside the window before ``as_of``)."""

    recent_buys: list[tuple[str, str, str]] = field(default_factory=list)  # (account, date, lot/"")
    recent_loss_sales: list[tuple[str, str]] = field(default_factory=list)  # (account, date)


@dataclass
class ProblemData:
    """Arrays of one run. Shapes: L lots, n securities, P = accounts x n pairs, m risk labels."""

    snapshot: Snapshot
    settings: Settings
    V: float
    n: int
    L: int
    P: int
    n_acc: int
    prices: np.ndarray  # (n) $/share
    sec_class: list[str]
    sec_group: list[str]
    lot_sec: np.ndarray  # (L) int
    lot_acc: np.ndarray  # (L) int
    lot_q: np.ndarray  # (L) shares
    lot_u: np.ndarray  # (L) max sell weight
    lot_g: np.ndarray  # (L) gain per unit sale weight
    lot_taxable: np.ndarray  # (L) bool
    lot_lt: np.ndarray  # (L) bool, long-term if sold on as_of
    pair_acc: np.ndarray  # (P) int
    pair_sec: np.ndarray  # (P) int
    h0: np.ndarray  # (P) weights
    S: sp.csr_matrix  # (P x L) lot -> pair
    A: sp.csr_matrix  # (n x P) pair -> security
    Ea: sp.csr_matrix  # (n_acc x L) lot -> account
    Eb: sp.csr_matrix  # (n_acc x P) pair -> account
    cash0: np.ndarray  # (n_acc) weights
    floor: np.ndarray  # (n_acc) weights: floor + cash to raise
    k_sec: np.ndarray  # (n) proportional cost rate (bps/1e4) per security
    ticket_fee_w: float  # ticket fee / V
    min_trade_w: float  # minimum order value / V
    proxy_rate: float  # convex per-weight proxy of the ticket fee
    drag_sec: np.ndarray  # (n) asset-location drag per unit weight held in a taxable account
    t_sec: np.ndarray  # (n) security target weights of the invested value (may be implied)
    D: sp.csr_matrix  # (m x n) security -> risk label
    t_dev: np.ndarray  # (m) target in risk-label space (weights of the invested value)
    t_dev_w: np.ndarray  # (m) the same target in weights of V: invested * t_dev
    Gt: np.ndarray  # (r x m): Sigma = Gt^T Gt + diag(sig^2)
    sig: np.ndarray  # (m)
    sigma: np.ndarray  # (m x m) full covariance (for metrics)
    dev_labels: list[str]
    classes: list[str]
    Mc: sp.csr_matrix  # (C x n) security -> asset class
    DA: sp.csr_matrix  # (m x P) D @ A: pair -> risk label
    K: sp.csr_matrix  # (C x P) Mc @ A: pair -> asset class
    dev_of_pair: np.ndarray  # (P) risk label of each pair's security
    class_of_pair: np.ndarray  # (P) asset class of each pair's security
    lot_pair: np.ndarray  # (L) pair of each lot
    class_lo: np.ndarray  # (C) hard lower bound (IPS weight) or -BIG
    class_hi: np.ndarray  # (C) hard upper bound (IPS weight) or BIG
    class_target: np.ndarray  # (C) target or nan when the IPS has none
    cash_lo: float  # IPS weight of the cash that stays invested, or -BIG
    cash_hi: float
    cash_target: float | None
    mw_sec: np.ndarray  # (n) household max weight (restriction weight; BIG when none)
    mw_pair: np.ndarray  # (P) per-account max weight as a weight of V (BIG when none)
    # the bounds as the constraints use them, weights of V (see the module docstring)
    class_lo_w: np.ndarray  # (C) invested * class_lo, or -BIG
    class_hi_w: np.ndarray  # (C) invested * class_hi, or BIG
    cash_lo_w: float  # invested * cash_lo + raised (on total account cash), or -BIG
    cash_hi_w: float
    mw_sec_w: np.ndarray  # (n) invested * mw_sec, or BIG
    has_pair_max: bool
    sell_block: dict[int, list[str]]  # lot -> reasons it may not be sold
    buy_block: dict[int, list[str]]  # pair -> reasons it may not be bought
    tau_s: float
    tau_l: float
    offset_w: float
    ytd_s_w: float
    ytd_l_w: float
    cap_net_w: float
    cap_st_w: float
    wash: dict[str, WashInfo]
    group_of_lot: np.ndarray  # (L) int group index
    group_of_pair: np.ndarray  # (P) int group index
    groups: list[str]
    acc_value: np.ndarray  # (n_acc) dollars before trading
    lot_mv_dec: list[Decimal]  # (L) quantity x price of each lot, dollars, exact (do not modify)
    lot_gain_dec: list[Decimal]  # (L) quantity x price - cost_basis, dollars, exact (do not modify)
    fractional: np.ndarray  # (n_acc) bool
    raise_w: np.ndarray  # (n_acc) cash to raise (withdrawn after trading), weights of V
    invested: float  # s = 1 - sum(raise_w): share of V that stays invested
    risk_scale: float  # 1 / max(s, 0.01): the risk term is lambda * risk_scale * |d|^2

    # ---------------------------------------------------------------- derived helpers

    def lot_price(self) -> np.ndarray:
        """Price per share of each lot's security ($/share), shape (L)."""
        return self.prices[self.lot_sec]

    def pair_price(self) -> np.ndarray:
        """Price per share of each pair's security ($/share), shape (P)."""
        return self.prices[self.pair_sec]

    def lot_k(self) -> np.ndarray:
        """Proportional cost rate of selling each lot (fraction of value)."""
        return self.k_sec[self.lot_sec]

    def pair_k(self) -> np.ndarray:
        """Proportional cost rate of buying each pair (fraction of value)."""
        return self.k_sec[self.pair_sec]

    def pair_drag(self) -> np.ndarray:
        """Asset-location drag of holding each pair (0 outside taxable accounts)."""
        taxable = np.array([a.taxable for a in self.snapshot.accounts])[self.pair_acc]
        return np.where(taxable, self.drag_sec[self.pair_sec], 0.0)

    # exact (Decimal) figures of the snapshot that several result sections need: computed once
    # per run, in the same way and order as the sections did each on their own

    @functools.cached_property
    def value_dec(self) -> Decimal:
        """Household value before trading (dollars, exact)."""
        s = self.snapshot
        return sum((a.cash for a in s.accounts), Decimal(0)) + sum(self.lot_mv_dec, Decimal(0))

    @functools.cached_property
    def security_maps(self) -> tuple[dict[str, Decimal], dict[str, str], dict[str, int]]:
        """Price, asset class and index of each security by symbol (do not modify: shared)."""
        secs = self.snapshot.securities
        return (
            {x.symbol: x.price for x in secs},
            {x.symbol: x.asset_class for x in secs},
            {x.symbol: i for i, x in enumerate(secs)},
        )

    @functools.cached_property
    def holdings_dec(self) -> dict[tuple[str, str], Decimal]:
        """Shares per (account, symbol) before trading (do not modify: shared)."""
        held: dict[tuple[str, str], Decimal] = {}
        for lt in self.snapshot.lots:
            held[(lt.account, lt.symbol)] = held.get((lt.account, lt.symbol), Decimal(0)) + (
                lt.quantity
            )
        return held

    @functools.cached_property
    def lot_unrealized_dec(self) -> list[Decimal | None]:
        """Unrealized gain of each whole lot in a taxable account (None elsewhere), dollars:
        ``quantity x price - cost_basis`` (:attr:`lot_gain_dec`)."""
        return [
            g if taxable else None
            for g, taxable in zip(self.lot_gain_dec, self.lot_taxable.tolist(), strict=True)
        ]

    @functools.cached_property
    def unrealized_sums(self) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """Unrealized short-term gains, short-term losses, long-term gains and long-term losses
        of the whole taxable lots (dollars, exact)."""
        sums = [Decimal(0)] * 4
        for gain, long_term in zip(self.lot_unrealized_dec, self.lot_lt.tolist(), strict=True):
            if gain is not None:
                sums[term_bucket(gain, long_term)] += gain
        return sums[0], sums[1], sums[2], sums[3]

    @functools.cached_property
    def unrealized_lots(self) -> dict[str, tuple[Decimal, int, bool, Decimal, Decimal, Decimal]]:
        """By lot id, each whole taxable lot's unrealized gain (:attr:`lot_unrealized_dec`), its
        :func:`term_bucket`, whether it is long term, its quantity, cost basis and price: what
        a sale of part of it changes in :attr:`unrealized_sums`."""
        s = self.snapshot
        prices = [x.price for x in s.securities]
        out = {}
        for lot, gain, long_term, i in zip(
            s.lots,
            self.lot_unrealized_dec,
            self.lot_lt.tolist(),
            self.lot_sec.tolist(),
            strict=True,
        ):
            if gain is not None:
                out[lot.lot_id] = (
                    gain,
                    term_bucket(gain, long_term),
                    long_term,
                    lot.quantity,
                    lot.cost_basis,
                    prices[i],
                )
        return out

    @functools.cached_property
    def lot_index(self) -> dict[str, int]:
        """The index of each lot by its id."""
        return {lt.lot_id: j for j, lt in enumerate(self.snapshot.lots)}

    def lot_gain_ratios(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(gN, gS, gL)``: taxable realized gain per unit sale weight, all / short / long term."""
        g_tax = np.where(self.lot_taxable, self.lot_g, 0.0)
        return g_tax, np.where(self.lot_lt, 0.0, g_tax), np.where(self.lot_lt, g_tax, 0.0)


def term_bucket(gain: Decimal, long_term: bool) -> int:
    """Where a gain goes among short-term gains, short-term losses, long-term gains and
    long-term losses (0 to 3; a zero gain counts as a gain)."""
    return (2 if long_term else 0) + (0 if gain >= 0 else 1)


# The 0/1 matrices (and their products) depend only on the structure of a run (which lot is in
# which account and security, which security is in which class), not on prices or quantities:
# re-runs, scenarios and re-priced runs of one household get them from here. Read-only.
_STRUCTURE_CACHE_SIZE = 256
_structure_cache: OrderedDict[tuple[Any, ...], sp.csr_matrix] = OrderedDict()
_structure_lock = threading.Lock()


def _read_only(m: sp.csr_matrix) -> sp.csr_matrix:
    for arr in (m.data, m.indices, m.indptr):
        arr.flags.writeable = False
    return m


def _structure_cached(key: tuple[Any, ...], build: Callable[[], sp.csr_matrix]) -> sp.csr_matrix:
    with _structure_lock:
        hit = _structure_cache.get(key)
        if hit is not None:
            _structure_cache.move_to_end(key)
            return hit
    value = _read_only(build())
    with _structure_lock:
        _structure_cache[key] = value
        while len(_structure_cache) > _STRUCTURE_CACHE_SIZE:
            _structure_cache.popitem(last=False)
    return value


def _incidence_key(rows: np.ndarray, n_rows: int) -> tuple[Any, ...]:
    return ("incidence", np.ascontiguousarray(rows, dtype=np.int64).tobytes(), int(n_rows))


def incidence(rows: np.ndarray, n_rows: int) -> sp.csr_matrix:
    """The 0/1 matrix with one 1 per column, at ``rows[j]`` (CSR, columns ascending in a row).

    The same matrix as ``csr_matrix((ones, (rows, arange)))``, built without the COO round trip;
    remembered by ``(rows, n_rows)`` (read-only: shared).
    """
    return _structure_cached(_incidence_key(rows, n_rows), lambda: _incidence(rows, n_rows))


def _incidence(rows: np.ndarray, n_rows: int) -> sp.csr_matrix:
    rows = np.asarray(rows, dtype=np.int64)
    n_cols = len(rows)
    indptr = np.zeros(n_rows + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    indices = np.argsort(rows, kind="stable").astype(np.int32)
    return sp.csr_matrix((np.ones(n_cols), indices, indptr), shape=(n_rows, n_cols))


def incidence_product(left: tuple[np.ndarray, int], right: tuple[np.ndarray, int]) -> sp.csr_matrix:
    """``incidence(*left) @ incidence(*right)`` as scipy computes it (its column order within a
    row included, which sets the order of the sums in a product with it), remembered."""
    key = ("product", _incidence_key(*left), _incidence_key(*right))
    return _structure_cached(key, lambda: sp.csr_matrix(incidence(*left) @ incidence(*right)))


def _sqrt_factor(sigma: np.ndarray) -> np.ndarray:
    """``Gt`` with ``Gt^T Gt = sigma`` from the eigen-decomposition (works for singular PSD)."""
    vals, vecs = np.linalg.eigh((sigma + sigma.T) / 2.0)
    scale = max(float(vals.max(initial=0.0)), 1e-300)
    keep = vals > 1e-12 * scale
    if not keep.any():
        return np.zeros((1, sigma.shape[0]))
    g = vecs[:, keep] * np.sqrt(vals[keep])
    return np.ascontiguousarray(g.T[::-1])


def build_problem_data(snapshot: Snapshot, settings: Settings) -> ProblemData:
    """Turn a validated snapshot into weight-scaled arrays (see module docstring)."""
    s = snapshot
    accounts = list(s.accounts)
    secs = list(s.securities)
    n, n_acc = len(secs), len(accounts)
    sec_index = {x.symbol: i for i, x in enumerate(secs)}
    acc_index = {a.id: i for i, a in enumerate(accounts)}
    prices = np.array([float(x.price) for x in secs])

    lots = list(s.lots)
    L = len(lots)
    # one pass over the lots: security, account, exact market value (added to its account's
    # value in lot order) and gain, whether a sale today is long term, and whether the lot was
    # bought inside the wash-sale window
    price_dec = [x.price for x in secs]
    acc_value_dec = [a.cash for a in accounts]
    lot_sec_l: list[int] = []
    lot_acc_l: list[int] = []
    lot_mv_dec: list[Decimal] = []
    lot_gain_dec: list[Decimal] = []
    lot_lt_l: list[bool] = []
    lot_q_l: list[float] = []
    lot_mv_l: list[float] = []
    lot_gain_l: list[float] = []
    in_window: list[int] = []
    lt_until = last_long_term_start(s.as_of)
    window_start = s.as_of - dt.timedelta(days=s.wash_sale.window_days)
    for j, lt in enumerate(lots):
        i_sec = sec_index[lt.symbol]
        i_acc = acc_index[lt.account]
        mv = lt.quantity * price_dec[i_sec]
        gain = mv - lt.cost_basis
        lot_sec_l.append(i_sec)
        lot_acc_l.append(i_acc)
        lot_mv_dec.append(mv)
        lot_gain_dec.append(gain)
        acc_value_dec[i_acc] += mv
        lot_lt_l.append(lt.holding_period_start <= lt_until)
        lot_q_l.append(float(lt.quantity))
        lot_mv_l.append(float(mv))
        lot_gain_l.append(float(gain))
        if lt.acquired >= window_start:
            in_window.append(j)
    lot_sec = np.array(lot_sec_l, dtype=int)
    lot_acc = np.array(lot_acc_l, dtype=int)
    lot_q = np.array(lot_q_l, dtype=float)
    V_dec = sum(acc_value_dec, Decimal(0))
    V = float(V_dec)
    if V <= 0:
        raise InvalidSnapshot("accounts", "the household has no value (no cash and no positions)")
    lot_mv = np.array(lot_mv_l, dtype=float)
    lot_u = lot_mv / V
    # gain per unit of value sold: the exact gain over the value, divided in floats (the sign
    # is the exact gain's: a float keeps the sign and the zero of the Decimal it comes from)
    lot_gain = np.array(lot_gain_l, dtype=float)
    positive = lot_mv > 0
    lot_g = np.zeros(L)
    lot_g[positive] = lot_gain[positive] / lot_mv[positive]
    acc_taxable = np.array([a.taxable for a in accounts], dtype=bool)
    lot_taxable = acc_taxable[lot_acc] if L else np.zeros(0, dtype=bool)
    lot_lt = np.array(lot_lt_l, dtype=bool)

    P = n_acc * n
    pairs = np.arange(P)
    pair_acc = pairs // n  # account-major: pair k is account k // n, security k % n
    pair_sec = pairs % n
    lot_pair = lot_acc * n + lot_sec
    S = incidence(lot_pair, P)
    A = incidence(pair_sec, n)
    Ea = incidence(lot_acc, n_acc)
    Eb = incidence(pair_acc, n_acc)
    h0 = kernels.csr_matvec(S, lot_u)
    acc_value = np.array([float(v) for v in acc_value_dec])
    cash0 = np.array([float(a.cash) for a in accounts]) / V
    raise_dec = [a.cash_to_raise for a in accounts]
    raise_w = np.array([float(x) for x in raise_dec]) / V
    raised_dec = sum(raise_dec, Decimal(0))
    invested = float((V_dec - raised_dec) / V_dec) if raised_dec else 1.0
    floor = np.zeros(n_acc)
    for i, a in enumerate(accounts):
        fl = a.cash_floor
        if a.cash_floor_weight is not None:
            # a weight of what stays in the account after the withdrawal
            fl = max(fl, a.cash_floor_weight * (acc_value_dec[i] - a.cash_to_raise))
        floor[i] = float(fl + a.cash_to_raise) / V
        if fl + a.cash_to_raise > acc_value_dec[i]:
            from optimizer.core.errors import Conflict, InfeasibleProblem

            need = fl + a.cash_to_raise
            raise InfeasibleProblem(
                f"account {a.id} cannot hold the cash it must",
                [
                    Conflict(
                        constraint=f"cash_floor:{a.id}",
                        text=(
                            f"the cash floor plus cash to raise (${need:,.2f}) in account {a.id} "
                            f"exceeds the account's total value (${acc_value_dec[i]:,.2f})"
                        ),
                        shortfall=f"{need - acc_value_dec[i]:.2f}",
                    )
                ],
            )

    bps = s.costs.bps
    k_sec = np.array([float((bps + x.cost_bps) / Decimal(10000)) for x in secs])
    ticket_fee_w = float(s.costs.ticket_fee) / V
    min_trade_w = float(s.costs.min_trade_value) / V
    # convex proxy of the fixed ticket fee: the fee spread over a reference order size
    ref_order = max(float(s.costs.min_trade_value), 0.01 * V / max(1, n_acc), 1.0)
    proxy_rate = float(s.costs.ticket_fee) / ref_order
    drag_sec = np.array(
        [float(s.objective.asset_location_drag.get(x.asset_class, 0)) for x in secs]
    )

    # ------------------------------------------------------------ targets
    w0 = kernels.csr_matvec(A, h0)
    t_sec = np.zeros(n)
    if s.targets.securities:
        for sym, wt in s.targets.securities.items():
            t_sec[sec_index[sym]] = float(wt)
    elif not s.targets.asset_classes:
        # harvest / raise_cash / invest_cash without targets: keep the current mix, scaled to
        # the value left for securities after floors and cash to raise (harvest: as it is,
        # unless cash is raised); t_sec is a weight of the invested value
        held_w = float(w0.sum())
        spare = 1.0 - float(floor.sum())
        if held_w > 0:
            if s.mode != "harvest":
                budget = spare
            else:
                budget = held_w if not raised_dec else min(held_w, spare)
            t_sec = w0 / held_w * budget
            if raised_dec:
                t_sec = t_sec / max(invested, 1e-12)
    classes = sorted({x.asset_class for x in secs})
    class_index = {c: i for i, c in enumerate(classes)}
    C = len(classes)
    class_of_sec = np.array([class_index[x.asset_class] for x in secs], dtype=int)
    Mc = incidence(class_of_sec, C)
    class_lo = np.full(C, -BIG)
    class_hi = np.full(C, BIG)
    class_target = np.full(C, np.nan)
    cash_lo, cash_hi, cash_target = -BIG, BIG, None
    for t in s.targets.asset_classes:
        lo, hi = t.bounds()
        if t.asset_class == CASH_CLASS:
            cash_target = float(t.target)
            cash_lo = -BIG if lo is None else float(lo)
            cash_hi = BIG if hi is None else float(hi)
            continue
        c = class_index[t.asset_class]
        class_target[c] = float(t.target)
        if lo is not None:
            class_lo[c] = float(lo)
        if hi is not None:
            class_hi[c] = float(hi)
    if not s.targets.securities and s.targets.asset_classes:
        # class targets only: securities inside a class keep their current mix
        for c, name in enumerate(classes):
            members = [i for i, x in enumerate(secs) if x.asset_class == name]
            tgt = 0.0 if np.isnan(class_target[c]) else float(class_target[c])
            held = float(sum(w0[i] for i in members))
            for i in members:
                t_sec[i] = tgt * (w0[i] / held if held > 0 else 1.0 / len(members))
    elif s.targets.securities:
        implied = kernels.csr_matvec(Mc, t_sec)
        for c in range(C):
            if np.isnan(class_target[c]):
                class_target[c] = float(implied[c])

    # ------------------------------------------------------------ risk model
    rm = s.risk_model
    label_index = {lab: i for i, lab in enumerate(rm.labels)}
    sigma_full = rm.matrix()
    if rm.level == "security":
        order = [label_index[x.symbol] for x in secs]
        # the square-root factor of the covariance is remembered per risk model and order
        # (the years of a forecast and re-priced runs share the risk model)
        order_key = np.asarray(order, dtype=np.int64).tobytes().hex()
        sigma = memo(rm, f"sigma:{order_key}", lambda: sigma_full[np.ix_(order, order)])
        dev_of_sec = np.arange(n)
        m = n
        D = incidence(dev_of_sec, m)
        dev_labels = [x.symbol for x in secs]
        t_dev = t_sec.copy()
        if rm.factor_loadings is not None:

            def factor_gt() -> np.ndarray:
                bl = np.array(rm.factor_loadings)[order]
                f = np.array(rm.factor_covariance)
                return np.asarray(_sqrt_factor(f) @ bl.T)

            Gt = memo(rm, f"gt:{order_key}", factor_gt)
            spec = rm.specific_variance
            sig = np.sqrt(np.array(spec)[order]) if spec is not None else np.zeros(n)
        else:
            Gt = memo(rm, f"gt:{order_key}", lambda: _sqrt_factor(sigma))
            sig = np.zeros(n)
    else:
        used = [lab for lab in rm.labels]
        m = len(used)
        dev_of_sec = np.array([label_index[x.asset_class] for x in secs], dtype=int)
        D = incidence(dev_of_sec, m)
        sigma = sigma_full
        dev_labels = list(used)
        if s.targets.securities or not s.targets.asset_classes:
            t_dev = kernels.csr_matvec(D, t_sec)
        else:
            t_dev = np.zeros(m)
            for t in s.targets.asset_classes:
                if t.asset_class in label_index:
                    t_dev[label_index[t.asset_class]] = float(t.target)
        if rm.factor_loadings is not None:
            Gt = memo(
                rm,
                "gt",
                lambda: (
                    _sqrt_factor(np.array(rm.factor_covariance)) @ np.array(rm.factor_loadings).T
                ),
            )
            spec = rm.specific_variance
            sig = np.sqrt(np.array(spec)) if spec is not None else np.zeros(m)
        else:
            Gt = memo(rm, "gt", lambda: _sqrt_factor(sigma))
            sig = np.zeros(m)
    DA = incidence_product((dev_of_sec, m), (pair_sec, n))
    K = incidence_product((class_of_sec, C), (pair_sec, n))

    # ------------------------------------------------------------ restrictions and blocks
    mw_sec = np.full(n, BIG)
    mw_pair = np.full(P, BIG)
    has_pair_max = False
    sell_block: dict[int, list[str]] = {}
    buy_block: dict[int, list[str]] = {}

    def block_sell(j: int, reason: str) -> None:
        sell_block.setdefault(j, []).append(reason)

    def block_buy(k: int, reason: str) -> None:
        buy_block.setdefault(k, []).append(reason)

    for r in s.restrictions:
        i = sec_index[r.symbol]
        accs = range(n_acc) if r.account is None else [acc_index[r.account]]
        if r.no_sell:
            for j in np.nonzero((lot_sec == i) & np.isin(lot_acc, list(accs)))[0].tolist():
                block_sell(j, "no_sell")
        if r.no_buy:
            for ai in accs:
                block_buy(ai * n + i, "no_buy")
        if r.max_weight is not None:
            if r.account is None:
                mw_sec[i] = min(mw_sec[i], float(r.max_weight))
            else:
                ai = acc_index[r.account]
                has_pair_max = True
                # a weight of what stays in the account after the withdrawal
                stays = float(acc_value_dec[ai] - accounts[ai].cash_to_raise)
                mw_pair[ai * n + i] = min(mw_pair[ai * n + i], float(r.max_weight) * stays / V)

    if s.mode == "invest_cash":
        for j in range(L):
            block_sell(j, "mode")
    if s.mode == "raise_cash":
        for k in range(P):
            block_buy(k, "mode")

    # the short-term gains held back (only a lot sold at a gain, short term, in a taxable
    # account can be)
    hold = s.holding
    if settings.no_short_term_gains or hold.hold_back_near_long_term:
        # within ``near_long_term_days`` of long term: long term on that day (a start on or
        # before this one)
        near_until = last_long_term_start(s.as_of + dt.timedelta(days=hold.near_long_term_days))
        for j in np.nonzero(lot_taxable & (lot_g > 0) & ~lot_lt)[0].tolist():
            if settings.no_short_term_gains:
                block_sell(j, "no_short_term_gains")
            if hold.hold_back_near_long_term and lots[j].holding_period_start <= near_until:
                block_sell(j, "near_long_term")

    # ------------------------------------------------------------ wash sales (household-wide)
    groups = sorted({x.identical_group for x in secs})
    group_index = {g: i for i, g in enumerate(groups)}
    sym_group = {x.symbol: x.identical_group for x in secs}
    wash: dict[str, WashInfo] = {}

    def group_of_event(symbol: str, explicit: str | None) -> str:
        return explicit or sym_group.get(symbol, symbol)

    for e in s.wash_sale.recent_buys:
        if e.date >= window_start:
            g = group_of_event(e.symbol, e.identical_group)
            wash.setdefault(g, WashInfo()).recent_buys.append((e.account, e.date.isoformat(), ""))
    for j in in_window:
        lt = lots[j]
        g = sym_group[lt.symbol]
        wash.setdefault(g, WashInfo()).recent_buys.append(
            (lt.account, lt.acquired.isoformat(), lt.lot_id)
        )
    for e in s.wash_sale.recent_loss_sales:
        if e.date >= window_start:
            g = group_of_event(e.symbol, e.identical_group)
            wash.setdefault(g, WashInfo()).recent_loss_sales.append((e.account, e.date.isoformat()))
    for info in wash.values():
        info.recent_buys.sort()
        info.recent_loss_sales.sort()

    group_of_sec = np.array([group_index[x.identical_group] for x in secs], dtype=int)
    if wash:
        # only a sale at a loss (in a taxable account) of a security in a group with a recent
        # buy can be a wash sale
        bought = np.array([bool(wash.get(g) and wash[g].recent_buys) for g in groups], dtype=bool)
        lot_group = group_of_sec[lot_sec]
        for j in np.nonzero((lot_g < 0) & lot_taxable & bought[lot_group])[0].tolist():
            lot_id = lots[j].lot_id
            w_info = wash[groups[lot_group[j]]]
            if any(other != lot_id for _, _, other in w_info.recent_buys):
                block_sell(j, "wash_sale")
        for k, i in enumerate(pair_sec.tolist()):
            b_info = wash.get(secs[i].identical_group)
            if b_info and b_info.recent_loss_sales:
                block_buy(k, "wash_sale")

    # ------------------------------------------------------------ allocation after the withdrawal
    raised_w = float(raise_w.sum())

    def on_invested(bound: np.ndarray) -> np.ndarray:
        return np.where(np.abs(bound) < BIG, bound * invested, bound)

    class_lo_w, class_hi_w, mw_sec_w = (
        on_invested(class_lo),
        on_invested(class_hi),
        on_invested(mw_sec),
    )
    cash_lo_w = cash_lo * invested + raised_w if cash_lo > -BIG else cash_lo
    cash_hi_w = cash_hi * invested + raised_w if cash_hi < BIG else cash_hi
    t_dev = np.asarray(t_dev, dtype=float)

    tax = s.tax
    cap_net = s.budgets.max_net_realized_gain
    cap_st = s.budgets.max_short_term_gain
    ytd_s = tax.realized_ytd_short_term
    ytd_l = tax.realized_ytd_long_term
    return ProblemData(
        snapshot=s,
        settings=settings,
        V=V,
        n=n,
        L=L,
        P=P,
        n_acc=n_acc,
        prices=prices,
        sec_class=[x.asset_class for x in secs],
        sec_group=[x.identical_group for x in secs],
        lot_sec=lot_sec,
        lot_acc=lot_acc,
        lot_q=lot_q,
        lot_u=lot_u,
        lot_g=lot_g,
        lot_taxable=lot_taxable,
        lot_lt=lot_lt,
        pair_acc=pair_acc,
        pair_sec=pair_sec,
        h0=h0,
        S=S,
        A=A,
        Ea=Ea,
        Eb=Eb,
        cash0=cash0,
        floor=floor,
        k_sec=k_sec,
        ticket_fee_w=ticket_fee_w,
        min_trade_w=min_trade_w,
        proxy_rate=proxy_rate,
        drag_sec=drag_sec,
        t_sec=t_sec,
        D=D,
        t_dev=t_dev,
        t_dev_w=t_dev * invested if raised_dec else t_dev.copy(),
        Gt=np.asarray(Gt, dtype=float),
        sig=np.asarray(sig, dtype=float),
        sigma=np.asarray(sigma, dtype=float),
        dev_labels=dev_labels,
        classes=classes,
        Mc=Mc,
        DA=DA,
        K=K,
        dev_of_pair=dev_of_sec[pair_sec],
        class_of_pair=class_of_sec[pair_sec],
        lot_pair=lot_pair,
        class_lo=class_lo,
        class_hi=class_hi,
        class_target=class_target,
        cash_lo=cash_lo,
        cash_hi=cash_hi,
        cash_target=cash_target,
        mw_sec=mw_sec,
        mw_pair=mw_pair,
        class_lo_w=class_lo_w,
        class_hi_w=class_hi_w,
        cash_lo_w=cash_lo_w,
        cash_hi_w=cash_hi_w,
        mw_sec_w=mw_sec_w,
        has_pair_max=has_pair_max,
        sell_block=sell_block,
        buy_block=buy_block,
        tau_s=float(tax.short_term_rate),
        tau_l=float(tax.long_term_rate),
        offset_w=float(tax.ordinary_income_offset) / V,
        ytd_s_w=float(ytd_s) / V,
        ytd_l_w=float(ytd_l) / V,
        cap_net_w=BIG if cap_net is None else float(cap_net - ytd_s - ytd_l) / V,
        cap_st_w=BIG if cap_st is None else float(cap_st - ytd_s) / V,
        wash=wash,
        group_of_lot=group_of_sec[lot_sec] if L else np.zeros(0, dtype=int),
        group_of_pair=group_of_sec[pair_sec],
        groups=groups,
        acc_value=acc_value,
        lot_mv_dec=lot_mv_dec,
        lot_gain_dec=lot_gain_dec,
        fractional=np.array([a.allows_fractional for a in accounts], dtype=bool),
        raise_w=raise_w,
        invested=invested,
        risk_scale=1.0 / max(invested, 0.01) if raised_dec else 1.0,
    )
