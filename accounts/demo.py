"""Builds the demo book: a realistic firm with seeded, deterministic data.

The same ``as_of`` and ``seed`` give the same book. Everything is written through the services
(history and audit events included) in one transaction, except the daily prices, which are
immutable market data loaded in batches.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from django.db import transaction

from accounts import demo_data as data
from accounts import services as svc
from accounts.models import (
    CENT,
    ZERO,
    Account,
    AssetClass,
    Client,
    Custodian,
    Firm,
    Household,
    ModelPortfolio,
    Price,
    Role,
    Security,
    TaxLot,
    User,
)

DEMO_FIRM_SLUG = "harbor-point"
OTHER_FIRM_SLUG = "outside-firm"
DEMO_PASSWORD = "demo-portal-2026"  # noqa: S105 - published demo credential, refused in production
PRICE_HISTORY_DAYS = 730


@dataclass(frozen=True)
class Login:
    username: str
    role: str
    description: str


@dataclass
class DemoResult:
    created: bool
    logins: list[Login]
    counts: dict[str, int] = field(default_factory=dict)


def cusip_check_digit(base: str) -> str:
    """The ninth character of a CUSIP (modulus 10, double-add-double)."""
    total = 0
    for index, char in enumerate(base):
        if char.isdigit():
            value = int(char)
        elif char.isalpha():
            value = ord(char) - ord("A") + 10
        else:
            value = {"*": 36, "@": 37, "#": 38}[char]
        if index % 2 == 1:
            value *= 2
        total += value // 10 + value % 10
    return str((10 - total % 10) % 10)


def synthetic_cusip(rng: random.Random) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    base = "".join(rng.choice(alphabet) for _ in range(8))
    return base + cusip_check_digit(base)


def business_days(end: dt.date, days: int) -> list[dt.date]:
    start = end - dt.timedelta(days=days)
    out = []
    day = start
    while day <= end:
        if day.weekday() < 5:
            out.append(day)
        day += dt.timedelta(days=1)
    return out


def simulate_closes(
    specs: list[tuple[str, str, str]], n_days: int, rng: random.Random
) -> dict[str, list[Decimal]]:
    """Daily closes by correlated geometric Brownian motion: a market factor, an asset-class
    factor and an idiosyncratic shock per security, rounded to the cent. ``specs`` holds
    (symbol, kind, asset-class code); the same specs and generator state give the same paths."""
    params = {code: (mu, vol) for code, _name, mu, vol in data.ASSET_CLASSES}
    loading = {"us_large": 0.8, "us_small": 0.8, "intl_dev": 0.7, "em": 0.6, "reit": 0.6}
    market = [rng.gauss(0, 1) for _ in range(n_days)]
    class_shock = {code: [rng.gauss(0, 1) for _ in range(n_days)] for code in params}
    starts = {symbol: Decimal(start) for symbol, *_rest, start in data.FUNDS}
    out: dict[str, list[Decimal]] = {}
    for symbol, kind, code in specs:
        mu, vol = params[code]
        if kind == "stock":
            vol = vol * 1.6
            start = Decimal(str(round(20 + rng.random() * 480, 2)))
        else:
            start = starts[symbol]
        beta = loading.get(code, 0.0)
        gamma = 0.5 if code != "cash" else 0.0
        idio = math.sqrt(max(0.05, 1 - beta**2 - gamma**2))
        daily_mu = mu / 252
        daily_vol = vol / math.sqrt(252)
        level = float(start)
        closes: list[Decimal] = []
        for t in range(n_days):
            if t > 0:
                shock = beta * market[t] + gamma * class_shock[code][t] + idio * rng.gauss(0, 1)
                level *= math.exp(daily_mu - 0.5 * daily_vol**2 + daily_vol * shock)
            closes.append(Decimal(str(round(max(level, 0.5), 2))))
        out[symbol] = closes
    return out


LOGINS = [
    Login("alice", Role.ADVISER, "adviser, Harbor Point (households A-M)"),
    Login("bob", Role.ADVISER, "adviser, Harbor Point (households N-Z)"),
    Login("carol", Role.COMPLIANCE, "compliance officer, Harbor Point (read-only, whole firm)"),
    Login("margaret", Role.CLIENT, "client, Abbott household only"),
    Login("oscar", Role.ADVISER, "adviser at another firm (sees none of Harbor Point)"),
]


class DemoBuilder:
    def __init__(self, *, as_of: dt.date, seed: int, log: Callable[[str], None]) -> None:
        self.as_of = as_of
        self.rng = random.Random(seed)
        self.log = log
        self.days = business_days(as_of, PRICE_HISTORY_DAYS)
        self.classes: dict[str, AssetClass] = {}
        self.securities: dict[str, Security] = {}
        self.custodians: list[Custodian] = []
        self.closes: dict[str, list[Decimal]] = {}
        self.day_index = {day: i for i, day in enumerate(self.days)}
        self.lot_seq = 0
        self.account_numbers: set[str] = set()

    # -- reference data -------------------------------------------------------------------
    def reference_data(self) -> None:
        for order, (code, name, _mu, _vol) in enumerate(data.ASSET_CLASSES):
            self.classes[code] = svc.asset_class_create(
                code=code, name=name, sort_order=order, is_cash=(code == "cash"), actor=None
            )
        for code, name, fractional, pattern in data.CUSTODIANS:
            self.custodians.append(
                svc.custodian_create(
                    code=code,
                    name=name,
                    allows_fractional=fractional,
                    account_number_pattern=pattern,
                    actor=None,
                )
            )
        for symbol, name, kind, ac, group, _start in data.FUNDS:
            self.securities[symbol] = svc.security_create(
                symbol=symbol,
                name=name,
                kind=kind,
                asset_class=self.classes[ac],
                identical_group=group,
                cusip=synthetic_cusip(self.rng),
                actor=None,
            )
        for symbol, name in data.stock_list():
            self.securities[symbol] = svc.security_create(
                symbol=symbol,
                name=name,
                kind="stock",
                asset_class=self.classes["us_large"],
                identical_group=data.STOCK_GROUPS.get(symbol, ""),
                cusip=synthetic_cusip(self.rng),
                actor=None,
            )

    def stock_symbols(self) -> list[str]:
        return [symbol for symbol, _name in data.stock_list()]

    # -- prices -----------------------------------------------------------------------------
    def prices(self) -> int:
        specs = [
            (symbol, security.kind, security.asset_class.code)
            for symbol, security in self.securities.items()
        ]
        self.closes = simulate_closes(specs, len(self.days), self.rng)
        rows = [
            Price(security=self.securities[symbol], date=day, close=close, source="demo")
            for symbol, closes in self.closes.items()
            for day, close in zip(self.days, closes, strict=True)
        ]
        # Immutable market data (not a history-tracked model): loaded in batches.
        Price.objects.bulk_create(rows, batch_size=2000)
        return len(rows)

    def close_on(self, symbol: str, day: dt.date) -> Decimal:
        while day not in self.day_index:
            day -= dt.timedelta(days=1)
        return self.closes[symbol][self.day_index[day]]

    def last_close(self, symbol: str) -> Decimal:
        return self.closes[symbol][-1]

    # -- people and accounts ----------------------------------------------------------------
    def account_number(self, custodian: Custodian) -> str:
        while True:
            digits = f"{self.rng.randrange(10**6):06d}"
            if custodian.code == "schwab":
                number = f"{self.rng.randrange(10, 99)}{digits}"
            elif custodian.code == "fidelity":
                number = f"{self.rng.choice('XYZ')}{self.rng.randrange(10, 99)}-{digits}"
            else:
                number = f"{self.rng.choice(['5PX', '7QR', '3LM'])}-{digits}"
            if number not in self.account_numbers:
                self.account_numbers.add(number)
                return number

    def next_lot_ref(self, account: Account) -> str:
        self.lot_seq += 1
        return f"{account.custodian.code[:2].upper()}{self.lot_seq:07d}"

    def add_lot(
        self,
        account: Account,
        symbol: str,
        dollars: Decimal,
        acquired: dt.date,
        *,
        basis_factor: Decimal | None = None,
    ) -> TaxLot | None:
        """A lot of about ``dollars`` bought on ``acquired`` at that day's close (before the
        price history: sized at today's close). ``basis_factor`` scales the cost per share, so
        0.2 is a large embedded gain and 1.2 a loss, without changing the position's size."""
        security = self.securities[symbol]
        in_history = acquired >= self.days[0]
        price = self.close_on(symbol, acquired) if in_history else self.last_close(symbol)
        quantity = (dollars / price).quantize(Decimal("1"), rounding=ROUND_DOWN)
        if basis_factor is not None:
            price = (price * basis_factor).quantize(Decimal("0.01"))
        if quantity <= 0:
            return None
        basis = (quantity * price).quantize(CENT)
        lot_ref = self.next_lot_ref(account)
        lot = svc.lot_create(
            account=account,
            security=security,
            lot_ref=lot_ref,
            quantity=quantity,
            cost_basis=basis,
            acquired=acquired,
            actor=None,
        )
        svc.transaction_record(
            account=account,
            kind="buy" if in_history else "transfer_in",
            trade_date=acquired,
            security=security,
            quantity=quantity,
            price=price if in_history else None,
            amount=-basis if in_history else ZERO,
            lot_ref=lot_ref,
            external_id=f"OPEN-{lot_ref}",
            description="Purchase"
            if in_history
            else "Transfer of position (basis from prior custodian)",
            actor=None,
        )
        return lot

    def random_acquired(self) -> tuple[dt.date, Decimal | None]:
        """Mostly inside the price history; some old lots; some just short of long-term."""
        roll = self.rng.random()
        if roll < 0.06:
            days = self.rng.randint(335, 362)  # 3 to 30 days from long-term
            return self.as_of - dt.timedelta(days=days), None
        if roll < 0.26:
            years = self.rng.randint(3, 9)
            factor = Decimal(str(round(0.30 + self.rng.random() * 0.55, 2)))
            return self.as_of - dt.timedelta(days=365 * years + self.rng.randint(0, 200)), factor
        days = self.rng.randint(20, PRICE_HISTORY_DAYS - 5)
        return self.as_of - dt.timedelta(days=days), None

    def fund_lots(self, account: Account, value: Decimal, weights: dict[str, Decimal]) -> None:
        for code, weight in weights.items():
            if weight <= 0 or (code == "cash" and self.rng.random() < 0.5):
                continue
            funds = data.CLASS_FUNDS[code]
            picks = [funds[0]] if self.rng.random() < 0.6 else self.rng.sample(funds[:4], 2)
            drift = Decimal(str(round(0.65 + self.rng.random() * 0.7, 3)))
            budget = value * weight * drift / len(picks)
            for symbol in picks:
                n_lots = self.rng.choice([1, 1, 2, 2, 3])
                for _ in range(n_lots):
                    acquired, factor = self.random_acquired()
                    self.add_lot(account, symbol, budget / n_lots, acquired, basis_factor=factor)

    def direct_index_lots(self, account: Account, value: Decimal, model: ModelPortfolio) -> None:
        for target in model.targets.select_related("security"):
            dollars = value * target.weight
            acquired, factor = self.random_acquired()
            self.add_lot(account, target.security.symbol, dollars, acquired, basis_factor=factor)

    def model_portfolio(self, firm: Firm) -> ModelPortfolio:
        symbols = self.stock_symbols()
        raw = [1 / (rank + 6) for rank in range(len(symbols))]
        total = sum(raw)
        weights = [Decimal(str(w / total)).quantize(Decimal("0.000001")) for w in raw]
        weights[0] += Decimal("1") - sum(weights)
        return svc.model_portfolio_create_version(
            firm=firm,
            name="US Large Cap Direct Index",
            weights=[(self.securities[s], w) for s, w in zip(symbols, weights, strict=True)],
            effective_date=self.as_of - dt.timedelta(days=500),
            description=f"Tax-managed direct index of {len(symbols)} large US stocks, weighted by size rank.",
            actor=None,
        )

    def users(self, firm: Firm) -> dict[str, User]:
        people = {
            "alice": ("Alice", "Moreno", Role.ADVISER),
            "bob": ("Bob", "Okafor", Role.ADVISER),
            "carol": ("Carol", "Lindgren", Role.COMPLIANCE),
        }
        return {
            username: svc.user_create(
                username=username,
                password=DEMO_PASSWORD,
                role=role,
                firm=firm,
                first_name=first,
                last_name=last,
                email=f"{username}@harborpoint.example",
                actor=None,
            )
            for username, (first, last, role) in people.items()
        }

    def households(
        self, firm: Firm, staff: dict[str, User], model: ModelPortfolio
    ) -> list[Household]:
        households = []
        profiles = ["moderate", "growth", "conservative", "moderate", "growth"]
        direct_index = {1, 4, 8, 13, 17, 21}
        for index, last in enumerate(data.HOUSEHOLD_NAMES):
            adviser = staff["alice"] if last[0] <= "M" else staff["bob"]
            advisers = [adviser] + ([staff["bob"]] if index in (3, 11) else [])
            household = svc.household_create(
                firm=firm, name=f"{last} Household", advisers=advisers, actor=None
            )
            first, spouse_first = data.FIRST_NAMES[index]
            born = dt.date(1950 + (index * 7) % 30, 1 + index % 12, 1 + (index * 3) % 27)
            primary = svc.client_create(
                household=household,
                first_name=first,
                last_name=last,
                date_of_birth=born,
                email=f"{first.lower()}.{last.lower().replace(chr(39), '')}@example.com",
                actor=None,
            )
            spouse = None
            if index % 6 != 5:
                spouse = svc.client_create(
                    household=household,
                    first_name=spouse_first,
                    last_name=last,
                    date_of_birth=born + dt.timedelta(days=400 + index * 11),
                    spouse=primary,
                    actor=None,
                )
            profile = profiles[index % len(profiles)]
            pattern = data.ACCOUNT_PATTERNS[index % len(data.ACCOUNT_PATTERNS)]
            home = self.custodians[index % 3]
            size = Decimal(
                str(round(math.exp(self.rng.uniform(math.log(250_000), math.log(4_000_000))), -3))
            )
            accounts = []
            for k, (registration, tax) in enumerate(pattern):
                custodian = (
                    home
                    if not (k == len(pattern) - 1 and index % 4 == 0)
                    else self.custodians[(index + 1) % 3]
                )
                owner = primary if (k % 2 == 0 or spouse is None) else spouse
                label = {
                    "individual": f"{owner.first_name} Individual",
                    "joint": f"{first} & {spouse_first} Joint" if spouse else f"{first} Individual",
                    "trust": f"{last} Family Trust",
                    "traditional_ira": f"{owner.first_name} Traditional IRA",
                    "roth_ira": f"{owner.first_name} Roth IRA",
                }[registration]
                if registration == "joint" and spouse is None:
                    registration, tax = "individual", "taxable"
                share = Decimal("0.55") if k == 0 else Decimal("0.45") / (len(pattern) - 1)
                value = (size * share).quantize(Decimal("1"))
                cash = (value * Decimal(str(round(0.005 + self.rng.random() * 0.04, 4)))).quantize(
                    CENT
                )
                account = svc.account_create(
                    household=household,
                    owner=owner,
                    custodian=custodian,
                    number=self.account_number(custodian),
                    name=label,
                    registration=registration,
                    tax_treatment=tax,
                    cash=cash,
                    opened=self.as_of - dt.timedelta(days=365 * 6),
                    actor=None,
                )
                accounts.append((account, value))
            targets = data.PROFILES[profile]
            for k, (account, value) in enumerate(accounts):
                if k == 0 and index in direct_index:
                    sleeve = value * targets["us_large"]
                    self.direct_index_lots(account, sleeve, model)
                    rest = {c: w for c, w in targets.items() if c != "us_large"}
                    self.fund_lots(account, value, rest)
                else:
                    self.fund_lots(account, value, targets)
            self.ips(household, index, profile, size, model if index in direct_index else None)
            households.append(household)
        return households

    def ips(
        self,
        household: Household,
        index: int,
        profile: str,
        size: Decimal,
        model: ModelPortfolio | None,
    ) -> None:
        targets = data.PROFILES[profile]
        big = size > Decimal("1500000")
        budget = (
            Decimal("50000")
            if big
            else Decimal("25000")
            if profile != "conservative"
            else Decimal("10000")
        )
        common: dict[str, Any] = {
            "household": household,
            "cash_floor": Decimal("0.01") if profile != "conservative" else Decimal("0.03"),
            "st_rate": Decimal("0.37") if big else Decimal("0.32"),
            "lt_rate": Decimal("0.20") if big else Decimal("0.15"),
            "model_portfolio": model,
            "actor": None,
        }
        svc.ips_create_version(
            targets=[
                svc.TargetInput(weight=w, asset_class=self.classes[c]) for c, w in targets.items()
            ],
            effective_date=self.as_of - dt.timedelta(days=420),
            default_band=Decimal("0.05"),
            annual_gain_budget=budget,
            objectives=f"{profile.title()} growth of capital with attention to after-tax return.",
            **common,
        )
        if index % 3 == 0:
            revised = dict(targets)
            shift = Decimal("0.02")
            revised["us_bond"] -= shift
            revised["us_large"] += shift
            svc.ips_create_version(
                targets=[
                    svc.TargetInput(weight=w, asset_class=self.classes[c])
                    for c, w in revised.items()
                ],
                effective_date=self.as_of - dt.timedelta(days=90),
                default_band=Decimal("0.04"),
                annual_gain_budget=budget,
                objectives="Annual review: 2% moved from core bonds to US large cap.",
                **common,
            )

    # -- special situations -----------------------------------------------------------------
    def situations(self, households: list[Household]) -> None:
        """Employer stock and other restrictions, and recent trades that open wash-sale windows."""
        as_of = self.as_of

        def taxable(h: Household) -> Account:
            return h.accounts.filter(tax_treatment="taxable").order_by("pk").first()  # type: ignore[return-value]

        def by_reg(h: Household, registration: str) -> Account | None:
            return h.accounts.filter(registration=registration).order_by("pk").first()

        employer = [
            (0, "AAPL", "Margaret's employer; sells only under her 10b5-1 plan"),
            (2, "JPM", "Employer stock; trading window restrictions"),
            (5, "NVDA", "Employer stock; insider blackout periods"),
        ]
        for index, symbol, note in employer:
            h = households[index]
            account = taxable(h)
            self.add_lot(
                account,
                symbol,
                Decimal("180000"),
                as_of - dt.timedelta(days=2900),
                basis_factor=Decimal("0.18"),
            )
            svc.restriction_create(
                household=h,
                security=self.securities[symbol],
                kind="no_sell",
                reason="employer_stock",
                note=note,
                start_date=as_of - dt.timedelta(days=700),
                actor=None,
            )
        svc.restriction_create(
            household=households[7],
            security=self.securities["TSLA"],
            kind="no_buy",
            reason="client_request",
            note="Client asked not to own TSLA",
            actor=None,
            start_date=as_of - dt.timedelta(days=300),
        )
        svc.restriction_create(
            household=households[9],
            security=self.securities["XOM"],
            kind="no_buy",
            reason="esg",
            note="Fossil-fuel screen",
            actor=None,
            start_date=as_of - dt.timedelta(days=300),
        )
        svc.restriction_create(
            household=households[9],
            security=self.securities["CVX"],
            kind="no_buy",
            reason="esg",
            note="Fossil-fuel screen",
            actor=None,
            start_date=as_of - dt.timedelta(days=300),
        )
        h11 = households[11]
        self.add_lot(
            taxable(h11),
            "MSFT",
            Decimal("400000"),
            as_of - dt.timedelta(days=3300),
            basis_factor=Decimal("0.12"),
        )
        svc.restriction_create(
            household=h11,
            security=self.securities["MSFT"],
            kind="max_weight",
            max_weight=Decimal("0.15"),
            reason="concentrated",
            note="Reduce gradually; at most 15% of the household",
            actor=None,
            start_date=as_of - dt.timedelta(days=200),
        )

        # Brennan: a VWO lot sold at a loss 12 days ago (no VWO buys until the window closes), and
        # VOO bought in the IRA 8 days ago while the taxable IVV lot sits at a loss (same S&P 500
        # group): harvesting IVV now would be a wash sale, disallowed permanently via the IRA.
        h1 = households[1]
        joint = taxable(h1)
        sold_on = as_of - dt.timedelta(days=12)
        vwo_price = self.close_on("VWO", sold_on)
        vwo_basis = (Decimal(300) * vwo_price * Decimal("1.22")).quantize(CENT)
        svc.transaction_record(
            account=joint,
            kind="sell",
            trade_date=sold_on,
            security=self.securities["VWO"],
            quantity=Decimal(300),
            price=vwo_price,
            amount=(Decimal(300) * vwo_price).quantize(CENT),
            external_id="DEMO-VWO-HARVEST",
            description=f"Tax-loss harvest: 300 VWO, basis {vwo_basis}",
            realized_gain=(Decimal(300) * vwo_price).quantize(CENT) - vwo_basis,
            actor=None,
        )
        self.add_lot(joint, "IEMG", Decimal(300) * vwo_price, sold_on)
        self.add_lot(
            joint,
            "IVV",
            Decimal("60000"),
            as_of - dt.timedelta(days=150),
            basis_factor=Decimal("1.18"),
        )
        ira = by_reg(h1, "traditional_ira")
        if ira is not None:
            self.add_lot(ira, "VOO", Decimal("25000"), as_of - dt.timedelta(days=8))
        # Eriksen: the spouse's Roth bought VEA 5 days ago; the joint account holds VEA at a loss.
        h4 = households[4]
        self.add_lot(
            taxable(h4),
            "VEA",
            Decimal("45000"),
            as_of - dt.timedelta(days=200),
            basis_factor=Decimal("1.15"),
        )
        roth = by_reg(h4, "roth_ira") or by_reg(h4, "traditional_ira")
        if roth is not None:
            self.add_lot(roth, "VEA", Decimal("12000"), as_of - dt.timedelta(days=5))
        # Fujimoto: IEMG added 20 days ago next to an older IEMG lot at a loss (same account).
        h6 = households[6]
        self.add_lot(
            taxable(h6),
            "IEMG",
            Decimal("30000"),
            as_of - dt.timedelta(days=260),
            basis_factor=Decimal("1.2"),
        )
        self.add_lot(taxable(h6), "IEMG", Decimal("10000"), as_of - dt.timedelta(days=20))

    def other_firm(self) -> None:
        firm = svc.firm_create(name="Outside Advisory LLC", slug=OTHER_FIRM_SLUG, actor=None)
        oscar = svc.user_create(
            username="oscar",
            password=DEMO_PASSWORD,
            role=Role.ADVISER,
            firm=firm,
            first_name="Oscar",
            last_name="Reyes",
            actor=None,
        )
        household = svc.household_create(
            firm=firm, name="Reyes Household", advisers=[oscar], actor=None
        )
        owner = svc.client_create(
            household=household, first_name="Ana", last_name="Reyes", actor=None
        )
        account = svc.account_create(
            household=household,
            owner=owner,
            custodian=self.custodians[0],
            number=self.account_number(self.custodians[0]),
            name="Ana Individual",
            registration="individual",
            tax_treatment="taxable",
            cash=Decimal("5000.00"),
            actor=None,
        )
        self.add_lot(account, "VTI", Decimal("80000"), self.as_of - dt.timedelta(days=600))
        svc.ips_create_version(
            household=household,
            targets=[
                svc.TargetInput(weight=Decimal("0.9"), asset_class=self.classes["us_large"]),
                svc.TargetInput(weight=Decimal("0.1"), asset_class=self.classes["cash"]),
            ],
            effective_date=self.as_of - dt.timedelta(days=300),
            actor=None,
        )


def demo_exists() -> bool:
    return Firm.objects.filter(slug=DEMO_FIRM_SLUG).exists()


@transaction.atomic
def build_demo(*, as_of: dt.date, seed: int, log: Callable[[str], None]) -> DemoResult:
    """Create the demo book unless it is already there (idempotent)."""
    if demo_exists():
        return DemoResult(created=False, logins=LOGINS)
    builder = DemoBuilder(as_of=as_of, seed=seed, log=log)
    builder.reference_data()
    log(f"{len(builder.securities)} securities")
    prices = builder.prices()
    log(f"{prices} daily prices over {len(builder.days)} business days")
    firm = svc.firm_create(
        name="Harbor Point Wealth Partners",
        slug=DEMO_FIRM_SLUG,
        four_eyes_gain_threshold=Decimal("50000"),
        four_eyes_turnover_threshold=Decimal("0.25"),
        actor=None,
    )
    staff = builder.users(firm)
    model = builder.model_portfolio(firm)
    households = builder.households(firm, staff, model)
    builder.situations(households)
    abbott = households[0]
    svc.user_create(
        username="margaret",
        password=DEMO_PASSWORD,
        role=Role.CLIENT,
        firm=firm,
        household=abbott,
        first_name="Margaret",
        last_name="Abbott",
        actor=None,
    )
    builder.other_firm()
    counts = {
        "households": Household.objects.filter(firm=firm).count(),
        "clients": Client.objects.filter(household__firm=firm).count(),
        "accounts": Account.objects.filter(household__firm=firm).count(),
        "custodians": Custodian.objects.count(),
        "securities": Security.objects.count(),
        "lots": TaxLot.objects.filter(account__household__firm=firm).count(),
        "prices": Price.objects.count(),
        "users": User.objects.filter(firm=firm).count(),
    }
    return DemoResult(created=True, logins=LOGINS, counts=counts)
