"""Binding-constraint facts, flags and the infeasibility diagnosis.

A constraint *binds* when its dual value (shadow price) is positive or its slack is ~0. Every
fact is given in words and as numbers (decimal strings for money, floats for ratios), so the
explainer can quote it and check every number it writes against the structured fields.

``shadow_price`` is the dual value in objective units per unit of the constraint, both measured
in weights of the household value V, i.e. dollars of objective (tax, cost and risk expressed in
dollars) per dollar of the limit.

What a constraint costs is given two ways:

- ``estimated_effect`` (every entry, no extra solve): shadow price x a stated relaxation ($1,000
  more gain budget, less cash floor, of sales of blocked lots or of blocked purchases; one
  percentage point of an asset-class bound or a maximum weight).
  The optimal value of the continuous problem is convex in the limit, so this first-order
  estimate is an upper bound on what the relaxation would save; it is exact while the set of
  binding constraints does not change. The text says "estimated from the dual".
- ``effect_if_relaxed`` (the three most expensive, only when asked: ``RunOptions(explain=
  "resolve")``) re-solves the continuous problem with the constraint lifted and reports tracking
  error, realized gains and objective with and without it ("measured by re-solving").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np

from optimizer.core.bounds import base_bounds, block_reasons
from optimizer.core.errors import Conflict
from optimizer.core.model import BIG, ProblemData
from optimizer.core.problem import ContinuousSolution
from optimizer.core.result import Trade, cents
from optimizer.core.snapshot import days_to_long_term

SolveFn = Callable[[np.ndarray, np.ndarray, frozenset[str]], ContinuousSolution]
DUAL_TOL = 1e-4  # $0.10 of objective per $1,000 of the limit
STEP_DOLLARS = 1000.0  # relaxation quoted by the dual estimates of dollar limits
LARGE_TRADE_LIST = 25

REASON_WORDS = {
    "no_sell": "no-sell restriction",
    "no_buy": "no-buy restriction",
    "wash_sale": "wash-sale rule",
    "near_long_term": "hold-back of lots near long term",
    "no_short_term_gains": "no-short-term-gains rule",
    "mode": "mode",
}


def _money(x: float | Decimal) -> str:
    return f"${Decimal(str(x)).quantize(Decimal('0.01')):,}"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def available_gains(pd: ProblemData) -> Decimal:
    """Unrealized gains (positive only) in taxable lots before trading, dollars."""
    total = Decimal(0)
    for g, taxable in zip(pd.lot_gain_dec, pd.lot_taxable.tolist(), strict=True):
        if taxable and g > 0:
            total += g
    return total


def continuous_te(pd: ProblemData, x: np.ndarray, b: np.ndarray) -> float:
    """Tracking error of a continuous solution (annualized fraction of the invested value)."""
    w = pd.A @ (pd.h0 + b - pd.S @ x)
    d = pd.D @ w - pd.t_dev_w
    te = float(np.sqrt(max(float(d @ pd.sigma @ d), 0.0)))
    return te / pd.invested if pd.invested < 1.0 and pd.invested > 0 else te


def _estimate(y: float, relax_by: float, what: str) -> dict[str, Any]:
    """First-order effect of relaxing a limit by ``relax_by`` dollars at shadow price ``y``."""
    step = cents(Decimal(str(relax_by)))
    gain = cents(Decimal(str(max(y, 0.0) * relax_by)))
    return {
        "method": "dual",
        "relax_by": str(step),
        "objective_decrease_at_most": str(gain),
        "text": (
            f"Estimated from the dual (first order, an upper bound): {what} would lower the "
            f"objective (tax, costs and risk in dollars) by at most {_money(gain)}."
        ),
    }


def _effect(pd: ProblemData, sol: ContinuousSolution) -> dict[str, Any]:
    if sol.status == "infeasible":
        return {"status": "infeasible"}
    gN, _, _ = pd.lot_gain_ratios()
    return {
        "tracking_error": continuous_te(pd, sol.x, sol.b),
        "realized_net_gain": str(cents(Decimal(str(float(gN @ sol.x) * pd.V)))),
        "objective": sol.objective,
    }


def binding_constraints(
    pd: ProblemData,
    final: ContinuousSolution,
    relaxed: ContinuousSolution,
    trades: list[Trade],
    solve: SolveFn | None,
    max_explained: int = 3,
    *,
    estimate: bool = True,
    available: Decimal | None = None,
) -> list[dict[str, Any]]:
    """Binding constraints of the final solve, most expensive first, with what they cost.

    ``estimate`` adds the dual estimate to every entry; ``solve`` (when given) re-solves with
    each of the ``max_explained`` most expensive lifted (``effect_if_relaxed``).
    ``available`` is :func:`available_gains` of ``pd`` (computed when not given).
    """
    s = pd.snapshot
    du = final.duals
    out: list[dict[str, Any]] = []
    syms = [x.symbol for x in s.securities]
    # realized in taxable accounts: net, its short-term part, and the gains alone (in lot order,
    # each sum as a running total)
    realized_net = realized_st = gross = Decimal(0)
    for t in trades:
        for lt in t.lots:
            if not lt.taxable:
                continue
            g = lt.realized_gain
            realized_net += g
            if lt.term == "short":
                realized_st += g
            if g > 0:
                gross += g
    avail = available_gains(pd) if available is None else available
    ytd_s, ytd_l = s.tax.realized_ytd_short_term, s.tax.realized_ytd_long_term

    def dual(name: str) -> np.ndarray:
        return du.get(name, np.zeros(0))

    for name, cap, used, label in (
        (
            "gain_net",
            s.budgets.max_net_realized_gain,
            ytd_s + ytd_l + realized_net,
            "net gain budget",
        ),
        ("gain_st", s.budgets.max_short_term_gain, ytd_s + realized_st, "short-term gain budget"),
    ):
        if cap is None:
            continue
        dv = dual(name)
        y = float(dv.sum()) if dv.size else 0.0
        near = cap > 0 and used >= cap * Decimal("0.995")
        if y <= DUAL_TOL and not near:
            continue
        share = float(gross / avail) if avail > 0 else 0.0
        out.append(
            {
                "constraint": "gain_budget_net" if name == "gain_net" else "gain_budget_short_term",
                "family": name,
                "limit": str(cents(cap)),
                "used": str(cents(used)),
                "available_gains": str(cents(avail)),
                "share_used": share,
                "shadow_price": y,
                "text": (
                    f"The {_money(cap)} {label} binds: {_money(used)} realized (with year to date); "
                    f"{_pct(share)} of the {_money(avail)} gains available were used."
                ),
                "_estimate": (
                    y,
                    STEP_DOLLARS,
                    f"{_money(STEP_DOLLARS)} more {label}",
                ),
            }
        )
    cash_d = dual("cash")
    for a, acc in enumerate(s.accounts):
        if cash_d.size and cash_d[a] > DUAL_TOL:
            need = Decimal(str(pd.floor[a] * pd.V))
            what = "cash floor and cash to raise" if acc.cash_to_raise > 0 else "cash floor"
            out.append(
                {
                    "constraint": f"cash_floor:{acc.id}",
                    "family": "cash",
                    "limit": str(cents(need)),
                    "shadow_price": float(cash_d[a]),
                    "text": f"The {what} of {_money(need)} in account {acc.id} binds: purchases there are limited by its cash and sales.",
                    "_estimate": (
                        float(cash_d[a]),
                        STEP_DOLLARS,
                        f"{_money(STEP_DOLLARS)} less {what} in account {acc.id}",
                    ),
                }
            )
    rows = [int(c) for c in np.nonzero((pd.class_lo > -BIG) | (pd.class_hi < BIG))[0]]
    for side, name in (("min", "class_lo"), ("max", "class_hi")):
        dv = dual(name)
        for r, c in enumerate(rows):
            if dv.size and dv[r] > DUAL_TOL:
                lim = pd.class_lo[c] if side == "min" else pd.class_hi[c]
                out.append(
                    {
                        "constraint": f"asset_class_{side}:{pd.classes[c]}",
                        "family": "class",
                        "limit": float(lim),
                        "shadow_price": float(dv[r]),
                        "text": f"The {side}imum weight {_pct(lim)} of asset class {pd.classes[c]} binds.",
                        "_estimate": (
                            float(dv[r]),
                            0.01 * pd.V * pd.invested,
                            f"moving the {side}imum weight of {pd.classes[c]} by one "
                            f"percentage point ({_money(0.01 * pd.V * pd.invested)})",
                        ),
                    }
                )
    dv = dual("max_weight")
    for i in np.nonzero(dv > DUAL_TOL)[0].tolist() if dv.size else []:
        out.append(
            {
                "constraint": f"max_weight:{syms[i]}",
                "family": "max_weight",
                "limit": float(pd.mw_sec[i]),
                "shadow_price": float(dv[i]),
                "text": f"The maximum weight {_pct(pd.mw_sec[i])} of {syms[i]} binds.",
                "_estimate": (
                    float(dv[i]),
                    0.01 * pd.V * pd.invested,
                    f"raising the maximum weight of {syms[i]} by one percentage point "
                    f"({_money(0.01 * pd.V * pd.invested)})",
                ),
            }
        )
    # blocks: aggregate the duals of zero upper bounds by reason and symbol
    # (max dual, blocked value $)
    agg: dict[tuple[str, str, str], list[float]] = {}
    xd = dual("x_ub")
    for j, reasons in pd.sell_block.items():
        if xd.size and xd[j] > DUAL_TOL and "mode" not in reasons:
            for reason in reasons:
                agg.setdefault((reason, syms[pd.lot_sec[j]], "sell"), [0.0, 0.0])
                e = agg[(reason, syms[pd.lot_sec[j]], "sell")]
                e[0] = max(e[0], float(xd[j]))
                e[1] += float(pd.lot_u[j] * pd.V)
    bd = dual("b_ub")
    for k, reasons in pd.buy_block.items():
        if bd.size and bd[k] > DUAL_TOL and "mode" not in reasons:
            for reason in reasons:
                agg.setdefault((reason, syms[pd.pair_sec[k]], "buy"), [0.0, 0.0])
                e = agg[(reason, syms[pd.pair_sec[k]], "buy")]
                e[0] = max(e[0], float(bd[k]))
    for (reason, sym, side), (price, value) in sorted(agg.items()):
        words = REASON_WORDS.get(reason, reason)
        entry: dict[str, Any] = {
            "constraint": f"{reason}:{sym}",
            "family": reason,
            "side": side,
            "shadow_price": price,
            "text": (
                f"The {words} on {sym} binds: the optimizer would {side} it if allowed"
                + (f" ({_money(value)} of lots blocked)." if side == "sell" else ".")
            ),
        }
        if side == "sell":
            entry["blocked_value"] = str(cents(Decimal(str(value))))
            # a lot's bound moves from 0 to `step` (the best lot: the largest dual)
            step = min(STEP_DOLLARS, value)
            entry["_estimate"] = (
                price,
                step,
                f"allowing {_money(step)} of sales from the blocked {sym} lots",
            )
        else:
            entry["_estimate"] = (
                price,
                STEP_DOLLARS,
                f"allowing {_money(STEP_DOLLARS)} of purchases of {sym}",
            )
        out.append(entry)
    for entry in out:
        y, relax_by, what = entry.pop("_estimate")
        if estimate:
            entry["estimated_effect"] = _estimate(y, relax_by, what)
    out.sort(key=lambda e: (-float(e["shadow_price"]), e["constraint"]))
    if solve is not None and relaxed.status != "infeasible":
        base = _effect(pd, relaxed)
        for fact in out[:max_explained]:
            fam = fact["family"]
            if fam in ("gain_net", "gain_st", "cash", "class", "max_weight"):
                xu, bu = base_bounds(pd)
                sol = solve(xu, bu, frozenset({fam}))
            else:
                xu, bu = base_bounds(pd, lift=[f"{fam}:{fact['constraint'].split(':', 1)[1]}"])
                sol = solve(xu, bu, frozenset())
            fact["effect_if_relaxed"] = {
                "method": "resolve",
                "with": base,
                "without": _effect(pd, sol),
                "text": "Measured by re-solving the continuous problem without this constraint.",
            }
    return out


def gain_lots(pd: ProblemData) -> tuple[int, int]:
    """Taxable lots with a gain before trading: ``(short term, long term)``."""
    st_gain_lots = lt_gain_lots = 0
    for g, taxable, long_term in zip(
        pd.lot_gain_dec, pd.lot_taxable.tolist(), pd.lot_lt.tolist(), strict=True
    ):
        if taxable and g > 0:
            if long_term:
                lt_gain_lots += 1
            else:
                st_gain_lots += 1
    return st_gain_lots, lt_gain_lots


def nature_facts(
    pd: ProblemData, trades: list[Trade], counts: tuple[int, int] | None = None
) -> list[dict[str, Any]]:
    """Facts about the kind of job the constraints leave (e.g. a loss-only transition).

    ``counts`` is :func:`gain_lots` of ``pd`` (computed when not given)."""
    s = pd.snapshot
    out: list[dict[str, Any]] = []
    st_gain_lots, lt_gain_lots = gain_lots(pd) if counts is None else counts
    no_st = pd.settings.no_short_term_gains
    cap = s.budgets.max_net_realized_gain
    if no_st and lt_gain_lots == 0 and st_gain_lots > 0:
        text = (
            "The portfolio has no long-term gains and short-term gains are not allowed, so no lot "
            "with a gain can be sold: this is a loss-only transition"
        )
        if cap is not None:
            text += f"; the {_money(cap)} gain budget cannot be used"
        out.append(
            {
                "fact": "loss_only_transition",
                "long_term_gain_lots": 0,
                "short_term_gain_lots_blocked": st_gain_lots,
                "text": text + ".",
            }
        )
    raised = [(a, acc) for a, acc in enumerate(s.accounts) if acc.cash_to_raise > 0]
    if raised:
        total = sum((acc.cash_to_raise for _, acc in raised), Decimal(0))
        invested = _invested_value(pd)
        where = ", ".join(f"{_money(acc.cash_to_raise)} in {acc.id}" for _, acc in raised)
        out.append(
            {
                "fact": "cash_raised",
                "total": str(cents(total)),
                "by_account": {acc.id: str(cents(acc.cash_to_raise)) for _, acc in raised},
                "invested_value": str(cents(invested)),
                "text": (
                    f"{_money(total)} of cash is raised for withdrawal ({where}); it leaves the "
                    f"portfolio, so the allocation, drift bands and tracking error after trading "
                    f"are measured on the {_money(invested)} that stays invested."
                ),
            }
        )
    if any(t.side == "sell" for t in trades):
        realized = sum(
            (lt.realized_gain for t in trades for lt in t.lots if lt.taxable), Decimal(0)
        )
        if realized < 0:
            out.append(
                {
                    "fact": "net_loss_realized",
                    "amount": str(cents(realized)),
                    "text": f"The trades realize a net loss of {_money(-realized)} in taxable accounts.",
                }
            )
    return out


def _invested_value(pd: ProblemData) -> Decimal:
    """Household value before trading minus the cash to raise (dollars, exact)."""
    s = pd.snapshot
    price = {x.symbol: x.price for x in s.securities}
    value = sum((a.cash - a.cash_to_raise for a in s.accounts), Decimal(0))
    return value + sum((lt.quantity * price[lt.symbol] for lt in s.lots), Decimal(0))


def flags(
    pd: ProblemData, trades: list[Trade], prepared: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Review flags: lots near long term, wash-sale blocks, restricted positions, big lists.

    ``prepared`` is :func:`input_flags` of the same problem (computed when not given)."""
    s = pd.snapshot
    sold = {ls.lot_id for t in trades for ls in t.lots}
    out: list[dict[str, Any]] = [
        {**f, "sold": f["lot_id"] in sold} if f["kind"] == "near_long_term" else f
        for f in (input_flags(pd) if prepared is None else prepared)
    ]
    group = {x.symbol: x.identical_group for x in s.securities}
    loss_groups = sorted(
        {group[t.symbol] for t in trades for ls in t.lots if ls.taxable and ls.realized_gain < 0}
    )
    for g in loss_groups:
        until = s.as_of.toordinal() + s.wash_sale.window_days
        out.append(
            {
                "kind": "wash_sale_window_opened",
                "identical_group": g,
                "no_buy_until": dt.date.fromordinal(until).isoformat(),
                "text": f"A loss is realized in {g}: do not buy it in any household account until {dt.date.fromordinal(until).isoformat()}.",
            }
        )
    if len(trades) > LARGE_TRADE_LIST:
        out.append(
            {"kind": "large_trade_list", "tickets": len(trades), "threshold": LARGE_TRADE_LIST}
        )
    return out


def input_flags(pd: ProblemData) -> list[dict[str, Any]]:
    """The review flags that depend on the input alone, in :func:`flags`' order (a lot near
    long term without its ``sold`` entry, which :func:`flags` adds)."""
    s = pd.snapshot
    out: list[dict[str, Any]] = []
    n_days = s.holding.near_long_term_days
    lot_taxable, lot_lt = pd.lot_taxable.tolist(), pd.lot_lt.tolist()
    for j, lt in enumerate(s.lots):
        if not lot_taxable[j] or lot_lt[j]:
            continue
        days = days_to_long_term(lt, s.as_of)
        if days > n_days:
            continue
        gain = pd.lot_gain_dec[j]
        out.append(
            {
                "kind": "near_long_term",
                "account": lt.account,
                "lot_id": lt.lot_id,
                "symbol": lt.symbol,
                "days_to_long_term": days,
                "unrealized_gain": str(cents(gain)),
                "held_back": "near_long_term" in pd.sell_block.get(j, []),
            }
        )
    for j, reasons in sorted(pd.sell_block.items()):
        if "wash_sale" not in reasons:
            continue
        lt = s.lots[j]
        info = pd.wash[pd.sec_group[pd.lot_sec[j]]]
        conflicts = [(a, d) for a, d, lot_id in info.recent_buys if lot_id != lt.lot_id]
        acc, date = conflicts[-1]
        loss = pd.lot_gain_dec[j]
        out.append(
            {
                "kind": "harvest_blocked_wash_sale",
                "account": lt.account,
                "lot_id": lt.lot_id,
                "symbol": lt.symbol,
                "identical_group": pd.sec_group[pd.lot_sec[j]],
                "unrealized_loss": str(cents(loss)),
                "conflicting_buy_account": acc,
                "conflicting_buy_date": date,
            }
        )
    for g, info in sorted(pd.wash.items()):
        if info.recent_loss_sales and g in pd.groups:
            acc, date = info.recent_loss_sales[-1]
            out.append(
                {
                    "kind": "buy_blocked_wash_sale",
                    "identical_group": g,
                    "loss_sale_account": acc,
                    "loss_sale_date": date,
                }
            )
    held = pd.holdings_dec
    price = pd.security_maps[0]
    for r in s.restrictions:
        value = sum(
            (
                q * price[sym]
                for (acc, sym), q in held.items()
                if sym == r.symbol and r.account in (None, acc)
            ),
            Decimal(0),
        )
        out.append(
            {
                "kind": "restricted_position",
                "symbol": r.symbol,
                "account": r.account,
                "no_sell": r.no_sell,
                "no_buy": r.no_buy,
                "max_weight": None if r.max_weight is None else str(r.max_weight),
                "reason": r.reason,
                "value": str(cents(value)),
            }
        )
    return out


# ---------------------------------------------------------------- infeasibility diagnosis


def _on_invested(pd: ProblemData) -> str:
    """How weights are measured when cash is raised ('' otherwise)."""
    raised = float(pd.raise_w.sum()) * pd.V
    if raised <= 0:
        return ""
    return (
        f" (weights of the {_money(pd.V - raised)} that stays invested after raising "
        f"{_money(raised)})"
    )


def _describe(pd: ProblemData, family: str) -> Conflict:
    s = pd.snapshot
    w0 = pd.A @ pd.h0
    if family == "gain_net":
        cap = s.budgets.max_net_realized_gain
        ytd = s.tax.realized_ytd_short_term + s.tax.realized_ytd_long_term
        return Conflict(
            family,
            f"the net realized gain budget of {_money(cap or 0)} (year to date {_money(ytd)})",
        )
    if family == "gain_st":
        cap = s.budgets.max_short_term_gain
        return Conflict(family, f"the short-term gain budget of {_money(cap or 0)}")
    if family == "cash":
        parts = []
        for a, acc in enumerate(s.accounts):
            need = pd.floor[a] * pd.V
            if need > 0:
                parts.append(f"{acc.id} must hold {_money(need)} in cash (has {_money(acc.cash)})")
        return Conflict(family, "the cash floors" + (": " + ", ".join(parts) if parts else ""))
    if family == "class":
        cw = pd.Mc @ w0
        parts = []
        for c, name in enumerate(pd.classes):
            if pd.class_lo[c] > -BIG or pd.class_hi[c] < BIG:
                lo = max(pd.class_lo[c], 0.0)
                hi = min(pd.class_hi[c], 1.0)
                parts.append(f"{name} within [{_pct(lo)}, {_pct(hi)}] (now {_pct(cw[c])})")
        return Conflict(family, "the asset-class bounds: " + ", ".join(parts) + _on_invested(pd))
    if family == "max_weight":
        syms = [x.symbol for x in s.securities]
        parts = [
            f"{syms[i]} at most {_pct(pd.mw_sec[i])} (now {_pct(w0[i])})"
            for i in range(pd.n)
            if pd.mw_sec[i] < BIG
        ]
        return Conflict(
            family,
            "the maximum weights"
            + (": " + ", ".join(parts) if parts else " per account")
            + _on_invested(pd),
        )
    if family == "cash_class":
        return Conflict(
            family,
            f"the cash weight bounds [{_pct(max(pd.cash_lo, 0))}, {_pct(min(pd.cash_hi, 1))}]"
            + _on_invested(pd),
        )
    syms = sorted(
        {s.securities[pd.lot_sec[j]].symbol for j, r in pd.sell_block.items() if family in r}
        | {s.securities[pd.pair_sec[k]].symbol for k, r in pd.buy_block.items() if family in r}
    )
    listed = ", ".join(syms[:8]) + (" ..." if len(syms) > 8 else "")
    if family == "mode":
        return Conflict(
            family, f"mode {s.mode} ({'no purchases' if s.mode == 'raise_cash' else 'no sales'})"
        )
    return Conflict(family, f"the {REASON_WORDS.get(family, family)} on {listed}")


def diagnose(pd: ProblemData, solve: SolveFn) -> list[Conflict]:
    """A minimal set of constraint families that conflict (deletion filter over re-solves).

    Start with every family imposed (infeasible). For each family, try dropping it for good:
    if the rest is still infeasible it was not needed; otherwise it stays in the conflict set.
    """
    families = ["gain_net", "gain_st", "cash", "class", "max_weight", "cash_class"]
    present: list[str] = []
    if pd.cap_net_w < BIG:
        present.append("gain_net")
    if pd.cap_st_w < BIG:
        present.append("gain_st")
    present.append("cash")
    if ((pd.class_lo > -BIG) | (pd.class_hi < BIG)).any():
        present.append("class")
    if (pd.mw_sec < BIG).any() or pd.has_pair_max:
        present.append("max_weight")
    if pd.cash_lo > -BIG or pd.cash_hi < BIG:
        present.append("cash_class")
    present += block_reasons(pd)

    def feasible(imposed: list[str]) -> bool:
        lifted = [f for f in present if f not in imposed]
        xu, bu = base_bounds(pd, lift=[f for f in lifted if f not in families])
        sol = solve(xu, bu, frozenset(f for f in lifted if f in families))
        return sol.status != "infeasible"

    if feasible([]) is False:
        return []
    conflict = list(present)
    for f in list(present):
        trial = [g for g in conflict if g != f]
        if not feasible(trial):
            conflict = trial
    return [_describe(pd, f) for f in conflict]
