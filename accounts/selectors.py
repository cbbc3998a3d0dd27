"""Read-side queries: prices as of a day, the IPS in force, and a household's valuation with
drift against its target. No writes here."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Max, Prefetch

from accounts.models import (
    CENT,
    ZERO,
    Account,
    AssetClass,
    Household,
    InvestmentPolicy,
    IPSTarget,
    Price,
    TaxLot,
    today,
)


@dataclass(frozen=True)
class PricePoint:
    date: dt.date
    close: Decimal


def latest_prices(
    security_ids: Iterable[int], *, as_of: dt.date | None = None
) -> dict[int, PricePoint]:
    """The last close on or before ``as_of`` for each security (two queries)."""
    ids = sorted(set(security_ids))
    if not ids:
        return {}
    day = as_of or today()
    last_dates = (
        Price.objects.filter(security_id__in=ids, date__lte=day)
        .values("security_id")
        .annotate(last=Max("date"))
    )
    wanted = {(row["security_id"], row["last"]) for row in last_dates}
    if not wanted:
        return {}
    dates = {d for _, d in wanted}
    result: dict[int, PricePoint] = {}
    for sec_id, date, close in Price.objects.filter(
        security_id__in=ids, date__in=dates
    ).values_list("security_id", "date", "close"):
        if (sec_id, date) in wanted:
            result[sec_id] = PricePoint(date=date, close=close)
    return result


def ips_in_force(household: Household, on: dt.date | None = None) -> InvestmentPolicy | None:
    day = on or today()
    return (
        household.policies.filter(effective_date__lte=day)
        .order_by("-effective_date", "-version")
        .prefetch_related(
            Prefetch(
                "targets", queryset=IPSTarget.objects.select_related("asset_class", "security")
            )
        )
        .first()
    )


@dataclass
class LotView:
    lot: TaxLot
    price: Decimal | None
    market_value: Decimal | None
    gain: Decimal | None
    days_to_long_term: int
    is_long_term: bool


@dataclass
class AccountView:
    account: Account
    market_value: Decimal
    cash: Decimal
    lots: list[LotView] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return self.market_value + self.cash


@dataclass
class ClassRow:
    asset_class: AssetClass
    value: Decimal
    weight: Decimal
    target: Decimal
    band: Decimal

    @property
    def drift(self) -> Decimal:
        return self.weight - self.target

    @property
    def out_of_band(self) -> bool:
        return abs(self.drift) > self.band


@dataclass
class HouseholdValuation:
    household: Household
    as_of: dt.date
    ips: InvestmentPolicy | None
    accounts: list[AccountView]
    classes: list[ClassRow]
    missing_prices: list[str]
    stale_prices: list[str]

    @property
    def total(self) -> Decimal:
        return sum((a.total for a in self.accounts), ZERO)

    @property
    def max_drift(self) -> Decimal:
        return max((abs(row.drift) for row in self.classes), default=ZERO)

    @property
    def out_of_band(self) -> list[ClassRow]:
        return [row for row in self.classes if row.out_of_band]

    @property
    def lots_near_long_term(self) -> list[LotView]:
        return [
            lv
            for a in self.accounts
            for lv in a.lots
            if not lv.is_long_term and lv.days_to_long_term <= NEAR_LONG_TERM_DAYS
        ]

    def accounts_by_custodian(self) -> list[tuple[str, list[AccountView]]]:
        groups: dict[str, list[AccountView]] = defaultdict(list)
        for view in self.accounts:
            groups[view.account.custodian.name].append(view)
        return sorted(groups.items())


NEAR_LONG_TERM_DAYS = 30
STALE_AFTER_DAYS = 5


def _ratio(part: Decimal, whole: Decimal) -> Decimal:
    if whole == ZERO:
        return ZERO
    return (part / whole).quantize(Decimal("0.000001"))


def household_valuation(
    household: Household,
    *,
    as_of: dt.date | None = None,
    prices: dict[int, PricePoint] | None = None,
    asset_classes: list[AssetClass] | None = None,
) -> HouseholdValuation:
    """Market value by account and asset class, and drift against the IPS in force.

    Security-level IPS targets roll up into their asset class; cash counts toward the asset
    class flagged ``is_cash``. Weights are fractions of the household total.
    """
    day = as_of or today()
    accounts = list(
        household.accounts.filter(is_active=True)
        .select_related("custodian", "owner")
        .prefetch_related(
            Prefetch(
                "lots",
                queryset=TaxLot.objects.filter(closed_on__isnull=True, quantity__gt=0)
                .select_related("security", "security__asset_class")
                .order_by("security__symbol", "acquired", "lot_ref"),
            )
        )
    )
    all_lots = [lot for account in accounts for lot in account.lots.all()]
    if prices is None:
        prices = latest_prices({lot.security_id for lot in all_lots}, as_of=day)
    classes = asset_classes if asset_classes is not None else list(AssetClass.objects.all())
    cash_class = next((c for c in classes if c.is_cash), None)
    by_class: dict[int, Decimal] = defaultdict(lambda: ZERO)
    missing: set[str] = set()
    stale: set[str] = set()
    views: list[AccountView] = []
    for account in accounts:
        view = AccountView(account=account, market_value=ZERO, cash=account.cash)
        for lot in account.lots.all():
            point = prices.get(lot.security_id)
            if point is None:
                missing.add(lot.security.symbol)
                value = gain = price = None
            else:
                if (day - point.date).days > STALE_AFTER_DAYS:
                    stale.add(lot.security.symbol)
                price = point.close
                value = (lot.quantity * price).quantize(CENT)
                gain = value - lot.cost_basis
                view.market_value += value
                by_class[lot.security.asset_class_id] += value
            view.lots.append(
                LotView(
                    lot=lot,
                    price=price,
                    market_value=value,
                    gain=gain,
                    days_to_long_term=lot.days_to_long_term(day),
                    is_long_term=lot.is_long_term(day),
                )
            )
        if cash_class is not None:
            by_class[cash_class.pk] += account.cash
        views.append(view)
    total = sum((v.total for v in views), ZERO)
    ips = ips_in_force(household, day)
    targets: dict[int, Decimal] = defaultdict(lambda: ZERO)
    bands: dict[int, Decimal] = {}
    if ips is not None:
        for target in ips.targets.all():
            class_id = target.asset_class_id or target.security.asset_class_id  # type: ignore[union-attr]
            targets[class_id] += target.weight
            band = target.band if target.band is not None else ips.default_band
            bands[class_id] = max(bands.get(class_id, ZERO), band)
    default_band = ips.default_band if ips is not None else Decimal("0.05")
    rows = [
        ClassRow(
            asset_class=ac,
            value=by_class.get(ac.pk, ZERO),
            weight=_ratio(by_class.get(ac.pk, ZERO), total),
            target=targets.get(ac.pk, ZERO),
            band=bands.get(ac.pk, default_band),
        )
        for ac in classes
        if by_class.get(ac.pk, ZERO) != ZERO or targets.get(ac.pk, ZERO) != ZERO
    ]
    return HouseholdValuation(
        household=household,
        as_of=day,
        ips=ips,
        accounts=views,
        classes=rows,
        missing_prices=sorted(missing),
        stale_prices=sorted(stale),
    )
