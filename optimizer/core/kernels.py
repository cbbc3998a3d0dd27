"""Compiled inner loops of the post-processing (numba): the hard-constraint check of a discrete
trade list and the local search of :func:`optimizer.core.postprocess.improve`.

They are the same arithmetic as the numpy formulation they replace, operation for operation
(sums in index order as ``np.bincount`` and scipy's CSR product make them, ``np.dot`` for the
dot products, numpy's pairwise summation for ``ndarray.sum``; numba contracts no multiply-add
without ``fastmath``), so a trade list is judged and improved to the same bits. What they save is
the interpreter: a run calls the check some twenty times and the local search walks every order
move by move, each step a handful of numpy calls on arrays of a few dozen elements, where the
per-call overhead is most of the cost.

The functions are compiled on first use and cached next to this file (``cache=True``), so a new
process loads machine code instead of compiling it again.

``ST`` below is the tuple :meth:`Evaluator.kernel_state` builds once per run (the arrays and
scalars of the constraints; see ``_state`` for the order).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

# violation kinds, in the order Evaluator.violations reports them
KINDS = (
    "cash",
    "gain_net",
    "gain_st",
    "class_hi",
    "class_lo",
    "max_weight",
    "pair_max",
    "cash_class_lo",
    "cash_class_hi",
)

_EPS = 1e-9
_BAND = 1e-12  # see postprocess._BAND


@njit(cache=True)
def _block(a: Any, lo: int, n: int) -> float:  # pragma: no cover - compiled
    """numpy's ``DOUBLE_pairwise_sum`` of ``a[lo:lo + n]`` for ``n <= 128``."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    stop = n - (n % 8)
    while i < stop:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True)
def _pairwise(a: Any, lo: int, n: int) -> float:  # pragma: no cover - compiled
    """numpy's pairwise summation of ``a[lo:lo + n]``: blocks of at most 128, halves (cut at a
    multiple of 8) added recursively - walked here with an explicit stack, as a cached numba
    function must not call itself."""
    if n <= 128:
        return _block(a, lo, n)
    los = np.empty(64, dtype=np.int64)
    lens = np.empty(64, dtype=np.int64)
    phase = np.zeros(64, dtype=np.int64)
    vals = np.empty(64)
    top, nv = 0, 0
    los[0], lens[0] = lo, n
    while top >= 0:
        start, m = los[top], lens[top]
        if m <= 128:
            vals[nv] = _block(a, start, m)
            nv += 1
            top -= 1
            continue
        n2 = m // 2
        n2 -= n2 % 8
        if phase[top] == 0:
            phase[top] = 1
            top += 1
            los[top], lens[top], phase[top] = start, n2, 0
        elif phase[top] == 1:
            phase[top] = 2
            top += 1
            los[top], lens[top], phase[top] = start + n2, m - n2, 0
        else:
            vals[nv - 2] = vals[nv - 2] + vals[nv - 1]
            nv -= 1
            top -= 1
    return vals[0]


@njit(cache=True)
def np_sum(a: Any) -> float:  # pragma: no cover - compiled
    """``float(a.sum())`` for a contiguous float64 vector, to the bit."""
    return _pairwise(a, 0, a.shape[0])


@njit(cache=True)
def _cash(ST: Any, sell: Any, buy: Any) -> Any:  # pragma: no cover - compiled
    """Cash per account after the trades (weights) and the tickets per account."""
    lp, pp, V, lot_pair, lot_acc, pair_acc = ST[0], ST[1], ST[2], ST[3], ST[4], ST[5]
    sell_net, buy_gross, cash0, fee_w = ST[7], ST[8], ST[9], ST[10]
    n_acc, P = ST[30], pp.shape[0]
    traded = np.zeros(P, dtype=np.bool_)
    for j in range(sell.shape[0]):
        if sell[j] > 0:
            traded[lot_pair[j]] = True
    tickets = np.zeros(n_acc)
    for k in range(P):
        if traded[k] or buy[k] > 0:
            tickets[pair_acc[k]] += 1.0
    # a lot not sold (a pair not bought) adds a zero: skipped, the same sums to the bit
    inflow = np.zeros(n_acc)
    for j in range(sell.shape[0]):
        if sell[j] != 0.0:
            inflow[lot_acc[j]] += (sell[j] * lp[j] / V) * sell_net[j]
    outflow = np.zeros(n_acc)
    for k in range(P):
        if buy[k] != 0.0:
            outflow[pair_acc[k]] += (buy[k] * pp[k] / V) * buy_gross[k]
    cash = np.empty(n_acc)
    for a in range(n_acc):
        cash[a] = cash0[a] + (inflow[a] - outflow[a]) - fee_w * tickets[a]
    return cash, tickets


@njit(cache=True)
def _holdings(ST: Any, sell: Any, buy: Any) -> Any:  # pragma: no cover - compiled
    """Holdings per pair after the trades (weights) and the sale weights."""
    lp, pp, V, lot_pair, h0 = ST[0], ST[1], ST[2], ST[3], ST[17]
    P = pp.shape[0]
    x = np.empty(sell.shape[0])
    for j in range(sell.shape[0]):
        x[j] = sell[j] * lp[j] / V
    sold = np.zeros(P)
    for j in range(sell.shape[0]):
        if x[j] != 0.0:  # adding a zero changes no sum
            sold[lot_pair[j]] += x[j]
    hold = np.empty(P)
    for k in range(P):
        hold[k] = h0[k] + (buy[k] * pp[k] / V - sold[k])
    return hold, x


@njit(cache=True)
def _csr_matvec(indptr: Any, indices: Any, data: Any, v: Any) -> Any:  # pragma: no cover
    out = np.zeros(indptr.shape[0] - 1)
    for r in range(out.shape[0]):
        s = 0.0
        for jj in range(indptr[r], indptr[r + 1]):
            s += data[jj] * v[indices[jj]]
        out[r] = s
    return out


def csr_matvec(m: Any, v: np.ndarray) -> np.ndarray:
    """``m @ v`` for a scipy CSR matrix ``m``: the same sums, in the same order, without the
    dispatch of scipy's operator."""
    out: np.ndarray = _csr_matvec(m.indptr, m.indices, m.data, v)
    return out


@njit(cache=True)
def scatter_matvec(
    indptr: Any, indices: Any, data: Any, v: Any, rows: Any, m: int
) -> Any:  # pragma: no cover - compiled
    """``out = zeros(m); out[rows] = A @ v`` for a CSR matrix ``A`` (sums in scipy's order)."""
    out = np.zeros(m)
    for r in range(indptr.shape[0] - 1):
        s = 0.0
        for jj in range(indptr[r], indptr[r + 1]):
            s += data[jj] * v[indices[jj]]
        out[rows[r]] = s
    return out


@njit(cache=True)
def bounds_rhs(
    vec: Any,
    x0: int,
    xu: Any,
    b0: int,
    bu: Any,
    indptr: Any,
    indices: Any,
    data: Any,
    rows: Any,
    m: int,
) -> Any:  # pragma: no cover - compiled
    """Write the bounds ``xu`` (at ``x0``) and ``bu`` (at ``b0``) into the parameter vector
    ``vec`` and return ``scatter_matvec(indptr, indices, data, vec, rows, m)``; a negative bound
    raises ``ValueError`` (as the parameter's nonnegativity check does)."""
    for i in range(xu.shape[0]):
        if xu[i] < 0.0:
            raise ValueError("parameter xu must be nonnegative")
        vec[x0 + i] = xu[i]
    for i in range(bu.shape[0]):
        if bu[i] < 0.0:
            raise ValueError("parameter bu must be nonnegative")
        vec[b0 + i] = bu[i]
    return scatter_matvec(indptr, indices, data, vec, rows, m)


@njit(cache=True)
def _limits(ST: Any) -> Any:  # pragma: no cover - compiled
    """The class bounds, maximum weights per security and per pair of the state tuple."""
    return ST[22], ST[23], ST[24], ST[25], ST[26]


@njit(cache=True)
def violations(ST: Any, sell: Any, buy: Any, first_only: bool) -> Any:  # pragma: no cover
    """Every hard constraint the trade list breaks: ``(count, kinds, indices, amounts)``
    (kinds index :data:`KINDS`); with ``first_only`` it stops after the first family of
    constraints that has a broken one."""
    V, floor, has_bps = ST[2], ST[11], ST[12]
    gN, gS, cap_net_w, cap_st_w = ST[13], ST[14], ST[15], ST[16]
    K_ptr, K_idx, K_dat, rows = ST[18], ST[19], ST[20], ST[21]
    class_lo_w, class_hi_w, mw_sec_w, has_pair_max, mw_pair = _limits(ST)
    has_cash_class, cash_lo_w, cash_hi_w = ST[27], ST[28], ST[29]
    n_acc, n, pair_sec = ST[30], ST[31], ST[6]
    P = buy.shape[0]
    cap = n_acc + 2 + 2 * rows.shape[0] + n + P + 2
    kinds = np.empty(cap, dtype=np.int64)
    idx = np.empty(cap, dtype=np.int64)
    amt = np.empty(cap)
    c = 0
    cash, tickets = _cash(ST, sell, buy)
    for a in range(n_acc):
        margin = (0.005 * tickets[a] * has_bps - 1e-6) / V
        if cash[a] < floor[a] + margin:
            c = _put(kinds, idx, amt, c, 0, a, floor[a] + margin - cash[a])
    if first_only and c:
        return c, kinds, idx, amt
    hold, x = _holdings(ST, sell, buy)
    R = np.dot(gN, x) if x.shape[0] else 0.0
    if cap_net_w + _EPS * 0.1 < R:
        c = _put(kinds, idx, amt, c, 1, 0, R - cap_net_w + 1e-12)
    R_S = np.dot(gS, x) if x.shape[0] else 0.0
    if cap_st_w + _EPS * 0.1 < R_S:
        c = _put(kinds, idx, amt, c, 2, 0, R_S - cap_st_w + 1e-12)
    if first_only and c:
        return c, kinds, idx, amt
    if rows.shape[0]:
        cw = _csr_matvec(K_ptr, K_idx, K_dat, hold)
        for r in range(rows.shape[0]):
            cl = rows[r]
            if cw[cl] > class_hi_w[cl]:
                c = _put(kinds, idx, amt, c, 3, cl, cw[cl] - class_hi_w[cl])
            if cw[cl] < class_lo_w[cl]:
                c = _put(kinds, idx, amt, c, 4, cl, class_lo_w[cl] - cw[cl])
    if first_only and c:
        return c, kinds, idx, amt
    w = np.zeros(n)
    for k in range(P):
        w[pair_sec[k]] += hold[k]
    for i in range(n):
        if w[i] > mw_sec_w[i]:
            c = _put(kinds, idx, amt, c, 5, i, w[i] - mw_sec_w[i])
    if has_pair_max:
        for k in range(P):
            if hold[k] > mw_pair[k]:
                c = _put(kinds, idx, amt, c, 6, k, hold[k] - mw_pair[k])
    if first_only and c:
        return c, kinds, idx, amt
    if has_cash_class:
        total = np_sum(cash)
        if total < cash_lo_w:
            c = _put(kinds, idx, amt, c, 7, 0, cash_lo_w - total)
        if total > cash_hi_w:
            c = _put(kinds, idx, amt, c, 8, 0, total - cash_hi_w)
    return c, kinds, idx, amt


@njit(cache=True)
def _put(kinds: Any, idx: Any, amt: Any, c: int, kind: int, i: int, amount: float) -> int:
    """Record violation number ``c``; the next number."""  # pragma: no cover - compiled
    kinds[c], idx[c], amt[c] = kind, i, amount
    return c + 1


@njit(cache=True)
def _gains(ST: Any, sell: Any) -> Any:  # pragma: no cover - compiled
    """Realized net gain and its short-term part of the sales (weights): ``gN @ x``, ``gS @ x``."""
    lp, V, gN, gS = ST[0], ST[2], ST[13], ST[14]
    L = sell.shape[0]
    x = np.empty(L)
    for j in range(L):
        x[j] = sell[j] * lp[j] / V
    if not L:
        return 0.0, 0.0
    return np.dot(gN, x), np.dot(gS, x)


@njit(cache=True)
def _feasible(ST: Any, sell: Any, buy: Any) -> bool:  # pragma: no cover - compiled
    return violations(ST, sell, buy, True)[0] == 0


@njit(cache=True)
def _above(value: float, limit: float) -> int:  # pragma: no cover - compiled
    """``value >= limit``: 1 clearly, 0 clearly not, -1 when too close to tell."""
    if value - limit > _BAND:
        return 1
    if limit - value > _BAND:
        return 0
    return -1


@njit(cache=True)
def sigma_col(Gt: Any, sig2: Any, e: int, cols: Any, have: Any) -> Any:  # pragma: no cover
    """Column ``e`` of lambda Sigma = ``Gt^T Gt + diag(sig2)``, computed once per run into
    ``cols[e]`` (``have[e]`` marks it): sums over the factor rows in order."""
    if not have[e]:
        col = cols[e]
        col[:] = 0.0
        for r in range(Gt.shape[0]):
            g = Gt[r, e]
            for i in range(Gt.shape[1]):
                col[i] += Gt[r, i] * g
        col[e] += sig2[e]
        have[e] = True
    return cols[e]


@njit(cache=True)
def sigma_d(Gt: Any, sig2: Any, d: Any) -> Any:  # pragma: no cover - compiled
    """lambda Sigma d = ``Gt^T (Gt d) + sig2 * d`` in loops of a fixed order (the factor's rows
    in order for ``Gt d``, then row by row for ``Gt^T``): the same floats on every machine,
    whatever BLAS numpy has."""
    r, m = Gt.shape
    out = np.zeros(m)
    for i in range(r):
        s = 0.0
        for j in range(m):
            s += Gt[i, j] * d[j]
        for j in range(m):
            out[j] += Gt[i, j] * s
    for j in range(m):
        out[j] += sig2[j] * d[j]
    return out


@njit(cache=True)
def _tax(T: Any, R: float, R_S: float) -> float:  # pragma: no cover - compiled
    """Evaluator.tax_fn: ``T = (ytd, ytd_s, tau_l, tau_s - tau_l, kappa, floor_c, omega)``."""
    R += T[0]
    R_S += T[1]
    f = T[2] * R + T[3] * max(R_S, 0.0)
    return T[6] * max(f, T[4] * f - T[5])


@njit(cache=True)
def improve(
    ST: Any,
    T: Any,
    sell0: Any,
    buy0: Any,
    xu: Any,
    bu: Any,
    lot_q: Any,
    dev_of_pair: Any,
    unit_lot: Any,
    unit_pair: Any,
    k_lot: Any,
    k_pair: Any,
    drag_pair: Any,
    class_of_pair: Any,
    sigma_diag: Any,
    sd0: Any,
    Gt: Any,
    sig2: Any,
    cols: Any,
    have: Any,
    passes: int,
) -> Any:  # pragma: no cover - compiled
    """The local search of :func:`optimizer.core.postprocess.improve` (see there), on arrays.

    ``sd0`` is lambda Sigma d at the start; the columns of lambda Sigma come from
    :func:`sigma_col` (``cols``/``have`` are the run's cache of them). Returns the new
    ``(sell, buy)`` and their :func:`deviation`.
    """
    lp, pp, V, lot_pair, pair_acc, pair_sec = ST[0], ST[1], ST[2], ST[3], ST[5], ST[6]
    floor, has_bps, gN, gS = ST[11], ST[12], ST[13], ST[14]
    K_ptr, K_idx, K_dat, rows = ST[18], ST[19], ST[20], ST[21]
    class_lo_w, class_hi_w, mw_sec_w, has_pair_max, mw_pair = _limits(ST)
    has_cash_class, cash_lo_w, cash_hi_w = ST[27], ST[28], ST[29]
    n_acc, n = ST[30], ST[31]
    L, P = sell0.shape[0], buy0.shape[0]
    sell = sell0.copy()
    buy = buy0.copy()
    sd = sd0.copy()
    R, R_S = _gains(ST, sell)
    # incremental feasibility when the start is feasible
    incremental = _feasible(ST, sell, buy)
    cash, tickets = _cash(ST, sell, buy)
    cash_min = np.empty(n_acc)
    for a in range(n_acc):
        cash_min[a] = floor[a] + (0.005 * tickets[a] * has_bps - 1e-6) / V
    f_R, f_RS = R, R_S
    hold, _x = _holdings(ST, sell, buy)
    cw = _csr_matvec(K_ptr, K_idx, K_dat, hold)
    w = np.zeros(n)
    for k in range(P):
        w[pair_sec[k]] += hold[k]
    total = np_sum(cash)
    bounded = np.zeros(cw.shape[0], dtype=np.bool_)
    for r in range(rows.shape[0]):
        bounded[rows[r]] = True
    cap_net = ST[15] + _EPS * 0.1
    cap_st = ST[16] + _EPS * 0.1
    # cash per account less the floor for the purchases' step (ev.cash_after - floor)
    spare_ok = False
    spare = np.empty(n_acc)
    tax0 = _tax(T, R, R_S)
    for _p in range(passes):
        changed = False
        nb = 0
        for k in range(P):
            if buy[k] > 0 and bu[k] > 0:
                nb += 1
        ns = 0
        for j in range(L):
            if sell[j] > 0 and xu[j] > 0 and sell[j] < lot_q[j] - 1e-12:
                ns += 1
        if nb == 0 and ns == 0:
            break
        mv_idx = np.empty(nb + ns, dtype=np.int64)
        mv_room = np.zeros(nb + ns)
        m = 0
        for k in range(P):
            if buy[k] > 0 and bu[k] > 0:
                mv_idx[m] = k
                m += 1
        for j in range(L):
            if sell[j] > 0 and xu[j] > 0 and sell[j] < lot_q[j] - 1e-12:
                mv_idx[m] = j
                mv_room[m] = lot_q[j] - sell[j]
                m += 1
        for m in range(nb + ns):
            is_buy = m < nb
            idx = mv_idx[m]
            if is_buy:
                k = idx
                unit = unit_pair[k]
                price = pp[k]
                kc = k_pair[k]
            else:
                k = lot_pair[idx]
                unit = unit_lot[idx]
                price = lp[idx]
                kc = k_lot[idx]
            e = dev_of_pair[k]
            drag = drag_pair[k]
            if is_buy:
                rate = kc + drag
                best = -(2.0 * sd[e] + rate) / (2.0 * max(sigma_diag[e], 1e-18))
                if not spare_ok:
                    c_now, _t = _cash(ST, sell, buy)
                    for a in range(n_acc):
                        spare[a] = c_now[a] - floor[a]
                    spare_ok = True
                best = min(best, spare[pair_acc[k]] / (1.0 + kc))
                units = max(1.0, np.floor(best * V / price / unit))
                unit *= units
                delta = unit * price / V
                dR = 0.0
                dS = 0.0
                lin = rate * delta
                dcash = -(delta * (1.0 + kc))
            else:
                unit = min(unit, mv_room[m])
                wgt = unit * price / V
                delta = -wgt
                dR = gN[idx] * wgt
                dS = gS[idx] * wgt
                lin = kc * wgt - drag * wgt
                dcash = wgt * (1.0 - kc)
            d_te = 2.0 * delta * sd[e] + delta * delta * sigma_diag[e]
            gain = d_te + _tax(T, R + dR, R_S + dS) - tax0 + lin
            if gain >= -1e-15:
                continue
            ok = -1
            if incremental:
                a, cl, i = pair_acc[k], class_of_pair[k], pair_sec[k]
                ok = _above(cash[a] + dcash, cash_min[a])
                if dR != 0.0 and ok != 0:
                    t = _above(cap_net, f_R + dR)
                    ok = 0 if t == 0 else (-1 if t == -1 else ok)
                if dS != 0.0 and ok != 0:
                    t = _above(cap_st, f_RS + dS)
                    ok = 0 if t == 0 else (-1 if t == -1 else ok)
                if bounded[cl] and ok != 0:
                    cwv = cw[cl] + delta
                    t = _above(class_hi_w[cl], cwv)
                    ok = 0 if t == 0 else (-1 if t == -1 else ok)
                    if ok != 0:
                        t = _above(cwv, class_lo_w[cl])
                        ok = 0 if t == 0 else (-1 if t == -1 else ok)
                if ok != 0:
                    t = _above(mw_sec_w[i], w[i] + delta)
                    ok = 0 if t == 0 else (-1 if t == -1 else ok)
                if has_pair_max and ok != 0:
                    t = _above(mw_pair[k], hold[k] + delta)
                    ok = 0 if t == 0 else (-1 if t == -1 else ok)
                if has_cash_class and ok != 0:
                    tot = total + dcash
                    t = _above(tot, cash_lo_w)
                    ok = 0 if t == 0 else (-1 if t == -1 else ok)
                    if ok != 0:
                        t = _above(cash_hi_w, tot)
                        ok = 0 if t == 0 else (-1 if t == -1 else ok)
            if ok == 0:
                continue
            if is_buy:
                old = buy[idx]
                buy[idx] += unit
            else:
                old = sell[idx]
                sell[idx] += unit
            if ok == -1 and not _feasible(ST, sell, buy):
                if is_buy:
                    buy[idx] = old
                else:
                    sell[idx] = old
                continue
            if incremental:
                a, cl, i = pair_acc[k], class_of_pair[k], pair_sec[k]
                cash[a] += dcash
                total += dcash
                f_R += dR
                f_RS += dS
                hold[k] += delta
                cw[cl] += delta
                w[i] += delta
            spare_ok = False
            col = sigma_col(Gt, sig2, e, cols, have)
            for r in range(sd.shape[0]):
                sd[r] += delta * col[r]
            R, R_S = R + dR, R_S + dS
            tax0 = _tax(T, R, R_S)
            changed = True
        if not changed:
            break
    return sell, buy, deviation(ST, sell, buy)


@njit(cache=True)
def order_arrays(lot_pair: Any, pp: Any, sell: Any, buy: Any) -> Any:  # pragma: no cover
    """The tickets of a trade list as arrays: ``(sides, pairs, values, lot_ptr, lot_idx)``,
    sales first (one per pair with a lot sold, pairs ascending, its lots
    ``lot_idx[lot_ptr[o]:lot_ptr[o + 1]]`` ascending), then purchases (pairs ascending);
    ``sides`` is 1 for a sale, 0 for a purchase; ``values`` in dollars: shares sold per pair
    (added lot by lot in lot order, as ``np.bincount``) or bought, times the price."""
    L, P = sell.shape[0], buy.shape[0]
    shares = np.zeros(P)
    count = np.zeros(P, dtype=np.int64)
    for j in range(L):
        if sell[j] > 0:
            shares[lot_pair[j]] += sell[j]
            count[lot_pair[j]] += 1
    n_sell = 0
    n_lots = 0
    n_buy = 0
    for k in range(P):
        if count[k]:
            n_sell += 1
            n_lots += count[k]
        if buy[k] > 0:
            n_buy += 1
    n = n_sell + n_buy
    sides = np.empty(n, dtype=np.int64)
    pairs = np.empty(n, dtype=np.int64)
    values = np.empty(n)
    lot_ptr = np.zeros(n + 1, dtype=np.int64)
    lot_idx = np.empty(n_lots, dtype=np.int64)
    fill = np.zeros(P, dtype=np.int64)
    o = 0
    pos = 0
    for k in range(P):
        if count[k]:
            sides[o], pairs[o], values[o] = 1, k, shares[k] * pp[k]
            fill[k] = pos
            pos += count[k]
            lot_ptr[o + 1] = pos
            o += 1
    for j in range(L):
        if sell[j] > 0:
            lot_idx[fill[lot_pair[j]]] = j
            fill[lot_pair[j]] += 1
    for k in range(P):
        if buy[k] > 0:
            sides[o], pairs[o], values[o] = 0, k, buy[k] * pp[k]
            lot_ptr[o + 1] = pos
            o += 1
    return sides, pairs, values, lot_ptr, lot_idx


@njit(cache=True)
def smallest_order(lot_pair: Any, pp: Any, sell: Any, buy: Any) -> float:  # pragma: no cover
    """The smallest ticket value of :func:`order_arrays` (``inf`` without any ticket)."""
    out = np.inf
    values = order_arrays(lot_pair, pp, sell, buy)[2]
    for o in range(values.shape[0]):
        out = min(out, values[o])
    return out


@njit(cache=True)
def deviation(ST: Any, sell: Any, buy: Any) -> Any:  # pragma: no cover - compiled
    """Deviation from target per risk label after the trades (weights):
    ``D A (h0 + b - S x) - t_dev_w``, the product in scipy's CSR order."""
    hold, _x = _holdings(ST, sell, buy)
    d = _csr_matvec(ST[32], ST[33], ST[34], hold)
    t_dev_w = ST[35]
    for i in range(d.shape[0]):
        d[i] = d[i] - t_dev_w[i]
    return d


@njit(cache=True)
def _dot(a: Any, b: Any) -> float:  # pragma: no cover - compiled
    """``a @ b`` of two float64 vectors (``np.dot``; 0.0 when empty)."""
    return np.dot(a, b) if a.shape[0] else 0.0


@njit(cache=True)
def objective_terms(
    ST: Any, T: Any, k_lot: Any, k_pair: Any, drag_pair: Any, sell: Any, buy: Any
) -> Any:  # pragma: no cover - compiled
    """The parts of :meth:`Evaluator.objective` but lambda TE^2: ``(d, tax, lin, drag)`` with
    ``d`` the deviation (see :func:`deviation`), the model tax of the sales, the bps costs plus
    ticket fees and the asset-location drag (weights)."""
    lp, pp, V, lot_pair, h0, fee_w = ST[0], ST[1], ST[2], ST[3], ST[17], ST[10]
    L, P = sell.shape[0], buy.shape[0]
    x = np.empty(L)
    for j in range(L):
        x[j] = sell[j] * lp[j] / V
    b = np.empty(P)
    for k in range(P):
        b[k] = buy[k] * pp[k] / V
    sold = np.zeros(P)
    traded = np.zeros(P, dtype=np.bool_)
    for j in range(L):
        sold[lot_pair[j]] += x[j]
        if sell[j] > 0:
            traded[lot_pair[j]] = True
    net = np.empty(P)
    hold = np.empty(P)
    tickets = 0.0
    for k in range(P):
        net[k] = b[k] - sold[k]
        hold[k] = h0[k] + net[k]
        if traded[k] or buy[k] > 0:
            tickets += 1.0
    d = _csr_matvec(ST[32], ST[33], ST[34], hold)
    t_dev_w = ST[35]
    for i in range(d.shape[0]):
        d[i] = d[i] - t_dev_w[i]
    lin = _dot(k_lot, x) + _dot(k_pair, b) + fee_w * tickets
    drag = _dot(drag_pair, net)
    tax = _tax(T, _dot(ST[13], x), _dot(ST[14], x))
    return d, tax, lin, drag


def violation_list(ST: tuple[Any, ...], sell: np.ndarray, buy: np.ndarray) -> list[Any]:
    """Evaluator.violations from the compiled check."""
    from optimizer.core.postprocess import Violation

    c, kinds, idx, amt = violations(ST, sell, buy, False)
    if not c:
        return []
    return [
        Violation(KINDS[k], i, a)
        for k, i, a in zip(kinds[:c].tolist(), idx[:c].tolist(), amt[:c].tolist(), strict=True)
    ]


def feasible(ST: tuple[Any, ...], sell: np.ndarray, buy: np.ndarray) -> bool:
    """No hard constraint broken (the first violation found ends the check)."""
    return bool(_feasible(ST, sell, buy))


@njit(cache=True)
def drop_judged(
    ST: Any,
    T: Any,
    sell0: Any,
    buy0: Any,
    min_trade_value: float,
    use_fee_test: bool,
    k_lot: Any,
    k_pair: Any,
    drag_pair: Any,
    dev_of_pair: Any,
    sigma_diag: Any,
    sd0: Any,
    Gt: Any,
    sig2: Any,
    cols: Any,
    have: Any,
) -> Any:  # pragma: no cover - compiled
    """The loop of :func:`optimizer.core.postprocess.drop_orders`: the tickets of ``(sell0,
    buy0)`` (:func:`order_arrays`) taken smallest first (:func:`stable_order`), each removed when
    it is below the minimum or not worth its cost and the rest stays feasible; then the result
    judged: whether it breaks no hard constraint, its smallest ticket and
    :func:`objective_terms`. Returns ``(sell, buy, status, sides, pairs, values, lot_ptr,
    lot_idx, perm, feasible, smallest, d, tax, lin, drag)``, ``status`` per ticket 0 (kept), 1
    (removed) or 2 (too small, but its removal would break a hard constraint)."""
    sides, pairs, values, lot_ptr, lot_idx = order_arrays(ST[3], ST[1], sell0, buy0)
    perm = stable_order(values, sides, pairs)
    lp, V, fee_w, gN, gS = ST[0], ST[2], ST[10], ST[13], ST[14]
    sell = sell0.copy()
    buy = buy0.copy()
    sd = sd0.copy()
    R, R_S = _gains(ST, sell)
    base_tax = _tax(T, R, R_S)
    n_orders = sides.shape[0]
    status = np.zeros(n_orders, dtype=np.int64)
    for oo in range(n_orders):
        o = perm[oo]
        k = pairs[o]
        small = values[o] < min_trade_value - 1e-9
        e = dev_of_pair[k]
        a, z = lot_ptr[o], lot_ptr[o + 1]
        if sides[o] == 0:
            delta = values[o] / V
            dR = 0.0
            dS = 0.0
            lin = k_pair[k] * delta + drag_pair[k] * delta
        else:
            n_l = z - a
            xo = np.empty(n_l)
            g_n = np.empty(n_l)
            g_s = np.empty(n_l)
            k_l = np.empty(n_l)
            for t in range(n_l):
                j = lot_idx[a + t]
                xo[t] = sell[j] * lp[j] / V
                g_n[t] = gN[j]
                g_s[t] = gS[j]
                k_l[t] = k_lot[j]
            delta = -np_sum(xo)
            dR = np.dot(g_n, xo)
            dS = np.dot(g_s, xo)
            lin = np.dot(k_l, xo) + drag_pair[k] * delta
        d_te = -2.0 * delta * sd[e] + delta * delta * sigma_diag[e]
        new_tax = _tax(T, R - dR, R_S - dS)
        benefit = -(d_te + new_tax - base_tax - lin - fee_w)
        if not small and (not use_fee_test or benefit <= 1e-12):
            continue
        if sides[o] == 0:
            old = buy[k]
            buy[k] = 0.0
        else:
            saved = np.empty(z - a)
            for t in range(z - a):
                saved[t] = sell[lot_idx[a + t]]
                sell[lot_idx[a + t]] = 0.0
        if not _feasible(ST, sell, buy):
            if sides[o] == 0:
                buy[k] = old
            else:
                for t in range(z - a):
                    sell[lot_idx[a + t]] = saved[t]
            if small:
                status[o] = 2
            continue
        status[o] = 1
        col = sigma_col(Gt, sig2, e, cols, have)
        for r in range(sd.shape[0]):
            sd[r] = sd[r] - delta * col[r]
        R, R_S = R - dR, R_S - dS
        base_tax = new_tax
    ok = _feasible(ST, sell, buy)
    smallest = smallest_order(ST[3], ST[1], sell, buy)
    d, tax, lin, drag = objective_terms(ST, T, k_lot, k_pair, drag_pair, sell, buy)
    return (
        sell, buy, status, sides, pairs, values, lot_ptr, lot_idx, perm, ok, smallest, d, tax,
        lin, drag,
    )  # fmt: skip


@njit(cache=True)
def round_solution(
    x: Any,
    b: Any,
    V: float,
    lp: Any,
    pp: Any,
    lot_q: Any,
    unit_lot: Any,
    unit_pair: Any,
    loss_lot: Any,
) -> Any:  # pragma: no cover - compiled
    """:func:`optimizer.core.postprocess.round_solution`, element by element."""
    L, P = x.shape[0], b.shape[0]
    sell = np.empty(L)
    for j in range(L):
        s = x[j] * V / lp[j]
        q, unit = lot_q[j], unit_lot[j]
        if loss_lot[j]:
            r = np.ceil(s / unit - 1e-6) * unit + 0.0
        else:
            r = np.floor(s / unit + 1e-6) * unit + 0.0
        if r >= q - 1e-12:
            r = q
        if s <= 1e-9 * (q if q >= 1.0 else 1.0):
            sell[j] = 0.0
        elif s >= q * (1 - 1e-6) - 1e-9:
            sell[j] = q
        else:
            sell[j] = r
    buy = np.empty(P)
    for k in range(P):
        cont = b[k] * V / pp[k]
        v = np.floor(cont / unit_pair[k] + 1e-6) * unit_pair[k]
        if cont <= 0:
            v = 0.0
        buy[k] = v if (v >= 0.0 or v != v) else 0.0
    return sell, buy


# ---------------------------------------------------------------- one call per round
# The rounding round of optimizer.core.engine._postprocess (round, check, improve, drop, judge
# the result) as one compiled call (round_step) instead of ten: the same kernels in the same
# order, so the same floats as the separate calls (lambda Sigma d is sigma_d's in both).
# round_checked is the round alone (a round whose rounding breaks a hard constraint is repaired
# in Python before it is improved and dropped).


@njit(cache=True)
def round_checked(
    ST: Any, x: Any, b: Any, lot_q: Any, unit_lot: Any, unit_pair: Any, loss_lot: Any
) -> Any:  # pragma: no cover - compiled
    """:func:`round_solution` of ``(x, b)``, whether it breaks no hard constraint, and (when
    it does not) its :func:`deviation`: ``(sell, buy, feasible, d)``."""
    sell, buy = round_solution(x, b, ST[2], ST[0], ST[1], lot_q, unit_lot, unit_pair, loss_lot)
    if not _feasible(ST, sell, buy):
        return sell, buy, False, np.zeros(0)
    return sell, buy, True, deviation(ST, sell, buy)


@njit(cache=True)
def round_step(
    ST: Any,
    T: Any,
    x: Any,
    b: Any,
    xu: Any,
    bu: Any,
    lot_q: Any,
    unit_lot: Any,
    unit_pair: Any,
    loss_lot: Any,
    dev_of_pair: Any,
    k_lot: Any,
    k_pair: Any,
    drag_pair: Any,
    class_of_pair: Any,
    sigma_diag: Any,
    Gt: Any,
    sig2: Any,
    cols: Any,
    have: Any,
    passes: int,
    min_trade_value: float,
    use_fee_test: bool,
) -> Any:  # pragma: no cover - compiled
    """A whole rounding round: :func:`round_checked`; when the rounded list breaks no hard
    constraint, :func:`improve` from it and :func:`drop_judged` of the improved list (lambda
    Sigma d of each start from :func:`sigma_d`). Returns ``(feasible, sell, buy, *drop)``:
    the rounded list when it is not feasible (``drop`` then holds empty arrays), else the
    improved list and :func:`drop_judged`'s fifteen values."""
    sell, buy, ok, d = round_checked(ST, x, b, lot_q, unit_lot, unit_pair, loss_lot)
    if not ok:
        e_f = np.zeros(0)
        e_i = np.zeros(0, dtype=np.int64)
        return (
            False, sell, buy, e_f, e_f, e_i, e_i, e_i, e_f, e_i, e_i, e_i, False, 0.0, e_f, 0.0,
            0.0, 0.0,
        )  # fmt: skip
    sell, buy, d = improve(
        ST, T, sell, buy, xu, bu, lot_q, dev_of_pair, unit_lot, unit_pair, k_lot, k_pair,
        drag_pair, class_of_pair, sigma_diag, sigma_d(Gt, sig2, d), Gt, sig2, cols, have, passes,
    )  # fmt: skip
    (dsell, dbuy, status, sides, pairs, values, lot_ptr, lot_idx, perm, dok, smallest, dd, tax,
     lin, drag) = drop_judged(
        ST, T, sell, buy, min_trade_value, use_fee_test, k_lot, k_pair, drag_pair, dev_of_pair,
        sigma_diag, sigma_d(Gt, sig2, d), Gt, sig2, cols, have,
    )  # fmt: skip
    return (
        True, sell, buy, dsell, dbuy, status, sides, pairs, values, lot_ptr, lot_idx, perm, dok,
        smallest, dd, tax, lin, drag,
    )  # fmt: skip


@njit(cache=True)
def stable_order(values: Any, sides: Any, pairs: Any) -> Any:  # pragma: no cover - compiled
    """``np.lexsort((pairs, sides, values))``: by value, then side, then pair (three stable
    sorts, least significant key first)."""
    perm = np.argsort(pairs, kind="mergesort")
    perm = perm[np.argsort(sides[perm], kind="mergesort")]
    return perm[np.argsort(values[perm], kind="mergesort")]
