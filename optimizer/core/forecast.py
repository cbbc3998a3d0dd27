"""Multi-year forecast: successive yearly runs under the annual gain budget.

Year 1 is the run itself. For each further year the trades of the previous year are applied
(sold shares leave their lots, purchases become new lots acquired on that year's date at the
trade price, cash moves by values, costs and fees, the cash raised is withdrawn), the date moves 365 days forward so lots age
into long term, the year-to-date realized gains restart at zero (the budget is annual) and the
wash-sale lists are emptied (a year later every window has closed). Prices are held constant:
the forecast shows how far the gain budget lets the portfolio approach its target, not where
markets will go.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from optimizer.core.errors import OptimizerError
from optimizer.core.result import SolverInfo, Trade
from optimizer.core.scenarios import Settings
from optimizer.core.snapshot import Lot, Snapshot, TaxRates, WashSale

if TYPE_CHECKING:
    from optimizer.core.engine import RunOptions


def apply_trades(s: Snapshot, trades: list[Trade], as_of: dt.date, tag: str) -> Snapshot:
    """The snapshot after ``trades``, dated ``as_of`` (new lots are named ``<tag>:<account>:<symbol>``)."""
    sold = {ls.lot_id: ls.shares for t in trades for ls in t.lots}
    lots: list[Lot] = []
    for lt in s.lots:
        q = lt.quantity - sold.get(lt.lot_id, Decimal(0))
        if q <= 0:
            continue
        basis = lt.cost_basis if q == lt.quantity else lt.cost_basis * q / lt.quantity
        lots.append(
            dataclasses.replace(lt, quantity=q, cost_basis=basis.quantize(Decimal("0.000001")))
        )
    cash = {a.id: a.cash for a in s.accounts}
    for t in trades:
        if t.side == "sell":
            cash[t.account] += t.value - t.cost - t.ticket_fee
        else:
            cash[t.account] -= t.value + t.cost + t.ticket_fee
            lots.append(
                Lot(
                    lot_id=f"{tag}:{t.account}:{t.symbol}",
                    account=t.account,
                    symbol=t.symbol,
                    quantity=t.shares,
                    cost_basis=t.value,
                    acquired=s.as_of,
                    holding_period_start=s.as_of,
                )
            )
    # the cash raised has been withdrawn: it is not there the next year
    accounts = tuple(
        dataclasses.replace(
            a, cash=max(cash[a.id] - a.cash_to_raise, Decimal(0)), cash_to_raise=Decimal(0)
        )
        for a in s.accounts
    )
    return dataclasses.replace(
        s,
        as_of=as_of,
        accounts=accounts,
        lots=tuple(lots),
        tax=TaxRates(
            short_term_rate=s.tax.short_term_rate,
            long_term_rate=s.tax.long_term_rate,
            ordinary_income_offset=s.tax.ordinary_income_offset,
        ),
        wash_sale=WashSale(window_days=s.wash_sale.window_days),
        mode="rebalance"
        if s.mode in ("raise_cash", "invest_cash", "harvest")
        and (s.targets.securities or s.targets.asset_classes)
        else s.mode,
        forecast_years=0,
    )


def forecast(
    snapshot: Snapshot,
    trades: list[Trade],
    metrics: dict[str, Any],
    settings: Settings,
    solver: str,
    options: RunOptions,
    *,
    solved: list[SolverInfo] | None = None,
) -> list[dict[str, Any]]:
    """Year-by-year rows: tracking error before/after, realized gains, tax, tickets.

    ``solved`` (when given) receives the solver information of every further year's run.
    """
    from optimizer.core.engine import RunOptions, solve

    rows = [_row(1, snapshot.as_of, metrics)]
    current = snapshot
    prev_trades = trades
    sub = RunOptions(
        explain=False,
        forecast=False,
        use_ticket_proxy=options.use_ticket_proxy,
        use_fee_test=options.use_fee_test,
        summary_only=True,
    )
    overrides = {
        "risk_aversion": settings.risk_aversion,
        "tax_weight": settings.tax_weight,
        "loss_value_beyond_offset": settings.loss_value_beyond_offset,
        "no_short_term_gains": settings.no_short_term_gains,
    }
    for year in range(2, snapshot.forecast_years + 1):
        as_of = current.as_of + dt.timedelta(days=365)
        current = apply_trades(current, prev_trades, as_of, f"Y{year - 1}")
        try:
            res = solve(current, overrides=overrides, solver=solver, options=sub)
        except OptimizerError as exc:
            rows.append(
                {"year": year, "as_of": as_of.isoformat(), "status": "error", "error": str(exc)}
            )
            break
        rows.append(_row(year, as_of, res.metrics))
        if solved is not None:
            solved.append(res.solver)
        prev_trades = res.trades
    return rows


def _row(year: int, as_of: dt.date, metrics: dict[str, Any]) -> dict[str, Any]:
    before, after = metrics["before"], metrics["after"]
    return {
        "year": year,
        "as_of": as_of.isoformat(),
        "status": "ok",
        "tracking_error_before": before["tracking_error"],
        "tracking_error_after": after["tracking_error"],
        "drift_total_after": after["drift_total"],
        "realized_net": after["realized"]["net"],
        "estimated_tax": after["estimated_tax"],
        "tickets": after["tickets"],
        "turnover": after["turnover"],
    }
