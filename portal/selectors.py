"""Read-side queries of the workflow: the stale-data check, the review queue and the scenario
comparison. No writes here."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from accounts.access import breaks_visible, can_change_household, households_visible
from accounts.models import (
    AssetClass,
    BreakStatus,
    Household,
    Restriction,
    RestrictionKind,
    Security,
    TaxLot,
)
from accounts.selectors import (
    HouseholdValuation,
    household_valuation,
    ips_in_force,
    latest_prices,
)
from agent.render import format_money
from optimizer.core.snapshot import snapshot_from_dict
from optimizer.models import FINISHED, OptimizationRun, RunStatus
from optimizer.services import SCENARIOS
from portal.models import OPEN_STATUSES, ApprovalStep, Proposal

ZERO = Decimal(0)
# "Years to target": the first forecast year whose total drift (share of capital misallocated)
# is at or below this fraction.
TARGET_DRIFT = 0.01
SCENARIO_LABELS = {
    "conservative": "Conservative",
    "moderate": "Moderate",
    "aggressive": "Aggressive",
    "tax_sensitive": "Tax-sensitive",
    "custom": "Custom",
}


def _account_key(account: Any) -> str:
    return f"{account.custodian.code}-{account.number}"


def _ref(lot_id: str, account: str) -> str:
    prefix = f"{account}/"
    return lot_id[len(prefix) :] if lot_id.startswith(prefix) else lot_id


def _shares(q: Decimal) -> str:
    return f"{q.normalize():f}"


def _restriction_words(row: tuple[Any, ...]) -> str:
    sym, acc, no_sell, no_buy, max_weight = row
    kinds = [k for k, on in (("no-sell", no_sell), ("no-buy", no_buy)) if on]
    if max_weight is not None:
        kinds.append(f"{max_weight * 100:.1f}% maximum-weight")
    where = f" in {acc}" if acc else ""
    return f"A {' and '.join(kinds) or ''} restriction on {sym}{where}".replace("A  ", "A ")


def stale_changes(proposal: Proposal, *, today: dt.date | None = None) -> list[str]:
    """What changed in the book after the proposal's run froze its snapshot: cash, lots,
    prices, restrictions and the IPS in force. Empty means the proposal's data is current."""
    run = proposal.run
    if run.snapshot is None:
        return ["The run has no stored snapshot."]
    snap = snapshot_from_dict(json.loads(run.snapshot.text))
    day = today or timezone.localdate()
    household = proposal.household
    changes: list[str] = []

    accounts = {
        _account_key(a): a
        for a in household.accounts.filter(is_active=True).select_related("custodian")
    }
    snap_cash = {a.id: a.cash for a in snap.accounts}
    for acc_key, account in sorted(accounts.items()):
        if acc_key not in snap_cash:
            changes.append(f"Account {acc_key} was added after the run.")
        elif account.cash != snap_cash[acc_key]:
            changes.append(
                f"Cash in {acc_key} changed from {format_money(snap_cash[acc_key])} to "
                f"{format_money(account.cash)}."
            )
    for acc_key in sorted(set(snap_cash) - set(accounts)):
        changes.append(f"Account {acc_key} is no longer active.")

    current: dict[tuple[str, str], TaxLot] = {}
    for lot in TaxLot.objects.filter(
        account__in=accounts.values(), closed_on__isnull=True, quantity__gt=0, acquired__lte=day
    ).select_related("security", "account__custodian"):
        current[(_account_key(lot.account), lot.lot_ref)] = lot
    frozen = {(lt.account, _ref(lt.lot_id, lt.account)): lt for lt in snap.lots}
    for key in sorted(set(frozen) | set(current)):
        old, new = frozen.get(key), current.get(key)
        where = f"lot {key[1]} in {key[0]}"
        if old is None and new is not None:
            changes.append(
                f"New {where}: {_shares(new.quantity)} {new.security.symbol} "
                f"acquired {new.acquired}."
            )
        elif new is None and old is not None:
            changes.append(f"The {where} ({_shares(old.quantity)} {old.symbol}) is closed or gone.")
        elif old is not None and new is not None:
            if new.quantity != old.quantity:
                changes.append(
                    f"The {where} now holds {_shares(new.quantity)} {old.symbol} "
                    f"(the run used {_shares(old.quantity)})."
                )
            if new.cost_basis != old.cost_basis:
                changes.append(
                    f"The cost basis of the {where} changed from {format_money(old.cost_basis)} "
                    f"to {format_money(new.cost_basis)}."
                )
            if new.holding_period_start != old.holding_period_start:
                changes.append(
                    f"The holding period of the {where} now starts {new.holding_period_start} "
                    f"(the run used {old.holding_period_start})."
                )

    securities = {
        s.symbol: s.pk
        for s in Security.objects.filter(symbol__in=[x.symbol for x in snap.securities])
    }
    prices = latest_prices(securities.values(), as_of=day)
    for sec in snap.securities:
        point = prices.get(securities.get(sec.symbol, -1))
        if point is None:
            changes.append(f"No price for {sec.symbol} any more.")
        elif point.close != sec.price:
            changes.append(
                f"The price of {sec.symbol} changed from {format_money(sec.price)} to "
                f"{format_money(point.close)} ({point.date})."
            )

    ips = ips_in_force(household, day)
    if ips is None:
        changes.append("No IPS is in force any more.")
    elif ips.pk != run.ips_id:
        used = f"version {run.ips.version}" if run.ips is not None else "another version"
        changes.append(f"IPS version {ips.version} is now in force (the run used {used}).")

    def canon(rows: Iterable[tuple[str, str | None, bool, bool, Decimal | None]]) -> Counter[Any]:
        return Counter(
            (sym, acc, ns, nb, None if mw is None else mw.normalize())
            for sym, acc, ns, nb, mw in rows
        )

    in_snapshot = canon(
        (r.symbol, r.account, r.no_sell, r.no_buy, r.max_weight) for r in snap.restrictions
    )
    now_rows: list[tuple[str, str | None, bool, bool, Decimal | None]] = []
    for r in Restriction.objects.filter(household=household).select_related(
        "security", "account__custodian"
    ):
        if not r.in_force(day) or r.security.symbol not in securities:
            continue
        now_rows.append(
            (
                r.security.symbol,
                _account_key(r.account) if r.account is not None else None,
                r.kind == RestrictionKind.NO_SELL,
                r.kind == RestrictionKind.NO_BUY,
                r.max_weight if r.kind == RestrictionKind.MAX_WEIGHT else None,
            )
        )
    for extra in run.overrides.get("restrictions") or []:
        mw = extra.get("max_weight")
        now_rows.append(
            (
                extra["symbol"],
                extra.get("account"),
                bool(extra.get("no_sell", False)),
                bool(extra.get("no_buy", False)),
                None if mw is None else Decimal(str(mw)),
            )
        )
    now = canon(now_rows)
    for row in sorted((in_snapshot - now).elements(), key=str):
        changes.append(f"{_restriction_words(row)} was lifted after the run.")
    for row in sorted((now - in_snapshot).elements(), key=str):
        changes.append(f"{_restriction_words(row)} was added after the run.")
    return changes


# --------------------------------------------------------------------------- review queue


@dataclass
class QueueFlag:
    kind: str
    text: str
    weight: int


@dataclass
class QueueProposal:
    proposal: Proposal
    stale: list[str]
    can_approve: bool
    awaiting_compliance: bool
    vanilla: bool


@dataclass
class QueueRow:
    household: Household
    valuation: HouseholdValuation
    proposals: list[QueueProposal] = field(default_factory=list)
    flags: list[QueueFlag] = field(default_factory=list)
    latest_run: OptimizationRun | None = None

    @property
    def score(self) -> int:
        return sum(f.weight for f in self.flags)


FLAG_WEIGHTS = {
    "awaiting_compliance": 6,
    "stale_data": 5,
    "unexpected_result": 5,
    "reconciliation_break": 4,
    "harvest_blocked_wash_sale": 3,
    "drift": 3,
    "near_long_term": 2,
    "data": 4,
    "four_eyes": 2,
}


def _flag(kind: str, text: str) -> QueueFlag:
    return QueueFlag(kind=kind, text=text, weight=FLAG_WEIGHTS.get(kind, 1))


def review_queue(user: Any) -> list[QueueRow]:
    """The firm's households ranked by need: households with flags first (highest weight
    first), then by drift. Flags: drift beyond band, lots near long term, harvests blocked by
    wash sales, unexpected results (large trade lists, infeasible/blocked/failed runs), stale
    data under an open proposal, open reconciliation breaks, missing data."""
    households = list(
        households_visible(user)
        .filter(is_active=True)
        .prefetch_related("advisers")
        .order_by("name")
    )
    if not households:
        return []
    classes = list(AssetClass.objects.all())
    security_ids = TaxLot.objects.filter(
        account__household__in=households, closed_on__isnull=True
    ).values_list("security_id", flat=True)
    prices = latest_prices(security_ids)
    breaks = dict(
        breaks_visible(user)
        .filter(status=BreakStatus.OPEN, account__household__in=households)
        .values_list("account__household")
        .annotate(n=Count("id"))
        .values_list("account__household", "n")
    )
    open_proposals: dict[int, list[Any]] = defaultdict(list)
    for annotated in (
        Proposal.objects.filter(household__in=households, status__in=OPEN_STATUSES)
        .select_related("run__snapshot", "run__ips", "household__firm", "prepared_by")
        .annotate(
            n_approvals=Count("approvals"),
            n_first=Count("approvals", filter=Q(approvals__step=ApprovalStep.FIRST)),
        )
        .order_by("created_at")
    ):
        open_proposals[annotated.household_id].append(annotated)
    latest: dict[int, OptimizationRun] = {}
    for run in OptimizationRun.objects.filter(
        household__in=households, status__in=FINISHED
    ).order_by("household_id", "-created_at", "-id"):
        latest.setdefault(run.household_id, run)

    rows: list[QueueRow] = []
    for household in households:
        valuation = household_valuation(household, prices=prices, asset_classes=classes)
        row = QueueRow(
            household=household, valuation=valuation, latest_run=latest.get(household.pk)
        )
        for cls in valuation.out_of_band:
            row.flags.append(
                _flag(
                    "drift",
                    f"{cls.asset_class.name} {cls.drift * 100:+.1f} pp, beyond its "
                    f"±{cls.band * 100:.1f}% band",
                )
            )
        near = valuation.lots_near_long_term
        if near:
            row.flags.append(
                _flag(
                    "near_long_term",
                    f"{len(near)} lot{'s' if len(near) != 1 else ''} within 30 days of long term",
                )
            )
        if not valuation.ips:
            row.flags.append(_flag("data", "no IPS in force"))
        if valuation.missing_prices or valuation.stale_prices:
            symbols = ", ".join(valuation.missing_prices + valuation.stale_prices)
            row.flags.append(_flag("data", f"missing or stale prices: {symbols}"))
        if breaks.get(household.pk):
            n = breaks[household.pk]
            row.flags.append(
                _flag(
                    "reconciliation_break", f"{n} open reconciliation break{'s' if n != 1 else ''}"
                )
            )
        last = row.latest_run
        if last is not None and last.status in (
            RunStatus.INFEASIBLE,
            RunStatus.BLOCKED,
            RunStatus.FAILED,
        ):
            row.flags.append(
                _flag(
                    "unexpected_result",
                    f"latest {last.scenario} run {last.get_status_display().lower()}: "
                    f"{last.error[:160]}",
                )
            )
        can_approve = can_change_household(user, household)
        flagged_kinds: set[str] = set()
        for p in open_proposals.get(household.pk, []):
            stale = stale_changes(p)
            n_first = getattr(p, "n_first", 0)
            awaiting = p.requires_four_eyes and n_first > 0
            review = p.review_flags()
            vanilla = (
                not stale
                and not review
                and not p.requires_four_eyes
                and not getattr(p, "n_approvals", 0)
            )
            row.proposals.append(
                QueueProposal(
                    proposal=p,
                    stale=stale,
                    can_approve=can_approve and not awaiting,
                    awaiting_compliance=awaiting,
                    vanilla=vanilla,
                )
            )
            if stale:
                row.flags.append(
                    _flag(
                        "stale_data",
                        f"proposal {p.pk}: data changed after its run ({len(stale)} change{'s' if len(stale) != 1 else ''})",
                    )
                )
            if awaiting:
                row.flags.append(
                    _flag("awaiting_compliance", f"proposal {p.pk} awaits a compliance approval")
                )
            elif p.requires_four_eyes:
                row.flags.append(_flag("four_eyes", f"proposal {p.pk} needs four-eyes approval"))
            for f in review:
                kind = f.get("kind", "")
                if kind == "large_trade_list":
                    row.flags.append(
                        _flag(
                            "unexpected_result",
                            f"proposal {p.pk}: {f.get('tickets')} tickets (large trade list)",
                        )
                    )
                elif kind == "harvest_blocked_wash_sale" and kind not in flagged_kinds:
                    flagged_kinds.add(kind)
                    row.flags.append(
                        _flag(
                            kind,
                            f"harvest of {f.get('symbol')} blocked by a wash sale "
                            f"(buy in {f.get('conflicting_buy_account')} on {f.get('conflicting_buy_date')})",
                        )
                    )
        rows.append(row)
    rows.sort(
        key=lambda r: (0 if r.flags else 1, -r.score, -r.valuation.max_drift, r.household.name)
    )
    return rows


# --------------------------------------------------------------------------- scenarios


@dataclass
class ScenarioColumn:
    scenario: str
    run: OptimizationRun
    result: dict[str, Any] | None
    proposal: Proposal | None

    @property
    def label(self) -> str:
        return SCENARIO_LABELS.get(self.scenario, self.scenario.replace("_", " ").capitalize())

    @property
    def before(self) -> dict[str, Any]:
        return self.result["metrics"]["before"] if self.result else {}

    @property
    def after(self) -> dict[str, Any]:
        return self.result["metrics"]["after"] if self.result else {}

    @property
    def years_to_target(self) -> int | None:
        return years_to_target(self.result) if self.result else None

    @property
    def forecast_years(self) -> int:
        return len(self.result.get("forecast", [])) if self.result else 0


def years_to_target(result: dict[str, Any]) -> int | None:
    """0 when the portfolio starts within ``TARGET_DRIFT`` total drift; else the first forecast
    year (year 1 = this run) whose drift after trading is within it; None if none is."""
    if float(result["metrics"]["before"].get("drift_total", 1.0)) <= TARGET_DRIFT:
        return 0
    if not result.get("forecast"):
        return (
            1 if float(result["metrics"]["after"].get("drift_total", 1.0)) <= TARGET_DRIFT else None
        )
    for row in result["forecast"]:
        if (
            row.get("status") != "infeasible"
            and float(row.get("drift_total_after", 1.0)) <= TARGET_DRIFT
        ):
            return int(row["year"])
    return None


def scenario_runs(
    household: Household, run_ids: Sequence[int] | None = None
) -> list[OptimizationRun]:
    """The runs to compare: the given ids (of this household), or the latest run of each
    scenario, in preset order."""
    runs = OptimizationRun.objects.filter(household=household).select_related("result", "snapshot")
    if run_ids:
        chosen = list(runs.filter(pk__in=run_ids))
    else:
        latest: dict[str, OptimizationRun] = {}
        for run in runs.order_by("-created_at", "-id"):
            latest.setdefault(run.scenario, run)
        chosen = list(latest.values())
    order = {name: i for i, name in enumerate(SCENARIOS)}
    chosen.sort(key=lambda r: (order.get(r.scenario, 99), -r.pk))
    return chosen


def scenario_columns(runs: Sequence[OptimizationRun]) -> list[ScenarioColumn]:
    staged = {p.run_id: p for p in Proposal.objects.filter(run__in=runs)}
    columns = []
    for run in runs:
        result = json.loads(run.result.text) if run.result is not None else None
        columns.append(
            ScenarioColumn(
                scenario=run.scenario, run=run, result=result, proposal=staged.get(run.pk)
            )
        )
    return columns
