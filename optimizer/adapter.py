"""From the book of record to the optimizer's input snapshot (the only place the two meet).

``build_snapshot`` reads the database as of a day and returns the JSON-ready snapshot dict that
``optimizer.core.snapshot.snapshot_from_dict`` validates. It refuses (``DataNotReady``) when the
data would make the proposal wrong rather than merely imperfect: no IPS in force, a missing or
stale price, too little price history for the risk model.

Conventions (documented in docs/optimizer.md, "From the database"):
- account id ``<custodian>-<number>``; lot id ``<lot_ref>`` (prefixed with the account id when a
  lot_ref repeats across the household's accounts);
- targets are always given at security level: an asset class's IPS weight is spread over the
  household's current holdings in that class pro rata (or over the firm's most-held security of
  the class when the household holds none); where the IPS names a model portfolio, its class is
  replaced by the model's weights (a transition). Asset-class targets with their drift bands
  are passed as well, as bounds;
- the IPS cash class: the cash floor is the target of account cash; the rest of the class's
  weight goes to cash-equivalent securities (snapshot class ``cash_equivalents``);
- the risk model is the Ledoit-Wolf shrunk covariance of the last year of daily closes;
- costs are the firm's (Firm.trade_cost_bps, ticket_fee, min_trade_value).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter, OrderedDict, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd
from django.db.models import Count, Max, Sum

from accounts.models import (
    CENT,
    ZERO,
    Household,
    InvestmentPolicy,
    Price,
    Restriction,
    RestrictionKind,
    Security,
    TaxLot,
    Transaction,
    TransactionKind,
)
from accounts.selectors import STALE_AFTER_DAYS, ips_in_force, latest_prices
from optimizer.core.risk import estimate_covariance, risk_model_dict

RISK_LOOKBACK_DAYS = 365
MIN_RISK_OBSERVATIONS = 60
WASH_WINDOW_DAYS = 30
CASH_EQUIVALENTS = "cash_equivalents"
WEIGHT = Decimal("0.000001")


class DataNotReady(Exception):
    """The data cannot support a proposal; ``problems`` says what to fix, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class SnapshotBuild:
    snapshot: dict[str, Any]
    ips: InvestmentPolicy
    account_ids: dict[str, int]  # snapshot account id -> Account.pk
    lot_ids: dict[str, int]  # snapshot lot id -> TaxLot.pk


def _account_key(account: Any) -> str:
    return f"{account.custodian.code}-{account.number}"


def _class_label(security: Security) -> str:
    return CASH_EQUIVALENTS if security.asset_class.is_cash else security.asset_class.code


def _fallback_security(asset_class_id: int) -> Security | None:
    """The firm-agnostic default buy for a class: the most widely held active fund, then symbol."""
    counts = Counter(
        TaxLot.objects.filter(
            security__asset_class_id=asset_class_id,
            security__is_active=True,
            closed_on__isnull=True,
        )
        .exclude(security__kind="stock")
        .values_list("security_id", flat=True)
    )
    candidates = Security.objects.filter(asset_class_id=asset_class_id, is_active=True).exclude(
        kind="stock"
    )
    ranked = sorted(candidates, key=lambda s: (-counts.get(s.pk, 0), s.symbol))
    return ranked[0] if ranked else None


# The risk model of a set of securities on a day, by a fingerprint of the price rows it is
# estimated from (stored closes are immutable: see accounts.models.Price). Reading and
# converting a year of daily closes and estimating the covariance is most of the time it takes
# to build a snapshot; the same household's scenarios, re-runs and the book's runs of the same
# day share it. The fingerprint (row count, sum and maximum of the row ids, sum of the closes)
# changes when a row is added, removed or replaced.
_RISK_CACHE_SIZE = 128
_risk_cache: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
_risk_lock = threading.Lock()


def _risk_model(
    universe: dict[int, Security],
    symbols: list[str],
    by_symbol: dict[str, Security],
    as_of: dt.date,
) -> dict[str, Any]:
    """The snapshot's ``risk_model``: the Ledoit-Wolf shrunk covariance of the last year of daily
    closes (:func:`optimizer.core.risk.estimate_covariance`), remembered by fingerprint."""
    rows = Price.objects.filter(
        security_id__in=universe,
        date__gt=as_of - dt.timedelta(days=RISK_LOOKBACK_DAYS),
        date__lte=as_of,
    )
    fingerprint = rows.aggregate(n=Count("pk"), ids=Sum("pk"), top=Max("pk"), closes=Sum("close"))
    key = (
        as_of,
        RISK_LOOKBACK_DAYS,
        MIN_RISK_OBSERVATIONS,
        tuple((sym, by_symbol[sym].pk) for sym in symbols),
        fingerprint["n"],
        fingerprint["ids"],
        fingerprint["top"],
        str(fingerprint["closes"]),
    )
    with _risk_lock:
        hit = _risk_cache.get(key)
        if hit is not None:
            _risk_cache.move_to_end(key)
    if hit is None:
        symbol_of = {sid: sec.symbol for sid, sec in universe.items()}
        history = pd.DataFrame.from_records(
            [
                (d, symbol_of[sid], c)
                for d, sid, c in rows.values_list("date", "security_id", "close")
            ],
            columns=["date", "symbol", "close"],
        )
        if history.empty:
            raise DataNotReady([f"No price history in the year before {as_of}."])
        closes = history.pivot(index="date", columns="symbol", values="close").sort_index()
        closes = closes.reindex(columns=symbols).astype(float).ffill().dropna()
        if len(closes) < MIN_RISK_OBSERVATIONS:
            raise DataNotReady(
                [
                    f"Only {len(closes)} days of complete price history; the risk model needs {MIN_RISK_OBSERVATIONS}."
                ]
            )
        hit = risk_model_dict(estimate_covariance(closes), "security")
        with _risk_lock:
            _risk_cache[key] = hit
            while len(_risk_cache) > _RISK_CACHE_SIZE:
                _risk_cache.popitem(last=False)
    # a copy: the caller's snapshot dict is its own
    return {
        **hit,
        "labels": list(hit["labels"]),
        "covariance": [list(r) for r in hit["covariance"]],
    }


def build_snapshot(
    household: Household,
    *,
    as_of: dt.date,
    scenario: str | None = None,
    budgets: dict[str, Any] | None = None,
    restrictions_extra: list[dict[str, Any]] | None = None,
    cash_to_raise: dict[str, str] | None = None,
    solver: str = "CLARABEL",
    forecast_years: int = 3,
) -> SnapshotBuild:
    """``cash_to_raise`` maps snapshot account ids to dollars the account must hold on top of
    its cash floor (e.g. a withdrawal); an id that is not an active account is refused."""
    problems: list[str] = []
    ips = ips_in_force(household, as_of)
    if ips is None:
        raise DataNotReady([f"{household} has no IPS in force on {as_of}."])

    accounts = list(
        household.accounts.filter(is_active=True)
        .select_related("custodian", "owner")
        .order_by("pk")
    )
    if not accounts:
        raise DataNotReady([f"{household} has no active account."])
    raise_by = dict(cash_to_raise or {})
    unknown_accounts = sorted(set(raise_by) - {_account_key(a) for a in accounts})
    if unknown_accounts:
        raise DataNotReady(
            [
                f"Cash to raise names {', '.join(unknown_accounts)}: not an active account of {household}."
            ]
        )
    lots = list(
        TaxLot.objects.filter(
            account__in=accounts, closed_on__isnull=True, quantity__gt=0, acquired__lte=as_of
        )
        .select_related("security", "security__asset_class", "account", "account__custodian")
        .order_by("account_id", "security__symbol", "acquired", "lot_ref")
    )

    # -- the universe: held securities, the model's, and a buy candidate per targeted class
    universe: dict[int, Security] = {lot.security_id: lot.security for lot in lots}
    targets = list(ips.targets.select_related("asset_class", "security", "security__asset_class"))
    model_weights: dict[int, Decimal] = {}
    model_class_id: int | None = None
    if ips.model_portfolio_id is not None:
        for model_row in ips.model_portfolio.targets.select_related("security__asset_class"):  # type: ignore[union-attr]
            universe[model_row.security_id] = model_row.security
            model_weights[model_row.security_id] = model_row.weight
        classes_of_model = {universe[sid].asset_class_id for sid in model_weights}
        if len(classes_of_model) == 1:
            model_class_id = classes_of_model.pop()
    for target in targets:
        if target.security_id is not None:
            universe[target.security_id] = target.security  # type: ignore[assignment]
    class_targets: dict[int, tuple[Any, Decimal, Decimal]] = {}
    for target in targets:
        if target.asset_class_id is None:
            continue
        band = target.band if target.band is not None else ips.default_band
        class_targets[target.asset_class_id] = (target.asset_class, target.weight, band)
        if target.asset_class.is_cash and target.weight <= ips.cash_floor:  # type: ignore[union-attr]
            continue
        if not any(s.asset_class_id == target.asset_class_id for s in universe.values()):
            fallback = _fallback_security(target.asset_class_id)
            if fallback is not None:
                universe[fallback.pk] = fallback
            elif not target.asset_class.is_cash:  # type: ignore[union-attr]
                problems.append(f"No security to buy for the {target.asset_class} target.")

    # -- prices: present and fresh
    prices = latest_prices(universe, as_of=as_of)
    for sid, security in sorted(universe.items(), key=lambda kv: kv[1].symbol):
        point = prices.get(sid)
        if point is None:
            problems.append(f"No price for {security.symbol} on or before {as_of}.")
        elif (as_of - point.date).days > STALE_AFTER_DAYS:
            problems.append(
                f"The price of {security.symbol} is from {point.date}, "
                f"{(as_of - point.date).days} days before {as_of} (stale feed)."
            )
    if problems:
        raise DataNotReady(problems)

    symbols = sorted(s.symbol for s in universe.values())
    by_symbol = {s.symbol: s for s in universe.values()}

    # -- risk model from a year of closes
    risk_model = _risk_model(universe, symbols, by_symbol, as_of)

    # -- security-level targets
    value_by_security: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for lot in lots:
        value_by_security[lot.security_id] += lot.quantity * prices[lot.security_id].close
    total_value = sum(value_by_security.values(), ZERO) + sum((a.cash for a in accounts), ZERO)
    class_value: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for sid, value in value_by_security.items():
        class_value[_class_label(universe[sid])] += value
    class_value["cash"] = sum((a.cash for a in accounts), ZERO)

    def bounds(label: str, weight: Decimal, band: Decimal) -> dict[str, str]:
        """The drift band as hard bounds, widened to include today's weight: a proposal must not
        push a class further outside its band, but may leave it where it is."""
        current = class_value[label] / total_value if total_value > 0 else ZERO
        lo = max(ZERO, min(weight - band, current))
        hi = min(Decimal(1), max(weight + band, current))
        return {
            "target": str(weight),
            "min": str(lo.quantize(WEIGHT)),
            "max": str(hi.quantize(WEIGHT)),
        }

    target_weights: dict[str, Decimal] = defaultdict(lambda: ZERO)
    asset_class_section: dict[str, Any] = {}
    for class_id, (asset_class, weight, band) in class_targets.items():
        if asset_class.is_cash:
            # account cash holds the floor; the rest goes to cash-equivalent funds if there are any
            has_funds = any(s.asset_class_id == class_id for s in universe.values())
            floor = min(ips.cash_floor, weight) if has_funds else weight
            asset_class_section["cash"] = bounds("cash", floor, band)
            weight = weight - floor
            if weight <= 0:
                continue
            label = CASH_EQUIVALENTS
        else:
            label = asset_class.code
        asset_class_section[label] = bounds(label, weight, band)
        if class_id == model_class_id:
            for sid, w in model_weights.items():
                target_weights[universe[sid].symbol] += weight * w
            continue
        members = sorted(
            (
                s
                for s in universe.values()
                if s.asset_class_id == class_id and s.pk not in model_weights
            ),
            key=lambda s: s.symbol,
        )
        held = sum((value_by_security[s.pk] for s in members), ZERO)
        for s in members:
            share = value_by_security[s.pk] / held if held > 0 else Decimal(1) / len(members)
            target_weights[s.symbol] += weight * share
    for target in targets:
        if target.security_id is not None:
            target_weights[target.security.symbol] += target.weight  # type: ignore[union-attr]
    securities_targets = {
        sym: str(w.quantize(WEIGHT)) for sym, w in sorted(target_weights.items()) if w > 0
    }

    # -- accounts and lots
    account_ids = {_account_key(a): a.pk for a in accounts}
    ref_counts = Counter(lot.lot_ref for lot in lots)
    lot_ids: dict[str, int] = {}
    lot_rows = []
    for lot in lots:
        key = (
            lot.lot_ref
            if ref_counts[lot.lot_ref] == 1
            else f"{_account_key(lot.account)}/{lot.lot_ref}"
        )
        lot_ids[key] = lot.pk
        lot_rows.append(
            {
                "lot_id": key,
                "account": _account_key(lot.account),
                "symbol": lot.security.symbol,
                "quantity": str(lot.quantity),
                "cost_basis": str(lot.cost_basis),
                "acquired": lot.acquired.isoformat(),
                "holding_period_start": lot.holding_period_start.isoformat(),
            }
        )

    # -- restrictions in force, and the 30-day wash-sale window
    restriction_rows: list[dict[str, Any]] = []
    for r in Restriction.objects.filter(household=household).select_related(
        "security", "account__custodian"
    ):
        if not r.in_force(as_of) or r.security_id not in universe:
            continue
        row: dict[str, Any] = {"symbol": r.security.symbol, "reason": r.get_reason_display()}
        if r.account_id is not None:
            row["account"] = _account_key(r.account)
        if r.kind == RestrictionKind.NO_SELL:
            row["no_sell"] = True
        elif r.kind == RestrictionKind.NO_BUY:
            row["no_buy"] = True
        else:
            row["max_weight"] = str(r.max_weight)
        restriction_rows.append(row)
    restriction_rows.extend(restrictions_extra or [])
    restriction_rows.sort(key=lambda r: (r["symbol"], r.get("account", ""), sorted(r)))

    window_start = as_of - dt.timedelta(days=WASH_WINDOW_DAYS)
    recent_buys = []
    for lot in lots:
        if lot.acquired >= window_start:
            recent_buys.append(
                {
                    "account": _account_key(lot.account),
                    "symbol": lot.security.symbol,
                    "date": lot.acquired.isoformat(),
                    "identical_group": lot.security.wash_group,
                }
            )
    recent_loss_sales = []
    for txn in Transaction.objects.filter(
        account__in=accounts,
        kind=TransactionKind.SELL,
        trade_date__gte=window_start,
        trade_date__lte=as_of,
        realized_gain__lt=0,
    ).select_related("security", "account__custodian"):
        recent_loss_sales.append(
            {
                "account": _account_key(txn.account),
                "symbol": txn.security.symbol,  # type: ignore[union-attr]
                "date": txn.trade_date.isoformat(),
                "identical_group": txn.security.wash_group,  # type: ignore[union-attr]
            }
        )
    for group in (recent_buys, recent_loss_sales):
        group.sort(key=lambda e: (e["date"], e["account"], e["symbol"]))

    snapshot: dict[str, Any] = {
        "schema_version": 1,
        "as_of": as_of.isoformat(),
        "mode": "transition" if model_class_id is not None else "rebalance",
        "household_id": str(household.pk),
        "accounts": [
            {
                "id": _account_key(a),
                "tax_treatment": a.tax_treatment,
                "cash": str(a.cash),
                "allows_fractional": a.allows_fractional,
                "owner": str(a.owner_id),
                "cash_floor_weight": str(ips.cash_floor),
                **(
                    {"cash_to_raise": str(raise_by[_account_key(a)])}
                    if _account_key(a) in raise_by
                    else {}
                ),
            }
            for a in accounts
        ],
        "securities": [
            {
                "symbol": sym,
                "asset_class": _class_label(by_symbol[sym]),
                "price": str(prices[by_symbol[sym].pk].close),
                "identical_group": by_symbol[sym].wash_group,
            }
            for sym in symbols
        ],
        "lots": lot_rows,
        "targets": {"securities": securities_targets, "asset_classes": asset_class_section},
        "risk_model": risk_model,
        "tax": {"short_term_rate": str(ips.st_rate), "long_term_rate": str(ips.lt_rate)},
        "budgets": {
            "max_net_realized_gain": None
            if ips.annual_gain_budget is None
            else str(ips.annual_gain_budget),
            **(budgets or {}),
        },
        # the firm's trading-cost model: never a zero-cost sandbox
        "costs": {
            "bps": str(Decimal(household.firm.trade_cost_bps).quantize(Decimal("0.001"))),
            "ticket_fee": str(Decimal(household.firm.ticket_fee).quantize(CENT)),
            "min_trade_value": str(Decimal(household.firm.min_trade_value).quantize(CENT)),
        },
        "restrictions": restriction_rows,
        "holding": {"near_long_term_days": 30, "hold_back_near_long_term": True},
        "wash_sale": {
            "window_days": WASH_WINDOW_DAYS,
            "recent_buys": recent_buys,
            "recent_loss_sales": recent_loss_sales,
        },
        "scenario": scenario,
        "solver": {"name": solver},
        "forecast_years": forecast_years,
    }
    return SnapshotBuild(snapshot=snapshot, ips=ips, account_ids=account_ids, lot_ids=lot_ids)
