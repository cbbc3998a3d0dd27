"""Before/after metrics of a trade list, money in exact Decimal.

- ``tracking_error``: sqrt(d' Sigma d), annualized fraction, d = deviation from target in
  risk-label space (securities or asset classes), weights of the pre-trade household value V.
- ``asset_classes``: weight, target and drift (weight - target) per class, plus ``cash``.
- ``drift_total``: half the sum of |drift| over classes with a target (share of capital that is
  misallocated); ``max_abs_drift``: the largest |drift|.
- ``realized``: short/long-term gains and losses realized by this run in taxable accounts
  (dollars); ``realized_tax_deferred``: net gain realized in deferred/exempt accounts (no tax).
- ``estimated_tax``: exact incremental tax of this run, T(ytd + run) - T(ytd), with US netting
  (ST and LT netted separately, then against each other; a net loss deducts up to the
  ordinary-income offset at the short-term rate; the rest carries forward, valued 0 here).
- ``unrealized``: gains and losses still embedded in taxable lots.
- ``turnover``: (purchases + sales) / (2 V); ``tickets``; ``trading_cost``: bps cost + fees.
- ``cash``: total and per account (dollars), as held in the accounts after trading.

With cash to raise (a withdrawal), ``after`` measures the allocation on the value that stays
invested, ``invested_value = V - cash raised``: class weights and drifts, the ``cash`` class
(the cash that stays: total cash minus the cash raised) and the tracking error; it adds
``cash_raised`` (total and per account) and ``invested_value``. ``before`` is the portfolio as it
is (nothing withdrawn yet). ``total_value`` is before the withdrawal.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np

from optimizer.core import kernels
from optimizer.core.model import ProblemData, term_bucket
from optimizer.core.result import Trade, cents
from optimizer.core.snapshot import CASH_CLASS, Snapshot

ZERO = Decimal(0)


def tax_liability(st: Decimal, lt: Decimal, s: Snapshot) -> Decimal:
    """Tax on net short-term ``st`` and long-term ``lt`` gains for the year (dollars)."""
    ts, tl, offset = s.tax.short_term_rate, s.tax.long_term_rate, s.tax.ordinary_income_offset
    if st >= 0 and lt >= 0:
        return ts * st + tl * lt
    net = st + lt
    if net < 0:
        return -ts * min(-net, offset)
    return (ts if st > 0 else tl) * net


def incremental_tax(st_run: Decimal, lt_run: Decimal, s: Snapshot) -> Decimal:
    """Tax caused by this run: T(ytd + run) - T(ytd)."""
    ys, yl = s.tax.realized_ytd_short_term, s.tax.realized_ytd_long_term
    return tax_liability(ys + st_run, yl + lt_run, s) - tax_liability(ys, yl, s)


def holdings_after(s: Snapshot, trades: list[Trade]) -> dict[tuple[str, str], Decimal]:
    """Shares per (account, symbol) after the trades."""
    held: dict[tuple[str, str], Decimal] = {}
    for lt in s.lots:
        held[(lt.account, lt.symbol)] = held.get((lt.account, lt.symbol), ZERO) + lt.quantity
    for t in trades:
        sign = 1 if t.side == "buy" else -1
        held[(t.account, t.symbol)] = held.get((t.account, t.symbol), ZERO) + sign * t.shares
    return held


def cash_after(s: Snapshot, trades: list[Trade]) -> dict[str, Decimal]:
    """Cash per account after the trades, costs and fees."""
    cash = {a.id: a.cash for a in s.accounts}
    for t in trades:
        if t.side == "sell":
            cash[t.account] += t.value - t.cost - t.ticket_fee
        else:
            cash[t.account] -= t.value + t.cost + t.ticket_fee
    return cash


def _unrealized_run(pd: ProblemData, sold: dict[str, Decimal]) -> dict[str, Decimal]:
    """Unrealized short/long-term gains and losses in taxable lots after selling ``sold`` shares
    per lot, from the run's sums over whole lots: a lot sold (in part) leaves its bucket and what
    stays of it comes back (exact: every term is an exact Decimal)."""
    sums = list(pd.unrealized_sums)
    if sold:
        lots = pd.unrealized_lots
        for lot_id, shares in sold.items():
            facts = lots.get(lot_id)
            if facts is None:
                continue  # not a taxable lot
            gain, bucket, long_term, quantity, cost_basis, price = facts
            sums[bucket] -= gain  # the whole lot leaves its bucket
            q = quantity - shares
            if q <= 0:
                continue
            rest = q * price - cost_basis * q / quantity
            sums[term_bucket(rest, long_term)] += rest
    st_g, st_l, lt_g, lt_l = sums
    return {
        "short_term_gains": cents(st_g),
        "short_term_losses": cents(st_l),
        "long_term_gains": cents(lt_g),
        "long_term_losses": cents(lt_l),
    }


def tracking_error(pd: ProblemData, w_sec: np.ndarray) -> float:
    """sqrt(d' Sigma d) for security weights ``w_sec`` (of the value the target applies to)."""
    d = kernels.csr_matvec(pd.D, w_sec) - pd.t_dev
    return float(np.sqrt(max(float(d @ pd.sigma @ d), 0.0)))


def portfolio_metrics(
    pd: ProblemData, trades: list[Trade], *, after: bool | None = None
) -> dict[str, Any]:
    """The metrics dictionary of the portfolio after ``trades``.

    ``after=False`` describes the portfolio before trading (pass ``[]``), ``after=True`` after
    the trades and the withdrawal of the cash to raise (possibly with no trade at all, when the
    accounts already hold the cash); by default ``bool(trades)``.
    """
    s = pd.snapshot
    if after is None:
        after = bool(trades)
    held = dict(pd.holdings_dec)
    for t in trades:
        sign = 1 if t.side == "buy" else -1
        held[(t.account, t.symbol)] = held.get((t.account, t.symbol), ZERO) + sign * t.shares
    cash = cash_after(s, trades)
    price, asset_class, sym_index = pd.security_maps
    V = pd.value_dec
    # after trading, the cash raised leaves: weights of what stays invested
    raised = {a.id: a.cash_to_raise for a in s.accounts if a.cash_to_raise > 0} if after else {}
    raised_total = sum(raised.values(), ZERO)
    base = V - raised_total
    w_list = [0.0] * pd.n
    by_class: dict[str, Decimal] = {c: ZERO for c in pd.classes}
    for (_acc, sym), q in held.items():
        mv = q * price[sym]
        if base > 0:
            w_list[sym_index[sym]] += float(mv / base)
        by_class[asset_class[sym]] += mv
    w_sec = np.array(w_list, dtype=float)
    cash_total = sum(cash.values(), ZERO)
    targets = {t.asset_class: t.target for t in s.targets.asset_classes}
    classes: dict[str, Any] = {}
    drifts: list[float] = []
    for c in [*pd.classes, CASH_CLASS]:
        mv = cash_total - raised_total if c == CASH_CLASS else by_class[c]
        w = float(mv / base) if base > 0 else 0.0
        tgt: float | None
        if c in targets:
            tgt = float(targets[c])
        elif c != CASH_CLASS and s.targets.securities:
            tgt = float(pd.class_target[pd.classes.index(c)])
        else:
            tgt = None
        entry: dict[str, Any] = {"weight": w, "value": str(cents(mv))}
        if tgt is not None:
            entry["target"] = tgt
            entry["drift"] = w - tgt
            drifts.append(w - tgt)
        classes[c] = entry
    sold = {ls.lot_id: ls.shares for t in trades for ls in t.lots}
    st_g = st_l = lt_g = lt_l = deferred = ZERO
    for t in trades:
        for ls in t.lots:
            if not ls.taxable:
                deferred += ls.realized_gain
                continue
            if ls.term == "short":
                st_g, st_l = (
                    (st_g + ls.realized_gain, st_l)
                    if ls.realized_gain >= 0
                    else (st_g, st_l + ls.realized_gain)
                )
            else:
                lt_g, lt_l = (
                    (lt_g + ls.realized_gain, lt_l)
                    if ls.realized_gain >= 0
                    else (lt_g, lt_l + ls.realized_gain)
                )
    buys = sum((t.value for t in trades if t.side == "buy"), ZERO)
    sells = sum((t.value for t in trades if t.side == "sell"), ZERO)
    cost = sum((t.cost + t.ticket_fee for t in trades), ZERO)
    out = {
        "tracking_error": tracking_error(pd, w_sec),
        "asset_classes": classes,
        "drift_total": 0.5 * sum(abs(d) for d in drifts),
        "max_abs_drift": max((abs(d) for d in drifts), default=0.0),
        "realized": {
            "short_term_gains": str(cents(st_g)),
            "short_term_losses": str(cents(st_l)),
            "long_term_gains": str(cents(lt_g)),
            "long_term_losses": str(cents(lt_l)),
            "net": str(cents(st_g + st_l + lt_g + lt_l)),
        },
        "realized_tax_deferred": str(cents(deferred)),
        "estimated_tax": str(cents(incremental_tax(st_g + st_l, lt_g + lt_l, s))),
        "unrealized": _unrealized_run(pd, sold),
        "turnover": float((buys + sells) / (2 * V)) if V > 0 else 0.0,
        "purchases": str(cents(buys)),
        "sales": str(cents(sells)),
        "tickets": len(trades),
        "trading_cost": str(cents(cost)),
        "cash": {
            "total": str(cents(cash_total)),
            "by_account": {k: str(cents(v)) for k, v in sorted(cash.items())},
        },
        "total_value": str(cents(V - cost)),
    }
    if raised:
        out["cash_raised"] = {
            "total": str(cents(raised_total)),
            "by_account": {k: str(cents(v)) for k, v in sorted(raised.items())},
        }
        out["invested_value"] = str(cents(base))
    return out
