"""Small builders for tests, all through the services (so history and audit are exercised)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from accounts import services as svc
from accounts.models import (
    Account,
    AssetClass,
    Client,
    Custodian,
    Firm,
    Household,
    InvestmentPolicy,
    Price,
    Role,
    Security,
    TaxLot,
    User,
)

PASSWORD = "correct-horse-battery"
D = Decimal


@dataclass
class Book:
    firm: Firm
    owner: User  # adviser assigned to the household
    colleague: User  # adviser of the same firm, not assigned
    compliance: User
    client_user: User
    outsider: User  # adviser of another firm
    household: Household
    other_household: Household  # a household of the other firm
    client: Client
    spouse: Client
    taxable: Account
    ira: Account
    custodian: Custodian
    equity: AssetClass
    bonds: AssetClass
    cash: AssetClass
    vti: Security
    bnd: Security
    ips: InvestmentPolicy
    lot_vti: TaxLot
    lot_bnd: TaxLot


def price(security: Security, day: dt.date, close: str) -> Price:
    return Price.objects.create(security=security, date=day, close=D(close), source="test")


def make_book(today: dt.date) -> Book:
    firm = svc.firm_create(name="Alpha Advisers", slug="alpha", actor=None)
    other = svc.firm_create(name="Beta Wealth", slug="beta", actor=None)
    owner = svc.user_create(
        username="owner", password=PASSWORD, role=Role.ADVISER, firm=firm, actor=None
    )
    colleague = svc.user_create(
        username="colleague", password=PASSWORD, role=Role.ADVISER, firm=firm, actor=None
    )
    compliance = svc.user_create(
        username="compliance", password=PASSWORD, role=Role.COMPLIANCE, firm=firm, actor=None
    )
    outsider = svc.user_create(
        username="outsider", password=PASSWORD, role=Role.ADVISER, firm=other, actor=None
    )
    household = svc.household_create(
        firm=firm, name="Smith Household", advisers=[owner], actor=owner
    )
    other_household = svc.household_create(
        firm=other, name="Jones Household", advisers=[outsider], actor=outsider
    )
    client = svc.client_create(
        household=household, first_name="Pat", last_name="Smith", actor=owner
    )
    spouse = svc.client_create(
        household=household, first_name="Sam", last_name="Smith", spouse=client, actor=owner
    )
    client_user = svc.user_create(
        username="client",
        password=PASSWORD,
        role=Role.CLIENT,
        firm=firm,
        household=household,
        actor=owner,
    )
    custodian = svc.custodian_create(
        code="schwab",
        name="Charles Schwab",
        allows_fractional=False,
        account_number_pattern=r"^[0-9]{8}$",
        actor=None,
    )
    equity = svc.asset_class_create(code="us_large", name="US Large Cap", sort_order=1, actor=None)
    bonds = svc.asset_class_create(code="us_bond", name="US Bonds", sort_order=2, actor=None)
    cash = svc.asset_class_create(code="cash", name="Cash", sort_order=3, is_cash=True, actor=None)
    vti = svc.security_create(
        symbol="VTI", name="Total Stock Market", kind="etf", asset_class=equity, actor=None
    )
    bnd = svc.security_create(
        symbol="BND", name="Total Bond", kind="etf", asset_class=bonds, actor=None
    )
    taxable = svc.account_create(
        household=household,
        owner=client,
        custodian=custodian,
        number="12345678",
        name="Pat Individual",
        registration="individual",
        tax_treatment="taxable",
        cash=D("1000.00"),
        actor=owner,
    )
    ira = svc.account_create(
        household=household,
        owner=spouse,
        custodian=custodian,
        number="87654321",
        name="Sam IRA",
        registration="traditional_ira",
        tax_treatment="deferred",
        cash=D("0.00"),
        actor=owner,
    )
    price(vti, today - dt.timedelta(days=1), "250.00")
    price(bnd, today - dt.timedelta(days=1), "72.50")
    lot_vti = svc.lot_create(
        account=taxable,
        security=vti,
        lot_ref="L1",
        quantity=D("100"),
        cost_basis=D("20000.00"),
        acquired=today - dt.timedelta(days=400),
        actor=owner,
    )
    lot_bnd = svc.lot_create(
        account=ira,
        security=bnd,
        lot_ref="L2",
        quantity=D("200"),
        cost_basis=D("16000.00"),
        acquired=today - dt.timedelta(days=340),
        actor=owner,
    )
    ips = svc.ips_create_version(
        household=household,
        targets=[
            svc.TargetInput(weight=D("0.60"), asset_class=equity),
            svc.TargetInput(weight=D("0.35"), asset_class=bonds),
            svc.TargetInput(weight=D("0.05"), asset_class=cash),
        ],
        effective_date=today - dt.timedelta(days=30),
        annual_gain_budget=D("25000"),
        actor=owner,
    )
    return Book(
        firm=firm,
        owner=owner,
        colleague=colleague,
        compliance=compliance,
        client_user=client_user,
        outsider=outsider,
        household=household,
        other_household=other_household,
        client=client,
        spouse=spouse,
        taxable=taxable,
        ira=ira,
        custodian=custodian,
        equity=equity,
        bonds=bonds,
        cash=cash,
        vti=vti,
        bnd=bnd,
        ips=ips,
        lot_vti=lot_vti,
        lot_bnd=lot_bnd,
    )


def add_price_history(
    securities: list[Security], end: dt.date, days: int = 180, seed: int = 11
) -> None:
    """Daily closes for the last ``days`` business days (seeded), so a risk model can be built."""
    import random

    from accounts.demo import business_days, simulate_closes

    calendar = [d for d in business_days(end, int(days * 1.5)) if d < end][-days:]
    from accounts.demo_data import FUNDS

    funds = {row[0] for row in FUNDS}
    specs = [
        (
            s.symbol,
            "etf" if s.symbol in funds else "stock",
            "us_bond" if s.asset_class.code == "us_bond" else "us_large",
        )
        for s in securities
    ]
    paths = simulate_closes(specs, len(calendar), random.Random(seed))
    for security in securities:
        existing = set(Price.objects.filter(security=security).values_list("date", flat=True))
        for day, close in zip(calendar, paths[security.symbol], strict=True):
            if day not in existing:
                Price.objects.create(security=security, date=day, close=close, source="test")
