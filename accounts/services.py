"""Writes to the book of record. Each service is atomic, takes ``actor=``, validates the whole
object (``full_clean``) before saving, records history on the actor's behalf and appends its
audit event in the same transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction

from accounts.models import (
    ONE,
    ZERO,
    Account,
    AssetClass,
    Client,
    Custodian,
    Firm,
    Household,
    InvestmentPolicy,
    IPSTarget,
    ModelPortfolio,
    ModelPortfolioTarget,
    Restriction,
    Role,
    Security,
    TaxLot,
    Transaction,
    User,
)
from audit.history import acting_as
from audit.services import audit_record


def firm_of(obj: models.Model) -> Firm | None:
    for path in ("firm", "household.firm", "account.household.firm", "ips.household.firm"):
        target: Any = obj
        try:
            for part in path.split("."):
                target = getattr(target, part)
        except AttributeError:
            continue
        if isinstance(target, Firm):
            return target
    return obj if isinstance(obj, Firm) else None


def field_values(obj: models.Model) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.name in ("password", "last_login"):
            continue
        data[field.attname] = field.value_from_object(obj)
    return data


def _save(
    obj: models.Model, *, actor: User | None, event: str, exclude: Sequence[str] = ()
) -> None:
    """Validate, save with history, and audit. The caller holds the transaction."""
    obj.full_clean(exclude=list(exclude) or None)
    creating = obj._state.adding
    with acting_as(actor):
        obj.save()
    audit_record(
        actor=actor,
        event_type=event,
        firm=firm_of(obj),
        obj=obj,
        data={"created" if creating else "changed": field_values(obj)},
    )


@transaction.atomic
def firm_create(*, name: str, slug: str, actor: User | None, **policy: Any) -> Firm:
    firm = Firm(name=name, slug=slug, **policy)
    _save(firm, actor=actor, event="firm.created")
    return firm


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str,
    role: str,
    firm: Firm,
    actor: User | None,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    household: Household | None = None,
) -> User:
    user = User(
        username=username,
        role=role,
        firm=firm,
        household=household if role == Role.CLIENT else None,
        first_name=first_name,
        last_name=last_name,
        email=email,
    )
    user.set_password(password)
    _save(user, actor=actor, event="user.created")
    return user


@transaction.atomic
def asset_class_create(
    *, code: str, name: str, sort_order: int, actor: User | None, is_cash: bool = False
) -> AssetClass:
    asset_class = AssetClass(code=code, name=name, sort_order=sort_order, is_cash=is_cash)
    _save(asset_class, actor=actor, event="asset_class.created")
    return asset_class


@transaction.atomic
def custodian_create(
    *,
    code: str,
    name: str,
    actor: User | None,
    allows_fractional: bool,
    account_number_pattern: str,
) -> Custodian:
    custodian = Custodian(
        code=code,
        name=name,
        allows_fractional=allows_fractional,
        account_number_pattern=account_number_pattern,
    )
    _save(custodian, actor=actor, event="custodian.created")
    return custodian


@transaction.atomic
def security_create(
    *,
    symbol: str,
    name: str,
    kind: str,
    asset_class: AssetClass,
    actor: User | None,
    cusip: str | None = None,
    identical_group: str = "",
) -> Security:
    security = Security(
        symbol=symbol,
        name=name,
        kind=kind,
        asset_class=asset_class,
        cusip=cusip,
        identical_group=identical_group,
    )
    _save(security, actor=actor, event="security.created")
    return security


@transaction.atomic
def household_create(
    *, firm: Firm, name: str, advisers: Iterable[User], actor: User | None, notes: str = ""
) -> Household:
    household = Household(firm=firm, name=name, notes=notes)
    _save(household, actor=actor, event="household.created")
    adviser_list = list(advisers)
    for adviser in adviser_list:
        if adviser.firm_id != firm.pk or adviser.role != Role.ADVISER:
            raise ValidationError({"advisers": f"{adviser.username} is not an adviser of {firm}."})
    with acting_as(actor):
        household.advisers.set(adviser_list)
    audit_record(
        actor=actor,
        event_type="household.advisers_set",
        firm=firm,
        obj=household,
        data={"advisers": sorted(a.pk for a in adviser_list)},
    )
    return household


@transaction.atomic
def client_create(
    *,
    household: Household,
    first_name: str,
    last_name: str,
    actor: User | None,
    date_of_birth: dt.date | None = None,
    email: str = "",
    spouse: Client | None = None,
) -> Client:
    client = Client(
        household=household,
        first_name=first_name,
        last_name=last_name,
        date_of_birth=date_of_birth,
        email=email,
        spouse=spouse,
    )
    _save(client, actor=actor, event="client.created")
    if spouse is not None and spouse.spouse_id is None:
        spouse.spouse = client
        _save(spouse, actor=actor, event="client.spouse_linked")
    return client


@transaction.atomic
def account_create(
    *,
    household: Household,
    owner: Client,
    custodian: Custodian,
    number: str,
    name: str,
    registration: str,
    tax_treatment: str,
    actor: User | None,
    cash: Decimal = ZERO,
    opened: dt.date | None = None,
) -> Account:
    account = Account(
        household=household,
        owner=owner,
        custodian=custodian,
        number=number,
        name=name,
        registration=registration,
        tax_treatment=tax_treatment,
        cash=cash,
        opened=opened,
        allows_fractional=custodian.allows_fractional,
    )
    _save(account, actor=actor, event="account.created")
    return account


@transaction.atomic
def account_set_cash(
    *, account: Account, cash: Decimal, actor: User | None, reason: str
) -> Account:
    account = Account.objects.select_for_update().get(pk=account.pk)
    before = account.cash
    account.cash = cash
    account.full_clean()
    with acting_as(actor):
        account.save(update_fields=["cash"])
    audit_record(
        actor=actor,
        event_type="account.cash_set",
        firm=account.household.firm,
        obj=account,
        data={"before": before, "after": cash, "reason": reason},
    )
    return account


@transaction.atomic
def lot_create(
    *,
    account: Account,
    security: Security,
    lot_ref: str,
    quantity: Decimal,
    cost_basis: Decimal,
    acquired: dt.date,
    actor: User | None,
    holding_period_start: dt.date | None = None,
    wash_sale_adjustment: Decimal = ZERO,
) -> TaxLot:
    lot = TaxLot(
        account=account,
        security=security,
        lot_ref=lot_ref,
        quantity=quantity,
        cost_basis=cost_basis,
        acquired=acquired,
        holding_period_start=holding_period_start or acquired,
        wash_sale_adjustment=wash_sale_adjustment,
    )
    _save(lot, actor=actor, event="lot.created")
    return lot


@transaction.atomic
def transaction_record(
    *,
    account: Account,
    kind: str,
    trade_date: dt.date,
    amount: Decimal,
    actor: User | None,
    security: Security | None = None,
    quantity: Decimal | None = None,
    price: Decimal | None = None,
    settle_date: dt.date | None = None,
    lot_ref: str = "",
    external_id: str = "",
    description: str = "",
    realized_gain: Decimal | None = None,
) -> Transaction:
    txn = Transaction(
        account=account,
        kind=kind,
        trade_date=trade_date,
        amount=amount,
        security=security,
        quantity=quantity,
        price=price,
        settle_date=settle_date,
        lot_ref=lot_ref,
        external_id=external_id,
        description=description,
        realized_gain=realized_gain,
    )
    _save(txn, actor=actor, event="transaction.recorded")
    return txn


@dataclass(frozen=True)
class TargetInput:
    """One IPS target: an asset class *or* a security, with its weight and optional band."""

    weight: Decimal
    asset_class: AssetClass | None = None
    security: Security | None = None
    band: Decimal | None = None


def validate_target_weights(weights: Iterable[Decimal], *, field: str = "targets") -> None:
    """Targets are fractions that sum to exactly 100%."""
    values = list(weights)
    if not values:
        raise ValidationError({field: "An IPS needs at least one target."})
    for index, weight in enumerate(values, start=1):
        if weight < ZERO or weight > ONE:
            raise ValidationError(
                {field: f"Target {index}: weight {weight} is not between 0 and 1."}
            )
    total = sum(values, ZERO)
    if total != ONE:
        raise ValidationError(
            {field: f"Target weights sum to {total * 100:.4f}%; they must sum to exactly 100%."}
        )


@transaction.atomic
def ips_create_version(
    *,
    household: Household,
    targets: Sequence[TargetInput],
    effective_date: dt.date,
    actor: User | None,
    cash_floor: Decimal = Decimal("0.01"),
    default_band: Decimal = Decimal("0.05"),
    st_rate: Decimal = Decimal("0.37"),
    lt_rate: Decimal = Decimal("0.20"),
    annual_gain_budget: Decimal | None = None,
    model_portfolio: ModelPortfolio | None = None,
    objectives: str = "",
) -> InvestmentPolicy:
    """Add a new IPS version; earlier versions stay as they were (the version in force on a day
    is the latest one effective on or before it)."""
    Household.objects.select_for_update().filter(pk=household.pk).first()
    validate_target_weights([t.weight for t in targets])
    seen: set[tuple[str, int]] = set()
    for index, target in enumerate(targets, start=1):
        if (target.asset_class is None) == (target.security is None):
            raise ValidationError(
                {"targets": f"Target {index} must name an asset class or a security, not both."}
            )
        key = ("ac", target.asset_class.pk) if target.asset_class else ("sec", target.security.pk)  # type: ignore[union-attr]
        if key in seen:
            raise ValidationError({"targets": f"Target {index} repeats an earlier target."})
        seen.add(key)
    latest = household.policies.order_by("-version").first()
    if latest is not None and effective_date < latest.effective_date:
        raise ValidationError(
            {
                "effective_date": (
                    f"Version {latest.version} is effective {latest.effective_date}; "
                    "a new version cannot take effect before it."
                )
            }
        )
    ips = InvestmentPolicy(
        household=household,
        version=(latest.version + 1) if latest else 1,
        effective_date=effective_date,
        cash_floor=cash_floor,
        default_band=default_band,
        st_rate=st_rate,
        lt_rate=lt_rate,
        annual_gain_budget=annual_gain_budget,
        model_portfolio=model_portfolio,
        objectives=objectives,
        created_by=actor,
    )
    ips.full_clean()
    with acting_as(actor):
        ips.save()
        for target in targets:
            row = IPSTarget(
                ips=ips,
                asset_class=target.asset_class,
                security=target.security,
                weight=target.weight,
                band=target.band,
            )
            row.full_clean()
            row.save()
    audit_record(
        actor=actor,
        event_type="ips.version_created",
        firm=household.firm,
        obj=ips,
        data={
            "ips": field_values(ips),
            "targets": [
                {
                    "asset_class": t.asset_class.code if t.asset_class else None,
                    "security": t.security.symbol if t.security else None,
                    "weight": t.weight,
                    "band": t.band,
                }
                for t in targets
            ],
        },
    )
    return ips


@transaction.atomic
def model_portfolio_create_version(
    *,
    firm: Firm,
    name: str,
    weights: Sequence[tuple[Security, Decimal]],
    effective_date: dt.date,
    actor: User | None,
    description: str = "",
) -> ModelPortfolio:
    validate_target_weights([w for _, w in weights], field="weights")
    latest = ModelPortfolio.objects.filter(firm=firm, name=name).order_by("-version").first()
    model = ModelPortfolio(
        firm=firm,
        name=name,
        version=(latest.version + 1) if latest else 1,
        effective_date=effective_date,
        description=description,
    )
    model.full_clean()
    with acting_as(actor):
        model.save()
        for security, weight in weights:
            row = ModelPortfolioTarget(model=model, security=security, weight=weight)
            row.full_clean()
            row.save()
    audit_record(
        actor=actor,
        event_type="model_portfolio.version_created",
        firm=firm,
        obj=model,
        data={"name": name, "version": model.version, "weights": {s.symbol: w for s, w in weights}},
    )
    return model


@transaction.atomic
def restriction_create(
    *,
    household: Household,
    security: Security,
    kind: str,
    reason: str,
    actor: User | None,
    account: Account | None = None,
    max_weight: Decimal | None = None,
    note: str = "",
    start_date: dt.date | None = None,
) -> Restriction:
    restriction = Restriction(
        household=household,
        security=security,
        kind=kind,
        reason=reason,
        account=account,
        max_weight=max_weight,
        note=note,
    )
    if start_date is not None:
        restriction.start_date = start_date
    _save(restriction, actor=actor, event="restriction.created")
    return restriction


@transaction.atomic
def restriction_end(
    *, restriction: Restriction, end_date: dt.date, actor: User | None
) -> Restriction:
    restriction.end_date = end_date
    _save(restriction, actor=actor, event="restriction.ended")
    return restriction
