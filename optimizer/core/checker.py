"""Independent hard-constraint checker.

Written without cvxpy, numpy or anything from the optimization path: it re-derives every hard
constraint from the raw snapshot in exact ``Decimal`` arithmetic and checks a proposed trade list
against it. The engine runs every result through :func:`check`; a result with a violation is
never returned as feasible.

Definitions (shared with the documentation):

- household value ``V`` = sum of account cash + sum over lots of quantity x price (before trading);
  cash to raise is withdrawn after trading, so post-trade weights are market values after
  trading divided by the value that stays invested, ``V - sum of cash to raise``; the ``cash``
  class is the cash that stays (total cash after trading minus the cash to raise); a
  per-account maximum weight or cash-floor weight is a weight of the account's value minus its
  cash to raise.
- proportional cost of an order = value x (costs.bps + security.cost_bps) / 10,000, rounded half-up
  to cents; every order pays ``costs.ticket_fee``.
- cash after = cash + sale values - purchase values - costs - ticket fees (per account; cash
  never moves between accounts).
- realized gain of a lot sale = shares x price - cost_basis x shares / quantity.
- a sale is long term when ``as_of`` is after the one-year anniversary of the holding period start.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from optimizer.core.result import Trade
from optimizer.core.snapshot import CASH_CLASS, Lot, Snapshot

ZERO = Decimal(0)
MONEY_TOL = Decimal("0.01")
WEIGHT_TOL = Decimal("1e-9")
FRACTION_QUANTUM = Decimal("0.001")


@dataclass(frozen=True)
class CheckPolicy:
    """Run-level switches the checker needs besides the snapshot (resolved scenario knobs)."""

    no_short_term_gains: bool


@functools.lru_cache(maxsize=65536)
def _anniversary_plus_one(start: dt.date) -> dt.date:
    try:
        ann = dt.date(start.year + 1, start.month, start.day)
    except ValueError:
        ann = dt.date(start.year + 1, 2, 28)
    return ann + dt.timedelta(days=1)


def _long_term(lot: Lot, as_of: dt.date) -> bool:
    return as_of >= _anniversary_plus_one(lot.holding_period_start)


_CENT = Decimal("0.01")
_BPS = Decimal(10000)
_ONE = Decimal(1)


def _order_cost(value: Decimal, bps: Decimal) -> Decimal:
    return (value * bps / _BPS).quantize(_CENT, rounding=ROUND_HALF_UP)


def _where(t: Trade) -> str:
    """How an error message names a trade."""
    return f"{t.side} {t.shares} {t.symbol} in {t.account}"


class CheckIndex:
    """What the checker derives from the snapshot alone (before looking at any trade): the
    securities, accounts and lots by key, whether a sale of each lot today is long term, the
    holdings and values before trading and the wash-sale window. Built once per snapshot;
    :func:`check` builds it when not given one (the engine builds it while the solver runs).
    Read-only once built."""

    def __init__(self, snapshot: Snapshot) -> None:
        s = snapshot
        self.snapshot = s
        self.price = {x.symbol: x.price for x in s.securities}
        self.sec = {x.symbol: x for x in s.securities}
        self.accounts = {a.id: a for a in s.accounts}
        self.lots = {lt.lot_id: lt for lt in s.lots}
        # whether a sale of each lot today is long term, by lot id
        self.long_term = {lt.lot_id: _long_term(lt, s.as_of) for lt in s.lots}
        self.wash = _WashIndex(s)
        held: dict[tuple[str, str], Decimal] = {}
        for lt in s.lots:
            held[(lt.account, lt.symbol)] = held.get((lt.account, lt.symbol), ZERO) + lt.quantity
        self.held = held
        acc_value = {a.id: a.cash for a in s.accounts}
        for (acc, sym), q in held.items():
            acc_value[acc] += q * self.price[sym]
        self.acc_value = acc_value
        self.V = sum(acc_value.values(), Decimal(0))


def check(
    snapshot: Snapshot,
    trades: list[Trade],
    policy: CheckPolicy,
    index: CheckIndex | None = None,
) -> list[str]:
    """Every hard-constraint violation of ``trades`` (empty list = the trade list is valid).

    ``index`` (optional) is :class:`CheckIndex` of this very snapshot."""
    s = snapshot
    if index is None or index.snapshot is not s:
        index = CheckIndex(s)
    errors: list[str] = []
    price, sec, accounts, lots, long_term, wash = (
        index.price,
        index.sec,
        index.accounts,
        index.lots,
        index.long_term,
        index.wash,
    )

    # ---------------------------------------------------------------- values before trading
    held = dict(index.held)  # becomes the holdings after trading below
    acc_value = index.acc_value
    V = index.V

    # ---------------------------------------------------------------- per-trade checks
    cash = {a.id: a.cash for a in s.accounts}
    sold_lots: dict[str, Decimal] = {}
    groups_sold: set[str] = set()
    groups_bought: set[str] = set()
    seen_orders: set[tuple[str, str, str]] = set()
    realized_net = Decimal(0)
    realized_st = Decimal(0)
    loss_groups: set[str] = set()
    for t in trades:
        if t.account not in accounts:
            errors.append(f"{_where(t)}: unknown account")
            continue
        if t.symbol not in sec:
            errors.append(f"{_where(t)}: unknown security")
            continue
        key = (t.account, t.symbol, t.side)
        if key in seen_orders:
            errors.append(
                f"{_where(t)}: more than one {t.side} order for the same security and account"
            )
        seen_orders.add(key)
        acct = accounts[t.account]
        if t.price != price[t.symbol]:
            errors.append(
                f"{_where(t)}: price {t.price} differs from the snapshot price {price[t.symbol]}"
            )
        if t.shares <= 0:
            errors.append(f"{_where(t)}: shares must be positive")
        if t.value != t.shares * price[t.symbol]:
            errors.append(f"{_where(t)}: value {t.value} is not shares x price")
        if t.value < s.costs.min_trade_value:
            errors.append(
                f"{_where(t)}: value {t.value:.2f} is below the minimum trade value {s.costs.min_trade_value}"
            )
        bps = s.costs.bps + sec[t.symbol].cost_bps
        if t.cost != _order_cost(t.value, bps):
            errors.append(f"{_where(t)}: cost {t.cost} differs from {bps} bps of the value")
        if t.ticket_fee != s.costs.ticket_fee:
            errors.append(
                f"{_where(t)}: ticket fee {t.ticket_fee} differs from {s.costs.ticket_fee}"
            )
        group = sec[t.symbol].identical_group
        restr = [
            r for r in s.restrictions if r.symbol == t.symbol and r.account in (None, t.account)
        ]
        if t.side == "sell":
            groups_sold.add(group)
            cash[t.account] += t.value - t.cost - t.ticket_fee
            if s.mode == "invest_cash":
                errors.append(f"{_where(t)}: mode invest_cash does not sell")
            if any(r.no_sell for r in restr):
                errors.append(f"{_where(t)}: no-sell restriction")
            total = Decimal(0)
            for ls in t.lots:
                lot = lots.get(ls.lot_id)
                if lot is None:
                    errors.append(f"{_where(t)}: unknown lot {ls.lot_id}")
                    continue
                total += ls.shares
                if lot.account != t.account or lot.symbol != t.symbol:
                    errors.append(
                        f"{_where(t)}: lot {lot.lot_id} belongs to {lot.account}/{lot.symbol}"
                    )
                if ls.lot_id in sold_lots:
                    errors.append(f"{_where(t)}: lot {lot.lot_id} sold twice")
                sold_lots[ls.lot_id] = ls.shares
                if ls.shares <= 0 or ls.shares > lot.quantity:
                    errors.append(
                        f"{_where(t)}: lot {lot.lot_id} sale of {ls.shares} outside (0, {lot.quantity}]"
                    )
                if ls.shares != lot.quantity:
                    quantum = FRACTION_QUANTUM if acct.allows_fractional else _ONE
                    if ls.shares % quantum != 0:
                        errors.append(
                            f"{_where(t)}: lot {lot.lot_id} sale of {ls.shares} is not in whole units"
                        )
                gain = ls.shares * price[t.symbol] - lot.cost_basis * ls.shares / lot.quantity
                if abs(gain - ls.realized_gain) > MONEY_TOL:
                    errors.append(
                        f"{_where(t)}: lot {lot.lot_id} realized gain {ls.realized_gain} should be {gain:.2f}"
                    )
                lt_sale = long_term[ls.lot_id]
                if ls.term != ("long" if lt_sale else "short"):
                    errors.append(f"{_where(t)}: lot {lot.lot_id} term {ls.term} is wrong")
                if not acct.taxable:
                    continue
                realized_net += gain
                if not lt_sale:
                    realized_st += gain
                if gain < 0:
                    loss_groups.add(group)
                    conflict = wash.recent_buy(group, lot)
                    if conflict:
                        errors.append(
                            f"{_where(t)}: loss sale of lot {lot.lot_id} is a wash sale (buy {conflict})"
                        )
                if gain > 0 and not lt_sale:
                    if policy.no_short_term_gains:
                        errors.append(f"{_where(t)}: lot {lot.lot_id} realizes a short-term gain")
                    days = (_anniversary_plus_one(lot.holding_period_start) - s.as_of).days
                    if s.holding.hold_back_near_long_term and days <= s.holding.near_long_term_days:
                        errors.append(
                            f"{_where(t)}: lot {lot.lot_id} is {days} days from long term and held back"
                        )
            if total != t.shares:
                errors.append(f"{_where(t)}: lot shares add up to {total}")
        elif t.side == "buy":
            groups_bought.add(group)
            cash[t.account] -= t.value + t.cost + t.ticket_fee
            if s.mode == "raise_cash":
                errors.append(f"{_where(t)}: mode raise_cash does not buy")
            if any(r.no_buy for r in restr):
                errors.append(f"{_where(t)}: no-buy restriction")
            if not acct.allows_fractional and t.shares % 1 != 0:
                errors.append(
                    f"{_where(t)}: fractional shares in an account that does not allow them"
                )
            if acct.allows_fractional and t.shares % FRACTION_QUANTUM != 0:
                errors.append(f"{_where(t)}: shares finer than {FRACTION_QUANTUM}")
            recent_loss = wash.recent_loss_sale(group)
            if recent_loss:
                errors.append(
                    f"{_where(t)}: buy within the wash-sale window of a loss sale ({recent_loss})"
                )
            held[(t.account, t.symbol)] = held.get((t.account, t.symbol), Decimal(0)) + t.shares
            continue
        else:
            errors.append(f"{_where(t)}: side must be buy or sell")
            continue
        held[(t.account, t.symbol)] = held.get((t.account, t.symbol), Decimal(0)) - t.shares

    for g in sorted(groups_sold & groups_bought):
        errors.append(f"identical group {g} is both bought and sold in one run")
    for g in sorted(loss_groups & groups_bought):
        errors.append(f"identical group {g}: a loss sale and a buy in the same run (wash sale)")

    # ---------------------------------------------------------------- budgets
    ytd_st = s.tax.realized_ytd_short_term
    ytd_net = ytd_st + s.tax.realized_ytd_long_term
    cap = s.budgets.max_net_realized_gain
    if cap is not None and realized_net > 0 and ytd_net + realized_net > cap + MONEY_TOL:
        errors.append(
            f"net realized gain {ytd_net + realized_net:.2f} (with year to date) exceeds the budget {cap}"
        )
    cap_st = s.budgets.max_short_term_gain
    if cap_st is not None and realized_st > 0 and ytd_st + realized_st > cap_st + MONEY_TOL:
        errors.append(
            f"short-term gain {ytd_st + realized_st:.2f} (with year to date) exceeds the budget {cap_st}"
        )

    # ---------------------------------------------------------------- cash per account
    for a in s.accounts:
        floor = a.cash_floor
        if a.cash_floor_weight is not None:
            floor = max(floor, a.cash_floor_weight * (acc_value[a.id] - a.cash_to_raise))
        need = floor + a.cash_to_raise
        if cash[a.id] < need - MONEY_TOL:
            errors.append(
                f"account {a.id}: cash after trading {cash[a.id]:.2f} is below the required {need:.2f}"
            )

    # ---------------------------------------------------------------- weights after trading
    raised = sum((a.cash_to_raise for a in s.accounts), Decimal(0))
    invested = V - raised  # what stays after the withdrawal
    if invested > 0:
        by_class: dict[str, Decimal] = {}
        by_symbol: dict[str, Decimal] = {}
        for (acc, sym), q in held.items():
            if q < 0:
                errors.append(f"account {acc}: negative position in {sym}")
            mv = q * price[sym]
            by_symbol[sym] = by_symbol.get(sym, Decimal(0)) + mv
            cls = sec[sym].asset_class
            by_class[cls] = by_class.get(cls, Decimal(0)) + mv
        cash_kept = sum(cash.values(), Decimal(0)) - raised
        for t_ in s.targets.asset_classes:
            lo, hi = t_.bounds()
            mv = (
                cash_kept
                if t_.asset_class == CASH_CLASS
                else by_class.get(t_.asset_class, Decimal(0))
            )
            w = mv / invested
            if lo is not None and w < lo - WEIGHT_TOL:
                errors.append(f"asset class {t_.asset_class}: weight {w:.6f} below its bound {lo}")
            if hi is not None and w > hi + WEIGHT_TOL:
                errors.append(f"asset class {t_.asset_class}: weight {w:.6f} above its bound {hi}")
        for r in s.restrictions:
            if r.max_weight is None:
                continue
            if r.account is None:
                w = by_symbol.get(r.symbol, Decimal(0)) / invested
            else:
                base = acc_value[r.account] - accounts[r.account].cash_to_raise
                w = (
                    held.get((r.account, r.symbol), Decimal(0)) * price[r.symbol] / base
                    if base > 0
                    else Decimal(0)
                )
            if w > r.max_weight + WEIGHT_TOL:
                errors.append(f"{r.symbol}: weight {w:.6f} above its maximum {r.max_weight}")
    return errors


def _window_start(s: Snapshot) -> dt.date:
    return s.as_of - dt.timedelta(days=s.wash_sale.window_days)


class _WashIndex:
    """The wash-sale window of a snapshot by identical group, built once per check: the first
    recent buy event, the lots acquired inside the window (in lot order) and the first recent
    loss sale of each group."""

    def __init__(self, s: Snapshot) -> None:
        start = _window_start(s)
        group = {x.symbol: x.identical_group for x in s.securities}

        def group_of(symbol: str, explicit: str | None) -> str:
            return explicit or group.get(symbol, symbol)

        self.buy_event: dict[str, str] = {}
        for e in s.wash_sale.recent_buys:
            g = group_of(e.symbol, e.identical_group)
            if e.date >= start and g not in self.buy_event:
                self.buy_event[g] = f"{e.account} {e.date.isoformat()}"
        self.window_lots: dict[str, list[Lot]] = {}
        for other in s.lots:
            if other.acquired >= start:
                self.window_lots.setdefault(group_of(other.symbol, None), []).append(other)
        self.loss_sale: dict[str, str] = {}
        for e in s.wash_sale.recent_loss_sales:
            g = group_of(e.symbol, e.identical_group)
            if e.date >= start and g not in self.loss_sale:
                self.loss_sale[g] = f"{e.account} {e.date.isoformat()}"

    def recent_buy(self, group: str, lot: Lot) -> str:
        """The first buy of ``group`` inside the window other than ``lot`` itself ('' if none)."""
        if group in self.buy_event:
            return self.buy_event[group]
        for other in self.window_lots.get(group, ()):
            if other.lot_id != lot.lot_id:
                return f"{other.account} {other.acquired.isoformat()}"
        return ""

    def recent_loss_sale(self, group: str) -> str:
        """The first loss sale of ``group`` inside the window ('' if none)."""
        return self.loss_sale.get(group, "")
