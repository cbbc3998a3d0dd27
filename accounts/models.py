"""The book of record: firms, people, accounts, securities, lots, prices, policies, restrictions.

Money is ``Decimal`` to the cent, quantities to 1e-6 share, weights and rates are fractions
(0.25 = 25%) to 1e-6. Every model of record keeps its history (django-simple-history); the
exemptions and their reasons are listed in ``audit.registry.HISTORY_EXEMPT``.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

ZERO = Decimal("0")
ONE = Decimal("1")
CENT = Decimal("0.01")


def money_field(**kwargs: Any) -> models.DecimalField:
    """Dollars, exact to the cent."""
    return models.DecimalField(max_digits=18, decimal_places=2, **kwargs)


def quantity_field(**kwargs: Any) -> models.DecimalField:
    """Shares, exact to a millionth (fractional shares where the custodian allows them)."""
    return models.DecimalField(max_digits=20, decimal_places=6, **kwargs)


def price_field(**kwargs: Any) -> models.DecimalField:
    """Price per share in dollars, to 1e-6."""
    return models.DecimalField(max_digits=18, decimal_places=6, **kwargs)


def fraction_field(**kwargs: Any) -> models.DecimalField:
    """A weight or a rate as a fraction (0.25 = 25%), to 1e-6."""
    return models.DecimalField(max_digits=9, decimal_places=6, **kwargs)


def today() -> dt.date:
    return timezone.localdate()


class Role(models.TextChoices):
    ADVISER = "adviser", "Adviser"
    COMPLIANCE = "compliance", "Compliance officer"
    CLIENT = "client", "Client"


class Firm(models.Model):
    """The tenant boundary: nothing is visible across firms."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    four_eyes_gain_threshold = money_field(
        null=True,
        blank=True,
        help_text="Net realized gains above this amount require a compliance approver.",
    )
    four_eyes_turnover_threshold = fraction_field(
        null=True, blank=True, help_text="Turnover above this fraction requires a second approver."
    )
    four_eyes_on_short_term_gain = models.BooleanField(default=True)
    four_eyes_on_restricted_trade = models.BooleanField(default=True)
    trade_cost_bps = models.DecimalField(
        max_digits=7,
        decimal_places=3,
        default=Decimal("2"),
        help_text="Estimated spread and market impact per trade, in basis points of its value.",
    )
    ticket_fee = money_field(
        default=Decimal("4.95"), help_text="Clearing and ticket charge per order, in dollars."
    )
    min_trade_value = money_field(
        default=Decimal("250"), help_text="Orders smaller than this are not proposed, in dollars."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A person who logs in: an adviser, a compliance officer or a client (tied to a household)."""

    firm = models.ForeignKey(
        Firm, null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    role = models.CharField(max_length=20, choices=Role.choices, blank=True)
    household = models.ForeignKey(
        "Household",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="client_users",
        help_text="For client logins only: the one household this user may see.",
    )
    history = HistoricalRecords(excluded_fields=["last_login", "password"])

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        if self.role and self.firm_id is None:
            errors["firm"] = (
                f"A user with the {self.get_role_display()} role must belong to a firm."
            )
        if self.role == Role.CLIENT:
            household = self.household
            if household is None:
                errors["household"] = "A client user must be tied to one household."
            elif self.firm_id is not None and household.firm_id != self.firm_id:
                errors["household"] = "The household belongs to another firm."
        elif self.household_id is not None:
            errors["household"] = "Only client users are tied to a household."
        if errors:
            raise ValidationError(errors)

    @property
    def is_adviser(self) -> bool:
        return self.role == Role.ADVISER

    @property
    def is_compliance(self) -> bool:
        return self.role == Role.COMPLIANCE

    @property
    def is_client(self) -> bool:
        return self.role == Role.CLIENT

    def __str__(self) -> str:
        full = self.get_full_name()
        return f"{full} ({self.username})" if full else self.username


class AssetClass(models.Model):
    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    sort_order = models.PositiveIntegerField(default=0)
    is_cash = models.BooleanField(default=False)
    history = HistoricalRecords()

    class Meta:
        ordering = ["sort_order", "code"]
        verbose_name_plural = "asset classes"

    def __str__(self) -> str:
        return self.name


class Household(models.Model):
    """A family's book: wash sales and exposure are measured across all its accounts."""

    firm = models.ForeignKey(Firm, on_delete=models.PROTECT, related_name="households")
    name = models.CharField(max_length=200)
    advisers = models.ManyToManyField(User, blank=True, related_name="advised_households")
    notes = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords(m2m_fields=[advisers])

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["firm", "name"], name="household_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class Client(models.Model):
    """A person in a household (account owner, spouse)."""

    household = models.ForeignKey(Household, on_delete=models.PROTECT, related_name="clients")
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    date_of_birth = models.DateField(null=True, blank=True)
    email = models.EmailField(blank=True)
    spouse = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="spouse_of"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["last_name", "first_name"]

    def clean(self) -> None:
        super().clean()
        if self.spouse_id is not None:
            if self.spouse_id == self.pk:
                raise ValidationError({"spouse": "A client cannot be their own spouse."})
            spouse = self.spouse
            if spouse is not None and spouse.household_id != self.household_id:
                raise ValidationError({"spouse": "The spouse must be in the same household."})
        if self.date_of_birth and self.date_of_birth > today():
            raise ValidationError({"date_of_birth": "The date of birth is in the future."})

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def __str__(self) -> str:
        return self.full_name


class Custodian(models.Model):
    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    allows_fractional = models.BooleanField(default=False)
    account_number_pattern = models.CharField(
        max_length=100,
        default=r"^[A-Za-z0-9-]{4,20}$",
        help_text="Regular expression an account number at this custodian must match.",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def clean(self) -> None:
        super().clean()
        try:
            re.compile(self.account_number_pattern)
        except re.error as exc:
            raise ValidationError(
                {"account_number_pattern": f"Not a valid pattern: {exc}"}
            ) from None

    def __str__(self) -> str:
        return self.name


class Registration(models.TextChoices):
    INDIVIDUAL = "individual", "Individual"
    JOINT = "joint", "Joint"
    TRUST = "trust", "Trust"
    TRADITIONAL_IRA = "traditional_ira", "Traditional IRA"
    ROTH_IRA = "roth_ira", "Roth IRA"


class TaxTreatment(models.TextChoices):
    TAXABLE = "taxable", "Taxable"
    DEFERRED = "deferred", "Tax-deferred"
    EXEMPT = "exempt", "Tax-exempt"


REGISTRATION_TAX = {
    Registration.INDIVIDUAL: TaxTreatment.TAXABLE,
    Registration.JOINT: TaxTreatment.TAXABLE,
    Registration.TRUST: TaxTreatment.TAXABLE,
    Registration.TRADITIONAL_IRA: TaxTreatment.DEFERRED,
    Registration.ROTH_IRA: TaxTreatment.EXEMPT,
}


class Account(models.Model):
    household = models.ForeignKey(Household, on_delete=models.PROTECT, related_name="accounts")
    owner = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="accounts")
    custodian = models.ForeignKey(Custodian, on_delete=models.PROTECT, related_name="accounts")
    number = models.CharField(max_length=40)
    name = models.CharField(max_length=200)
    registration = models.CharField(max_length=20, choices=Registration.choices)
    tax_treatment = models.CharField(max_length=10, choices=TaxTreatment.choices)
    cash = money_field(default=ZERO)
    allows_fractional = models.BooleanField(default=False)
    discretionary = models.BooleanField(
        default=True,
        help_text=(
            "The firm holds discretionary authority over this account (recorded on every order "
            "memorandum); otherwise each order needs the client's prior consent."
        ),
    )
    opened = models.DateField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["household__name", "custodian__name", "number"]
        constraints = [
            models.UniqueConstraint(fields=["custodian", "number"], name="account_unique_number")
        ]

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        if (
            self.owner_id is not None
            and self.household_id is not None
            and self.owner.household_id != self.household_id
        ):
            errors["owner"] = "The owner is not a member of this account's household."
        if self.registration and self.tax_treatment:
            expected = REGISTRATION_TAX[Registration(self.registration)]
            if self.tax_treatment != expected:
                errors["tax_treatment"] = (
                    f"A {self.get_registration_display()} account is {expected.label.lower()}."
                )
        if (
            self.custodian_id is not None
            and self.number
            and not re.fullmatch(self.custodian.account_number_pattern, self.number)
        ):
            errors["number"] = (
                f"{self.number!r} is not an account number format used by {self.custodian}."
            )
        if self.cash is not None and self.cash < ZERO:
            errors["cash"] = "Cash cannot be negative (margin is not supported)."
        if self.opened and self.opened > today():
            errors["opened"] = "The opening date is in the future."
        if errors:
            raise ValidationError(errors)

    @property
    def is_taxable(self) -> bool:
        return self.tax_treatment == TaxTreatment.TAXABLE

    def __str__(self) -> str:
        return f"{self.name} ({self.custodian.code} {self.number})"


class SecurityKind(models.TextChoices):
    STOCK = "stock", "Stock"
    ETF = "etf", "ETF"
    MUTUAL_FUND = "mutual_fund", "Mutual fund"
    CASH_EQUIVALENT = "cash_equivalent", "Cash equivalent"


class Security(models.Model):
    symbol = models.CharField(
        max_length=12,
        unique=True,
        validators=[RegexValidator(r"^[A-Z][A-Z0-9.\-]{0,11}$", "Use an upper-case ticker.")],
    )
    cusip = models.CharField(
        max_length=9,
        unique=True,
        null=True,
        blank=True,
        validators=[RegexValidator(r"^[0-9A-Z]{9}$", "A CUSIP is 9 characters.")],
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=SecurityKind.choices)
    asset_class = models.ForeignKey(AssetClass, on_delete=models.PROTECT, related_name="securities")
    identical_group = models.CharField(
        max_length=40,
        blank=True,
        help_text=(
            "Securities sharing this group are 'substantially identical' for the wash-sale rule "
            "(share classes, listed equivalents). Empty means the symbol alone."
        ),
    )
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["symbol"]
        verbose_name_plural = "securities"

    @property
    def wash_group(self) -> str:
        return self.identical_group or self.symbol

    def __str__(self) -> str:
        return self.symbol


class Price(models.Model):
    """A daily close. Market data: immutable once stored (see HISTORY_EXEMPT)."""

    security = models.ForeignKey(Security, on_delete=models.PROTECT, related_name="prices")
    date = models.DateField()
    close = price_field(validators=[MinValueValidator(Decimal("0.000001"))])
    source = models.CharField(max_length=40, default="manual")

    class Meta:
        ordering = ["security", "date"]
        constraints = [
            models.UniqueConstraint(fields=["security", "date"], name="price_unique_day"),
            models.CheckConstraint(condition=Q(close__gt=0), name="price_positive"),
        ]

    def clean(self) -> None:
        super().clean()
        if self.date and self.date > today():
            raise ValidationError({"date": "A closing price cannot be dated in the future."})

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            stored = Price.objects.filter(pk=self.pk).values_list("close", flat=True).first()
            if stored is not None and stored != self.close:
                raise ValidationError(
                    {"close": "A stored closing price is immutable; snapshots depend on it."}
                )
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return f"{self.security_id} {self.date} {self.close}"


class TaxLot(models.Model):
    """Shares of one security bought at one time: the unit of cost basis and holding period."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="lots")
    security = models.ForeignKey(Security, on_delete=models.PROTECT, related_name="lots")
    lot_ref = models.CharField(max_length=60, help_text="The custodian's (or our) lot id.")
    quantity = quantity_field()
    cost_basis = money_field(help_text="Total cost basis of the open shares, in dollars.")
    acquired = models.DateField()
    holding_period_start = models.DateField(
        help_text="Start of the holding period (earlier than acquired after a wash-sale tack)."
    )
    wash_sale_adjustment = money_field(
        default=ZERO, help_text="Disallowed loss added to this lot's basis (IRC §1091)."
    )
    closed_on = models.DateField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["account", "security", "acquired", "lot_ref"]
        constraints = [
            models.UniqueConstraint(fields=["account", "lot_ref"], name="lot_unique_ref"),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="lot_quantity_nonnegative"),
            models.CheckConstraint(condition=Q(cost_basis__gte=0), name="lot_basis_nonnegative"),
        ]

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        if self.quantity is not None:
            if self.quantity < ZERO:
                errors["quantity"] = "The quantity cannot be negative."
            elif self.quantity == ZERO and self.closed_on is None:
                errors["quantity"] = "An open lot must hold a positive quantity."
        if self.cost_basis is not None and self.cost_basis < ZERO:
            errors["cost_basis"] = "The cost basis cannot be negative."
        if self.acquired:
            if self.acquired > today():
                errors["acquired"] = "The acquisition date is in the future."
            if self.holding_period_start and self.holding_period_start > self.acquired:
                errors["holding_period_start"] = (
                    "The holding period cannot start after acquisition."
                )
        if self.wash_sale_adjustment is not None and self.wash_sale_adjustment < ZERO:
            errors["wash_sale_adjustment"] = "A wash-sale adjustment is a disallowed loss (>= 0)."
        if errors:
            raise ValidationError(errors)

    @property
    def is_open(self) -> bool:
        return self.closed_on is None and self.quantity > ZERO

    @property
    def long_term_date(self) -> dt.date:
        """First day a sale is long-term: held more than one year from the holding-period start."""
        start = self.holding_period_start
        try:
            anniversary = start.replace(year=start.year + 1)
        except ValueError:  # Feb 29 -> Feb 28 of the next year
            anniversary = start.replace(year=start.year + 1, day=28)
        return anniversary + dt.timedelta(days=1)

    def days_to_long_term(self, on: dt.date) -> int:
        return max(0, (self.long_term_date - on).days)

    def is_long_term(self, on: dt.date) -> bool:
        return on >= self.long_term_date

    def __str__(self) -> str:
        return f"{self.lot_ref}: {self.quantity} {self.security_id}"


class TransactionKind(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"
    DIVIDEND = "dividend", "Dividend"
    INTEREST = "interest", "Interest"
    DEPOSIT = "deposit", "Deposit"
    WITHDRAWAL = "withdrawal", "Withdrawal"
    TRANSFER_IN = "transfer_in", "Transfer in"
    TRANSFER_OUT = "transfer_out", "Transfer out"
    FEE = "fee", "Fee"


SECURITY_KINDS = {
    TransactionKind.BUY,
    TransactionKind.SELL,
    TransactionKind.DIVIDEND,
    TransactionKind.TRANSFER_IN,
    TransactionKind.TRANSFER_OUT,
}


class Transaction(models.Model):
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="transactions")
    security = models.ForeignKey(
        Security, null=True, blank=True, on_delete=models.PROTECT, related_name="transactions"
    )
    kind = models.CharField(max_length=20, choices=TransactionKind.choices)
    trade_date = models.DateField()
    settle_date = models.DateField(null=True, blank=True)
    quantity = quantity_field(null=True, blank=True)
    price = price_field(null=True, blank=True)
    amount = money_field(help_text="Cash effect on the account: positive in, negative out.")
    lot_ref = models.CharField(max_length=60, blank=True)
    external_id = models.CharField(max_length=80, blank=True)
    description = models.CharField(max_length=200, blank=True)
    realized_gain = money_field(
        null=True,
        blank=True,
        help_text="For a sell: proceeds minus the relieved basis (negative for a loss).",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["account", "trade_date", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "external_id"],
                condition=~Q(external_id=""),
                name="transaction_unique_external_id",
            )
        ]

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        if self.trade_date and self.trade_date > today():
            errors["trade_date"] = "The trade date is in the future."
        if self.kind in SECURITY_KINDS and self.security_id is None:
            errors["security"] = f"A {self.get_kind_display().lower()} names a security."
        if self.kind in (TransactionKind.BUY, TransactionKind.SELL):
            if self.quantity is None or self.quantity <= ZERO:
                errors["quantity"] = "A buy or sell has a positive quantity."
            if self.price is None or self.price <= ZERO:
                errors["price"] = "A buy or sell has a positive price."
        if errors:
            raise ValidationError(errors)

    def __str__(self) -> str:
        return f"{self.trade_date} {self.kind} {self.security_id or ''} {self.amount}"


class ModelPortfolio(models.Model):
    """A firm-level model (e.g. a direct-index sleeve), versioned: a change is a new version."""

    firm = models.ForeignKey(Firm, on_delete=models.PROTECT, related_name="model_portfolios")
    name = models.CharField(max_length=200)
    version = models.PositiveIntegerField(default=1)
    effective_date = models.DateField()
    description = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["firm", "name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["firm", "name", "version"], name="model_unique_version")
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class ModelPortfolioTarget(models.Model):
    model = models.ForeignKey(ModelPortfolio, on_delete=models.CASCADE, related_name="targets")
    security = models.ForeignKey(Security, on_delete=models.PROTECT)
    weight = fraction_field()
    history = HistoricalRecords()

    class Meta:
        ordering = ["model", "security"]
        constraints = [
            models.UniqueConstraint(fields=["model", "security"], name="model_target_unique"),
            models.CheckConstraint(
                condition=Q(weight__gt=0) & Q(weight__lte=1), name="model_target_weight_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.security_id} {self.weight}"


class InvestmentPolicy(models.Model):
    """A household's Investment Policy Statement, versioned: the version in force is the latest
    whose effective date is on or before the day in question."""

    household = models.ForeignKey(Household, on_delete=models.PROTECT, related_name="policies")
    version = models.PositiveIntegerField()
    effective_date = models.DateField()
    cash_floor = fraction_field(default=Decimal("0.01"), help_text="Minimum cash as a fraction.")
    default_band = fraction_field(
        default=Decimal("0.05"), help_text="Drift band (absolute) where a target sets none."
    )
    st_rate = fraction_field(default=Decimal("0.37"), help_text="Short-term capital gains rate.")
    lt_rate = fraction_field(default=Decimal("0.20"), help_text="Long-term capital gains rate.")
    annual_gain_budget = money_field(
        null=True, blank=True, help_text="Net realized gains allowed per calendar year."
    )
    model_portfolio = models.ForeignKey(
        ModelPortfolio, null=True, blank=True, on_delete=models.PROTECT, related_name="policies"
    )
    objectives = models.TextField(blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["household", "-version"]
        verbose_name = "investment policy (IPS)"
        verbose_name_plural = "investment policies (IPS)"
        constraints = [
            models.UniqueConstraint(fields=["household", "version"], name="ips_unique_version")
        ]

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        for field in ("cash_floor", "default_band", "st_rate", "lt_rate"):
            value = getattr(self, field)
            if value is not None and not (ZERO <= value <= ONE):
                errors[field] = "Must be a fraction between 0 and 1 (e.g. 0.25 for 25%)."
        if self.annual_gain_budget is not None and self.annual_gain_budget < ZERO:
            errors["annual_gain_budget"] = "The gain budget cannot be negative."
        model = self.model_portfolio
        if (
            model is not None
            and self.household_id is not None
            and model.firm_id != self.household.firm_id
        ):
            errors["model_portfolio"] = "The model portfolio belongs to another firm."
        if errors:
            raise ValidationError(errors)

    def __str__(self) -> str:
        return f"IPS v{self.version} ({self.household})"


class IPSTarget(models.Model):
    """One target of an IPS version: an asset class or a single security, with its drift band."""

    ips = models.ForeignKey(InvestmentPolicy, on_delete=models.CASCADE, related_name="targets")
    asset_class = models.ForeignKey(AssetClass, null=True, blank=True, on_delete=models.PROTECT)
    security = models.ForeignKey(Security, null=True, blank=True, on_delete=models.PROTECT)
    weight = fraction_field()
    band = fraction_field(null=True, blank=True, help_text="Absolute drift band; default from IPS.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["ips", "asset_class__sort_order", "security__symbol"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(asset_class__isnull=False) & Q(security__isnull=True))
                | (Q(asset_class__isnull=True) & Q(security__isnull=False)),
                name="ips_target_one_kind",
            ),
            models.UniqueConstraint(
                fields=["ips", "asset_class"],
                condition=Q(asset_class__isnull=False),
                name="ips_target_unique_class",
            ),
            models.UniqueConstraint(
                fields=["ips", "security"],
                condition=Q(security__isnull=False),
                name="ips_target_unique_security",
            ),
        ]

    def clean(self) -> None:
        super().clean()
        if (self.asset_class_id is None) == (self.security_id is None):
            raise ValidationError("A target names either an asset class or a security, not both.")
        if self.weight is not None and not (ZERO <= self.weight <= ONE):
            raise ValidationError({"weight": "A target weight is a fraction between 0 and 1."})
        if self.band is not None and not (ZERO <= self.band <= ONE):
            raise ValidationError({"band": "A drift band is a fraction between 0 and 1."})

    @property
    def label(self) -> str:
        return str(self.asset_class or self.security)

    def __str__(self) -> str:
        return f"{self.label} {self.weight}"


class RestrictionKind(models.TextChoices):
    NO_SELL = "no_sell", "Do not sell"
    NO_BUY = "no_buy", "Do not buy"
    MAX_WEIGHT = "max_weight", "Maximum weight"


class RestrictionReason(models.TextChoices):
    EMPLOYER_STOCK = "employer_stock", "Employer stock"
    CLIENT_REQUEST = "client_request", "Client request"
    CONCENTRATED = "concentrated", "Concentrated position"
    ESG = "esg", "Values / ESG screen"
    LEGAL = "legal", "Legal or insider restriction"


class Restriction(models.Model):
    household = models.ForeignKey(Household, on_delete=models.PROTECT, related_name="restrictions")
    account = models.ForeignKey(
        Account,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        help_text="Empty means every account of the household.",
    )
    security = models.ForeignKey(Security, on_delete=models.PROTECT)
    kind = models.CharField(max_length=20, choices=RestrictionKind.choices)
    max_weight = fraction_field(null=True, blank=True)
    reason = models.CharField(max_length=20, choices=RestrictionReason.choices)
    note = models.CharField(max_length=200, blank=True)
    start_date = models.DateField(default=today)
    end_date = models.DateField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["household", "security"]

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        if self.kind == RestrictionKind.MAX_WEIGHT:
            if self.max_weight is None:
                errors["max_weight"] = "A maximum-weight restriction needs its maximum."
            elif not (ZERO < self.max_weight <= ONE):
                errors["max_weight"] = "The maximum weight is a fraction in (0, 1]."
        elif self.max_weight is not None:
            errors["max_weight"] = "Only a maximum-weight restriction has a maximum."
        account = self.account
        if (
            account is not None
            and self.household_id is not None
            and account.household_id != self.household_id
        ):
            errors["account"] = "The account belongs to another household."
        if self.end_date and self.start_date and self.end_date < self.start_date:
            errors["end_date"] = "The restriction ends before it starts."
        if errors:
            raise ValidationError(errors)

    def in_force(self, on: dt.date) -> bool:
        return self.start_date <= on and (self.end_date is None or on <= self.end_date)

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.security_id} ({self.get_reason_display()})"


# --------------------------------------------------------------------------- custodian imports


class ImportFormat(models.TextChoices):
    SCHWAB = "schwab", "Schwab-style CSV"
    FIDELITY = "fidelity", "Fidelity-style CSV"
    GENERIC = "generic", "Generic CSV"


class ImportKind(models.TextChoices):
    POSITIONS = "positions", "Positions"
    LOTS = "lots", "Open tax lots"
    TRANSACTIONS = "transactions", "Transactions"


class ImportStatus(models.TextChoices):
    IMPORTED = "imported", "Imported"
    NEEDS_REVIEW = "needs_review", "Breaks to review"
    REVIEWED = "reviewed", "Breaks reviewed"


class ImportBatch(models.Model):
    """One custodian file imported into a firm's book (see ``docs/imports.md``).

    Only successful imports are recorded: a refused file writes nothing. The file's SHA-256 is
    unique per firm, format and kind, so the same file imported twice changes nothing.
    Row counts mean, per kind: positions - created = reconciliation breaks opened, updated =
    earlier open breaks of the same accounts superseded, unchanged = rows agreeing with the
    book; lots - lots created / updated / unchanged; transactions - transactions recorded /
    (never updated) / already on record.
    """

    firm = models.ForeignKey(Firm, on_delete=models.PROTECT, related_name="import_batches")
    file_format = models.CharField(max_length=20, choices=ImportFormat.choices)
    custodian = models.ForeignKey(
        Custodian,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="import_batches",
        help_text="The custodian whose format this is; empty for the generic format.",
    )
    kind = models.CharField(max_length=20, choices=ImportKind.choices)
    file_name = models.CharField(max_length=255)
    sha256 = models.CharField(
        max_length=64, validators=[RegexValidator(r"^[0-9a-f]{64}$", "A SHA-256 hex digest.")]
    )
    as_of = models.DateField(null=True, blank=True, help_text="Positions: the custodian's date.")
    rows_read = models.PositiveIntegerField(default=0)
    rows_created = models.PositiveIntegerField(default=0)
    rows_updated = models.PositiveIntegerField(default=0)
    rows_unchanged = models.PositiveIntegerField(default=0)
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="import_batches"
    )
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(
        max_length=20, choices=ImportStatus.choices, default=ImportStatus.IMPORTED
    )
    summary = models.JSONField(default=dict, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "import batches"
        constraints = [
            models.UniqueConstraint(
                fields=["firm", "file_format", "kind", "sha256"], name="import_unique_file"
            )
        ]

    def clean(self) -> None:
        super().clean()
        custodian = self.custodian
        if self.file_format == ImportFormat.GENERIC:
            if custodian is not None:
                raise ValidationError(
                    {"custodian": "A generic file may cover several custodians: leave it empty."}
                )
        elif self.file_format and (custodian is None or custodian.code != self.file_format):
            raise ValidationError(
                {"custodian": f"A {self.get_file_format_display()} comes from {self.file_format}."}
            )

    def __str__(self) -> str:
        return f"#{self.pk} {self.file_format} {self.kind} {self.file_name}"


class BreakStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class ReconciliationBreak(models.Model):
    """A position the custodian reports differently from the sum of our open lots (shares), or
    a cash balance different from the account's cash (dollars, when ``security`` is empty).

    ``difference = custodian_quantity - book_quantity``.
    """

    batch = models.ForeignKey(ImportBatch, on_delete=models.PROTECT, related_name="breaks")
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="reconciliation_breaks"
    )
    security = models.ForeignKey(
        Security,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reconciliation_breaks",
        help_text="Empty means the cash balance (quantities in dollars).",
    )
    custodian_quantity = quantity_field()
    book_quantity = quantity_field()
    difference = quantity_field()
    status = models.CharField(max_length=10, choices=BreakStatus.choices, default=BreakStatus.OPEN)
    resolved_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.CharField(max_length=500, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["batch", "account", "security__symbol", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="open") | Q(resolved_at__isnull=False),
                name="break_resolved_has_time",
            )
        ]

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        if (
            self.custodian_quantity is not None
            and self.book_quantity is not None
            and self.difference != self.custodian_quantity - self.book_quantity
        ):
            errors["difference"] = "The difference is the custodian's quantity minus ours."
        if self.status == BreakStatus.RESOLVED:
            if self.resolved_at is None:
                errors["resolved_at"] = "A resolved break records when it was resolved."
            if not self.resolution_note.strip():
                errors["resolution_note"] = "Say how the break was resolved."
        if errors:
            raise ValidationError(errors)

    @property
    def is_cash(self) -> bool:
        return self.security_id is None

    @property
    def is_open(self) -> bool:
        return self.status == BreakStatus.OPEN

    def __str__(self) -> str:
        what = "cash" if self.security_id is None else str(self.security_id)
        return f"{self.account_id} {what} {self.difference}"
