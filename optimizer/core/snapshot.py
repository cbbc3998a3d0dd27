"""The input snapshot: a frozen, JSON-serializable description of one optimization request.

The snapshot is the contract between whoever gathers the data (``optimizer.adapter`` reads the
database) and the pure core. Money and share quantities are ``Decimal`` (decimal strings in
JSON); covariance entries are floats (annualized variance, in (fraction of value)^2). Every
field is documented with its unit in ``docs/optimizer.md``.

``snapshot_from_dict`` validates and raises :class:`InvalidSnapshot` naming the offending field
(a JSON path such as ``lots[3].quantity``); ``snapshot_to_dict`` is its exact inverse (canonical
form, used for the SHA-256 of the input).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from optimizer.core.blas import one_blas_thread
from optimizer.core.errors import InvalidSnapshot

SCHEMA_VERSION = 1
MODES = ("rebalance", "transition", "harvest", "raise_cash", "invest_cash")
TAX_TREATMENTS = ("taxable", "deferred", "exempt")
SOLVERS = ("CLARABEL", "SCS")
RISK_LEVELS = ("security", "asset_class")
CASH_CLASS = "cash"

Mode = Literal["rebalance", "transition", "harvest", "raise_cash", "invest_cash"]
TaxTreatment = Literal["taxable", "deferred", "exempt"]


@dataclass(frozen=True)
class Account:
    """One custodial account. ``cash`` in dollars; floors in dollars or as a weight of the account."""

    id: str
    tax_treatment: TaxTreatment
    cash: Decimal
    allows_fractional: bool = False
    owner: str = ""
    cash_floor: Decimal = Decimal("0")
    cash_floor_weight: Decimal | None = None
    cash_to_raise: Decimal = Decimal("0")

    @property
    def taxable(self) -> bool:
        """True when realized gains in this account are taxed this year."""
        return self.tax_treatment == "taxable"


@dataclass(frozen=True)
class Security:
    """A tradable security. ``price`` in dollars per share; ``cost_bps`` adds to the firm-wide bps."""

    symbol: str
    asset_class: str
    price: Decimal
    identical_group: str
    cost_bps: Decimal = Decimal("0")


@dataclass(frozen=True)
class Lot:
    """One tax lot: ``quantity`` shares bought for ``cost_basis`` dollars in total."""

    lot_id: str
    account: str
    symbol: str
    quantity: Decimal
    cost_basis: Decimal
    acquired: dt.date
    holding_period_start: dt.date

    @functools.cached_property
    def canonical_text(self) -> str:
        """This lot's part of :meth:`Snapshot.canonical_json` (remembered: the lot is frozen,
        and a re-run with new prices or another scenario keeps its lots)."""
        return _dumps(_lot_dict(self))


@dataclass(frozen=True)
class AssetClassTarget:
    """IPS target weight of an asset class with its drift band and hard bounds (all weights)."""

    asset_class: str
    target: Decimal
    band: Decimal | None = None
    min: Decimal | None = None
    max: Decimal | None = None

    def bounds(self) -> tuple[Decimal | None, Decimal | None]:
        """Hard bounds ``(lo, hi)``: the tighter of the drift band and the explicit min/max."""
        lo = self.min
        hi = self.max
        if self.band is not None:
            band_lo = self.target - self.band
            band_hi = self.target + self.band
            lo = band_lo if lo is None else max(lo, band_lo)
            hi = band_hi if hi is None else min(hi, band_hi)
        return lo, hi


@dataclass(frozen=True)
class Targets:
    """Household targets: security weights (model portfolio) and/or asset-class weights (IPS)."""

    securities: Mapping[str, Decimal] = field(default_factory=dict)
    asset_classes: tuple[AssetClassTarget, ...] = ()


@dataclass(frozen=True)
class RiskModel:
    """Annualized covariance of returns, either full (``covariance``) or factor form.

    Factor form: ``Sigma = B F B^T + diag(specific_variance)`` with ``B = factor_loadings``
    (labels x factors) and ``F = factor_covariance``. ``level`` says whether labels are
    security symbols or asset classes. Units: (fraction of value)^2 per year.
    """

    level: Literal["security", "asset_class"]
    labels: tuple[str, ...]
    covariance: tuple[tuple[float, ...], ...] | None = None
    factor_loadings: tuple[tuple[float, ...], ...] | None = None
    factor_covariance: tuple[tuple[float, ...], ...] | None = None
    specific_variance: tuple[float, ...] | None = None

    def matrix(self) -> np.ndarray:
        """The full covariance matrix ``Sigma`` (labels x labels; read-only, remembered)."""
        return cast(np.ndarray, memo(self, "matrix", self._matrix))

    def _matrix(self) -> np.ndarray:
        if self.covariance is not None:
            return np.array(self.covariance, dtype=float)
        b = np.array(self.factor_loadings, dtype=float)
        f = np.array(self.factor_covariance, dtype=float)
        sigma = b @ f @ b.T
        if self.specific_variance is not None:
            sigma = sigma + np.diag(np.array(self.specific_variance, dtype=float))
        return cast(np.ndarray, sigma)

    def canonical_json(self) -> str:
        """The ``risk_model`` section of the snapshot's canonical JSON (remembered)."""
        return cast(str, memo(self, "json", lambda: _dumps(_risk_dict(self))))


@dataclass(frozen=True)
class TaxRates:
    """Marginal rates (fractions) and the ordinary-income loss offset (dollars per year)."""

    short_term_rate: Decimal
    long_term_rate: Decimal
    ordinary_income_offset: Decimal = Decimal("3000")
    realized_ytd_short_term: Decimal = Decimal("0")
    realized_ytd_long_term: Decimal = Decimal("0")


@dataclass(frozen=True)
class Budgets:
    """Annual realized-gain budgets in dollars (``None`` = no cap), year-to-date included."""

    max_net_realized_gain: Decimal | None = None
    max_short_term_gain: Decimal | None = None
    no_short_term_gains: bool = False


@dataclass(frozen=True)
class Costs:
    """Trading cost: ``bps`` of traded value, ``ticket_fee`` dollars per order, minimum order value."""

    bps: Decimal = Decimal("0")
    ticket_fee: Decimal = Decimal("0")
    min_trade_value: Decimal = Decimal("0")


@dataclass(frozen=True)
class Restriction:
    """A client or compliance restriction on one symbol (in one account when ``account`` is set)."""

    symbol: str
    account: str | None = None
    no_sell: bool = False
    no_buy: bool = False
    max_weight: Decimal | None = None
    reason: str = ""


@dataclass(frozen=True)
class Holding:
    """Holding-period policy: lots within ``near_long_term_days`` of long term are flagged/held back."""

    near_long_term_days: int = 30
    hold_back_near_long_term: bool = True


@dataclass(frozen=True)
class WashEvent:
    """A recent buy or loss sale of a security in any household account (for the 30-day rule)."""

    account: str
    symbol: str
    date: dt.date
    identical_group: str | None = None


@dataclass(frozen=True)
class WashSale:
    """Wash-sale inputs: recent buys and recent loss sales inside the window (days before ``as_of``)."""

    window_days: int = 30
    recent_buys: tuple[WashEvent, ...] = ()
    recent_loss_sales: tuple[WashEvent, ...] = ()


@dataclass(frozen=True)
class Objective:
    """Objective knobs. ``None`` means: take the scenario's (or the mode's) default.

    - ``risk_aversion`` lambda (dimensionless) multiplies TE^2 (annual variance, weight^2).
    - ``tax_weight`` omega multiplies the tax term.
    - ``loss_value_beyond_offset`` kappa in [0, 1]: value of a net loss beyond what offsets
      gains plus the ordinary-income offset, as a fraction of its tax value (carry-forward).
    - ``asset_location_drag``: per asset class, the yearly tax drag (fraction of value) of
      holding that class in a taxable account.
    """

    risk_aversion: Decimal | None = None
    tax_weight: Decimal | None = None
    loss_value_beyond_offset: Decimal | None = None
    asset_location_drag: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class SolverSpec:
    """Which convex solver to use and its options (passed to cvxpy as keyword arguments)."""

    name: str = "CLARABEL"
    options: Mapping[str, float | int | bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Snapshot:
    """Everything one optimization run reads. Pure data: no database, no files, no clock."""

    as_of: dt.date
    mode: Mode
    accounts: tuple[Account, ...]
    securities: tuple[Security, ...]
    lots: tuple[Lot, ...]
    targets: Targets
    risk_model: RiskModel
    tax: TaxRates
    budgets: Budgets = Budgets()
    costs: Costs = Costs()
    restrictions: tuple[Restriction, ...] = ()
    holding: Holding = Holding()
    wash_sale: WashSale = WashSale()
    objective: Objective = Objective()
    scenario: str | None = None
    solver: SolverSpec = SolverSpec()
    forecast_years: int = 0
    household_id: str = ""
    schema_version: int = SCHEMA_VERSION

    def account(self, account_id: str) -> Account:
        """The account with id ``account_id``."""
        for a in self.accounts:
            if a.id == account_id:
                return a
        raise KeyError(account_id)

    def security(self, symbol: str) -> Security:
        """The security with symbol ``symbol``."""
        for s in self.securities:
            if s.symbol == symbol:
                return s
        raise KeyError(symbol)

    def canonical_json(self) -> str:
        """The canonical JSON text of this snapshot: ``snapshot_to_dict`` dumped with sorted
        keys and no spaces. Its SHA-256 identifies the snapshot.

        Remembered per snapshot object while it lives (the snapshot is frozen), the risk
        model's part per risk-model object (the largest part: a new snapshot that shares it,
        as the years of a forecast or a re-run with new prices do, does not write it again) and
        each lot's part per lot object.
        """
        return cast(str, memo(self, "json", lambda: _canonical_text(self)))

    def sha256(self) -> str:
        """SHA-256 (hex) of :meth:`canonical_json` (remembered per snapshot object)."""
        return cast(
            str,
            memo(
                self, "sha256", lambda: hashlib.sha256(self.canonical_json().encode()).hexdigest()
            ),
        )


# (id(obj), name) -> (weak reference to obj, value): an entry goes when its object does
_MEMO: dict[tuple[int, str], tuple[weakref.ref[Any], Any]] = {}


def memo(obj: Any, name: str, compute: Callable[[], Any]) -> Any:
    """``compute()``, remembered for the frozen object ``obj`` while it lives.

    Arrays are made read-only: a remembered value is shared by every caller.
    """
    key = (id(obj), name)
    hit = _MEMO.get(key)
    if hit is not None and hit[0]() is obj:
        return hit[1]
    value = compute()
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    _MEMO[key] = (weakref.ref(obj, functools.partial(_forget, key)), value)
    return value


def _forget(key: tuple[int, str], _ref: object) -> None:
    _MEMO.pop(key, None)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _canonical_text(s: Snapshot) -> str:
    """``_dumps(snapshot_to_dict(s))``, with the risk model's and the lots' texts from their own
    memos: the members of a dict dumped with sorted keys are written one after the other, so
    the text is the same."""
    d = snapshot_to_dict(s, risk=False, lots=False)
    d["risk_model"] = d["lots"] = None
    parts = []
    for key in sorted(d):
        if key == "risk_model":
            value = s.risk_model.canonical_json()
        elif key == "lots":
            # a list dumped is its items' texts joined by commas: each lot's text is
            # remembered per lot object (a re-run with new prices keeps its lots)
            value = "[" + ",".join([lt.canonical_text for lt in s.lots]) + "]"
        else:
            value = _dumps(d[key])
        parts.append(f"{_dumps(key)}:{value}")
    return "{" + ",".join(parts) + "}"


# --------------------------------------------------------------------------- holding period


@functools.lru_cache(maxsize=65536)
def long_term_date(start: dt.date) -> dt.date:
    """First sale date that is long term: the day after the one-year anniversary of ``start``."""
    try:
        anniversary = start.replace(year=start.year + 1)
    except ValueError:  # 29 February
        anniversary = dt.date(start.year + 1, 2, 28)
    return anniversary + dt.timedelta(days=1)


def last_long_term_start(as_of: dt.date) -> dt.date:
    """The latest holding-period start whose sale on ``as_of`` is long term: a lot is long term
    exactly when its start is on or before this day (``long_term_date`` never decreases, so the
    long-term starts are every day up to one). Lets a loop over lots compare dates instead of
    computing each lot's anniversary."""
    start = as_of - dt.timedelta(days=367)  # long term: its anniversary is at most 366 days on
    while long_term_date(start + dt.timedelta(days=1)) <= as_of:
        start += dt.timedelta(days=1)
    return start


def is_long_term(lot: Lot, as_of: dt.date) -> bool:
    """True when a sale on ``as_of`` is long term (held more than one year)."""
    return as_of >= long_term_date(lot.holding_period_start)


def days_to_long_term(lot: Lot, as_of: dt.date) -> int:
    """Days from ``as_of`` until a sale of ``lot`` becomes long term (0 when already long term)."""
    return max(0, (long_term_date(lot.holding_period_start) - as_of).days)


# --------------------------------------------------------------------------- parsing helpers


def _dec(value: Any, path: str, *, lo: Decimal | None = None, positive: bool = False) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise InvalidSnapshot(path, "must be a decimal number (string or number)")
    try:
        d = Decimal(str(value)) if isinstance(value, float | int) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise InvalidSnapshot(path, f"not a decimal number: {value!r}") from None
    if not d.is_finite():
        raise InvalidSnapshot(path, f"must be finite, got {value!r}")
    if positive and d <= 0:
        raise InvalidSnapshot(path, f"must be > 0, got {value}")
    if lo is not None and d < lo:
        raise InvalidSnapshot(path, f"must be >= {lo}, got {value}")
    return d


def _opt_dec(value: Any, path: str, *, lo: Decimal | None = None) -> Decimal | None:
    return None if value is None else _dec(value, path, lo=lo)


def _date(value: Any, path: str) -> dt.date:
    if not isinstance(value, str):
        raise InvalidSnapshot(path, "must be an ISO date string YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidSnapshot(path, f"not an ISO date: {value!r}") from None


def _str(value: Any, path: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise InvalidSnapshot(path, "must be a non-empty string")
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidSnapshot(path, "must be true or false")
    return value


def _int(value: Any, path: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidSnapshot(path, f"must be an integer in [{lo}, {hi}]")
    return value


def _obj(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidSnapshot(path, "must be an object")
    return value


def _list(value: Any, path: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise InvalidSnapshot(path, "must be a list")
    return value


def _matrix(value: Any, path: str, rows: int, cols: int) -> tuple[tuple[float, ...], ...]:
    data = _list(value, path)
    if len(data) != rows:
        raise InvalidSnapshot(path, f"must have {rows} rows, got {len(data)}")
    out: list[tuple[float, ...]] = []
    for r, row in enumerate(data):
        row_list = _list(row, f"{path}[{r}]")
        if len(row_list) != cols:
            raise InvalidSnapshot(f"{path}[{r}]", f"must have {cols} entries, got {len(row_list)}")
        if all(type(v) is float and math.isfinite(v) for v in row_list):
            out.append(tuple(row_list))  # what _float returns for each, without its checks
        else:
            out.append(tuple(_float(v, f"{path}[{r}][{c}]") for c, v in enumerate(row_list)))
    return tuple(out)


def _float(value: Any, path: str) -> float:
    if isinstance(value, bool):
        raise InvalidSnapshot(path, "must be a number")
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise InvalidSnapshot(path, f"not a number: {value!r}") from None
    if not math.isfinite(f):
        raise InvalidSnapshot(path, f"must be finite, got {value!r}")
    return f


def _check_keys(d: Mapping[str, Any], path: str, allowed: set[str]) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise InvalidSnapshot(where, "unknown field")


# --------------------------------------------------------------------------- sections


def _parse_account(d: Any, path: str) -> Account:
    o = _obj(d, path)
    _check_keys(
        o,
        path,
        {
            "id",
            "tax_treatment",
            "cash",
            "allows_fractional",
            "owner",
            "cash_floor",
            "cash_floor_weight",
            "cash_to_raise",
        },
    )
    treatment = o.get("tax_treatment")
    if treatment not in TAX_TREATMENTS:
        raise InvalidSnapshot(
            f"{path}.tax_treatment", f"must be one of {', '.join(TAX_TREATMENTS)}"
        )
    floor_w = _opt_dec(o.get("cash_floor_weight"), f"{path}.cash_floor_weight", lo=Decimal(0))
    if floor_w is not None and floor_w > 1:
        raise InvalidSnapshot(f"{path}.cash_floor_weight", "must be <= 1")
    return Account(
        id=_str(o.get("id"), f"{path}.id"),
        tax_treatment=cast(TaxTreatment, treatment),
        cash=_dec(o.get("cash", "0"), f"{path}.cash", lo=Decimal(0)),
        allows_fractional=_bool(o.get("allows_fractional", False), f"{path}.allows_fractional"),
        owner=_str(o.get("owner", ""), f"{path}.owner", allow_empty=True),
        cash_floor=_dec(o.get("cash_floor", "0"), f"{path}.cash_floor", lo=Decimal(0)),
        cash_floor_weight=floor_w,
        cash_to_raise=_dec(o.get("cash_to_raise", "0"), f"{path}.cash_to_raise", lo=Decimal(0)),
    )


def _parse_security(d: Any, path: str) -> Security:
    o = _obj(d, path)
    _check_keys(o, path, {"symbol", "asset_class", "price", "identical_group", "cost_bps"})
    symbol = _str(o.get("symbol"), f"{path}.symbol")
    group = o.get("identical_group")
    return Security(
        symbol=symbol,
        asset_class=_str(o.get("asset_class"), f"{path}.asset_class"),
        price=_dec(o.get("price"), f"{path}.price", positive=True),
        identical_group=symbol if group is None else _str(group, f"{path}.identical_group"),
        cost_bps=_dec(o.get("cost_bps", "0"), f"{path}.cost_bps", lo=Decimal(0)),
    )


def _parse_lot(d: Any, path: str) -> Lot:
    o = _obj(d, path)
    _check_keys(
        o,
        path,
        {
            "lot_id",
            "account",
            "symbol",
            "quantity",
            "cost_basis",
            "acquired",
            "holding_period_start",
        },
    )
    acquired = _date(o.get("acquired"), f"{path}.acquired")
    hps = o.get("holding_period_start")
    return Lot(
        lot_id=_str(o.get("lot_id"), f"{path}.lot_id"),
        account=_str(o.get("account"), f"{path}.account"),
        symbol=_str(o.get("symbol"), f"{path}.symbol"),
        quantity=_dec(o.get("quantity"), f"{path}.quantity", positive=True),
        cost_basis=_dec(o.get("cost_basis"), f"{path}.cost_basis", lo=Decimal(0)),
        acquired=acquired,
        holding_period_start=acquired
        if hps is None
        else _date(hps, f"{path}.holding_period_start"),
    )


def _parse_targets(d: Any, path: str) -> Targets:
    o = _obj(d if d is not None else {}, path)
    _check_keys(o, path, {"securities", "asset_classes"})
    sec = _obj(o.get("securities") or {}, f"{path}.securities")
    securities = {
        str(k): _dec(v, f"{path}.securities.{k}", lo=Decimal(0)) for k, v in sorted(sec.items())
    }
    classes: list[AssetClassTarget] = []
    ac = _obj(o.get("asset_classes") or {}, f"{path}.asset_classes")
    for name, spec in sorted(ac.items()):
        p = f"{path}.asset_classes.{name}"
        if not isinstance(spec, Mapping):
            spec = {"target": spec}
        _check_keys(spec, p, {"target", "band", "min", "max"})
        t = AssetClassTarget(
            asset_class=str(name),
            target=_dec(spec.get("target"), f"{p}.target", lo=Decimal(0)),
            band=_opt_dec(spec.get("band"), f"{p}.band", lo=Decimal(0)),
            min=_opt_dec(spec.get("min"), f"{p}.min", lo=Decimal(0)),
            max=_opt_dec(spec.get("max"), f"{p}.max", lo=Decimal(0)),
        )
        lo, hi = t.bounds()
        if lo is not None and hi is not None and lo > hi:
            raise InvalidSnapshot(p, f"bounds are empty (min {lo} > max {hi})")
        classes.append(t)
    return Targets(securities=securities, asset_classes=tuple(classes))


def _parse_risk(d: Any, path: str) -> RiskModel:
    o = _obj(d, path)
    _check_keys(
        o,
        path,
        {
            "level",
            "labels",
            "covariance",
            "factor_loadings",
            "factor_covariance",
            "specific_variance",
        },
    )
    level = o.get("level", "security")
    if level not in RISK_LEVELS:
        raise InvalidSnapshot(f"{path}.level", f"must be one of {', '.join(RISK_LEVELS)}")
    labels = tuple(
        _str(x, f"{path}.labels[{i}]")
        for i, x in enumerate(_list(o.get("labels"), f"{path}.labels"))
    )
    if len(set(labels)) != len(labels):
        raise InvalidSnapshot(f"{path}.labels", "labels must be unique")
    if not labels:
        raise InvalidSnapshot(f"{path}.labels", "at least one label is required")
    n = len(labels)
    if o.get("covariance") is not None:
        cov = _matrix(o["covariance"], f"{path}.covariance", n, n)
        model = RiskModel(level=cast(Any, level), labels=labels, covariance=cov)
        where = f"{path}.covariance"
    elif o.get("factor_loadings") is not None:
        b = _matrix(
            o["factor_loadings"],
            f"{path}.factor_loadings",
            n,
            len(_list(o["factor_loadings"], f"{path}.factor_loadings")[0]),
        )
        k = len(b[0])
        f = _matrix(o.get("factor_covariance"), f"{path}.factor_covariance", k, k)
        spec_raw = o.get("specific_variance")
        spec = None
        if spec_raw is not None:
            spec_list = _list(spec_raw, f"{path}.specific_variance")
            if len(spec_list) != n:
                raise InvalidSnapshot(f"{path}.specific_variance", f"must have {n} entries")
            spec = tuple(
                _float(v, f"{path}.specific_variance[{i}]") for i, v in enumerate(spec_list)
            )
            if min(spec) < 0:
                raise InvalidSnapshot(f"{path}.specific_variance", "variances must be >= 0")
        fm = np.array(f)
        if not np.allclose(fm, fm.T, atol=1e-12, rtol=1e-9):
            raise InvalidSnapshot(f"{path}.factor_covariance", "must be symmetric")
        if np.linalg.eigvalsh(fm).min() < -1e-10 * max(1.0, float(np.abs(fm).max())):
            raise InvalidSnapshot(f"{path}.factor_covariance", "must be positive semidefinite")
        model = RiskModel(
            level=cast(Any, level),
            labels=labels,
            factor_loadings=b,
            factor_covariance=f,
            specific_variance=spec,
        )
        where = f"{path}.factor_loadings"
    else:
        raise InvalidSnapshot(
            f"{path}.covariance", "either covariance or factor_loadings is required"
        )
    sigma = model.matrix()
    if not np.allclose(sigma, sigma.T, atol=1e-12, rtol=1e-9):
        raise InvalidSnapshot(where, "covariance must be symmetric")
    scale = max(1e-12, float(np.abs(sigma).max()))
    min_eig = float(np.linalg.eigvalsh((sigma + sigma.T) / 2).min())
    if min_eig < -1e-9 * scale:
        raise InvalidSnapshot(
            where, f"covariance must be positive semidefinite (smallest eigenvalue {min_eig:.3g})"
        )
    return model


def _parse_wash_event(d: Any, path: str) -> WashEvent:
    o = _obj(d, path)
    _check_keys(o, path, {"account", "symbol", "date", "identical_group"})
    group = o.get("identical_group")
    return WashEvent(
        account=_str(o.get("account"), f"{path}.account"),
        symbol=_str(o.get("symbol"), f"{path}.symbol"),
        date=_date(o.get("date"), f"{path}.date"),
        identical_group=None if group is None else _str(group, f"{path}.identical_group"),
    )


@one_blas_thread()
def snapshot_from_dict(data: Any) -> Snapshot:
    """Validate a JSON-like mapping and build a :class:`Snapshot` (raises :class:`InvalidSnapshot`)."""
    o = _obj(data, "snapshot")
    _check_keys(
        o,
        "",
        {
            "schema_version",
            "as_of",
            "mode",
            "household_id",
            "accounts",
            "securities",
            "lots",
            "targets",
            "risk_model",
            "tax",
            "budgets",
            "costs",
            "restrictions",
            "holding",
            "wash_sale",
            "objective",
            "scenario",
            "solver",
            "forecast_years",
        },
    )
    version = o.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise InvalidSnapshot("schema_version", f"must be {SCHEMA_VERSION}")
    as_of = _date(o.get("as_of"), "as_of")
    mode = o.get("mode", "rebalance")
    if mode not in MODES:
        raise InvalidSnapshot("mode", f"must be one of {', '.join(MODES)}")

    accounts = tuple(
        _parse_account(a, f"accounts[{i}]")
        for i, a in enumerate(_list(o.get("accounts"), "accounts"))
    )
    if not accounts:
        raise InvalidSnapshot("accounts", "at least one account is required")
    ids = [a.id for a in accounts]
    if len(set(ids)) != len(ids):
        raise InvalidSnapshot("accounts", "account ids must be unique")

    securities = tuple(
        _parse_security(s, f"securities[{i}]")
        for i, s in enumerate(_list(o.get("securities", []), "securities"))
    )
    symbols = [s.symbol for s in securities]
    if len(set(symbols)) != len(symbols):
        raise InvalidSnapshot("securities", "symbols must be unique")
    by_symbol = {s.symbol: s for s in securities}
    if CASH_CLASS in {s.asset_class for s in securities}:
        raise InvalidSnapshot(
            "securities", f"asset class {CASH_CLASS!r} is reserved for account cash"
        )

    lots = tuple(
        _parse_lot(lt, f"lots[{i}]") for i, lt in enumerate(_list(o.get("lots", []), "lots"))
    )
    seen: set[str] = set()
    for i, lot in enumerate(lots):
        if lot.lot_id in seen:
            raise InvalidSnapshot(f"lots[{i}].lot_id", f"duplicate lot id {lot.lot_id!r}")
        seen.add(lot.lot_id)
        if lot.account not in ids:
            raise InvalidSnapshot(f"lots[{i}].account", f"unknown account {lot.account!r}")
        if lot.symbol not in by_symbol:
            raise InvalidSnapshot(f"lots[{i}].symbol", f"unknown security {lot.symbol!r}")
        if lot.acquired > as_of:
            raise InvalidSnapshot(f"lots[{i}].acquired", "is after as_of")

    targets = _parse_targets(o.get("targets"), "targets")
    for sym in targets.securities:
        if sym not in by_symbol:
            raise InvalidSnapshot(f"targets.securities.{sym}", "unknown security")
    if sum(targets.securities.values(), Decimal(0)) > Decimal("1.000001"):
        raise InvalidSnapshot("targets.securities", "weights sum to more than 1")
    classes = {s.asset_class for s in securities}
    for t in targets.asset_classes:
        if t.asset_class not in classes and t.asset_class != CASH_CLASS:
            raise InvalidSnapshot(
                f"targets.asset_classes.{t.asset_class}", "no security in this asset class"
            )
    if sum((t.target for t in targets.asset_classes), Decimal(0)) > Decimal("1.000001"):
        raise InvalidSnapshot("targets.asset_classes", "targets sum to more than 1")
    if mode in ("rebalance", "transition") and not targets.securities and not targets.asset_classes:
        raise InvalidSnapshot("targets", f"mode {mode!r} needs security or asset-class targets")
    if mode == "transition" and not targets.securities:
        raise InvalidSnapshot(
            "targets.securities", "mode 'transition' needs the new model's security weights"
        )

    if o.get("risk_model") is None:
        raise InvalidSnapshot("risk_model", "is required")
    risk = _parse_risk(o.get("risk_model"), "risk_model")
    if risk.level == "security":
        missing = [s for s in symbols if s not in risk.labels]
        if missing:
            raise InvalidSnapshot("risk_model.labels", f"missing security {missing[0]!r}")
    else:
        if CASH_CLASS in risk.labels:
            raise InvalidSnapshot("risk_model.labels", f"{CASH_CLASS!r} has no risk; leave it out")
        missing = sorted(c for c in classes if c not in risk.labels)
        if missing:
            raise InvalidSnapshot("risk_model.labels", f"missing asset class {missing[0]!r}")

    tax_o = _obj(o.get("tax"), "tax")
    _check_keys(
        tax_o,
        "tax",
        {"short_term_rate", "long_term_rate", "ordinary_income_offset", "realized_ytd"},
    )
    ytd = _obj(tax_o.get("realized_ytd") or {}, "tax.realized_ytd")
    _check_keys(ytd, "tax.realized_ytd", {"short_term", "long_term"})
    tax = TaxRates(
        short_term_rate=_dec(tax_o.get("short_term_rate"), "tax.short_term_rate", lo=Decimal(0)),
        long_term_rate=_dec(tax_o.get("long_term_rate"), "tax.long_term_rate", lo=Decimal(0)),
        ordinary_income_offset=_dec(
            tax_o.get("ordinary_income_offset", "3000"), "tax.ordinary_income_offset", lo=Decimal(0)
        ),
        realized_ytd_short_term=_dec(ytd.get("short_term", "0"), "tax.realized_ytd.short_term"),
        realized_ytd_long_term=_dec(ytd.get("long_term", "0"), "tax.realized_ytd.long_term"),
    )
    if tax.short_term_rate >= 1 or tax.long_term_rate >= 1:
        raise InvalidSnapshot("tax.short_term_rate", "rates are fractions below 1")
    if tax.short_term_rate < tax.long_term_rate:
        raise InvalidSnapshot("tax.short_term_rate", "must be >= tax.long_term_rate")

    b_o = _obj(o.get("budgets") or {}, "budgets")
    _check_keys(
        b_o, "budgets", {"max_net_realized_gain", "max_short_term_gain", "no_short_term_gains"}
    )
    budgets = Budgets(
        max_net_realized_gain=_opt_dec(
            b_o.get("max_net_realized_gain"), "budgets.max_net_realized_gain"
        ),
        max_short_term_gain=_opt_dec(b_o.get("max_short_term_gain"), "budgets.max_short_term_gain"),
        no_short_term_gains=_bool(
            b_o.get("no_short_term_gains", False), "budgets.no_short_term_gains"
        ),
    )

    c_o = _obj(o.get("costs") or {}, "costs")
    _check_keys(c_o, "costs", {"bps", "ticket_fee", "min_trade_value"})
    costs = Costs(
        bps=_dec(c_o.get("bps", "0"), "costs.bps", lo=Decimal(0)),
        ticket_fee=_dec(c_o.get("ticket_fee", "0"), "costs.ticket_fee", lo=Decimal(0)),
        min_trade_value=_dec(
            c_o.get("min_trade_value", "0"), "costs.min_trade_value", lo=Decimal(0)
        ),
    )

    restrictions: list[Restriction] = []
    for i, r in enumerate(_list(o.get("restrictions", []), "restrictions")):
        p = f"restrictions[{i}]"
        ro = _obj(r, p)
        _check_keys(ro, p, {"symbol", "account", "no_sell", "no_buy", "max_weight", "reason"})
        sym = _str(ro.get("symbol"), f"{p}.symbol")
        if sym not in by_symbol:
            raise InvalidSnapshot(f"{p}.symbol", f"unknown security {sym!r}")
        acct = ro.get("account")
        if acct is not None and acct not in ids:
            raise InvalidSnapshot(f"{p}.account", f"unknown account {acct!r}")
        mw = _opt_dec(ro.get("max_weight"), f"{p}.max_weight", lo=Decimal(0))
        if mw is not None and mw > 1:
            raise InvalidSnapshot(f"{p}.max_weight", "must be <= 1")
        restrictions.append(
            Restriction(
                symbol=sym,
                account=None if acct is None else _str(acct, f"{p}.account"),
                no_sell=_bool(ro.get("no_sell", False), f"{p}.no_sell"),
                no_buy=_bool(ro.get("no_buy", False), f"{p}.no_buy"),
                max_weight=mw,
                reason=_str(ro.get("reason", ""), f"{p}.reason", allow_empty=True),
            )
        )

    h_o = _obj(o.get("holding") or {}, "holding")
    _check_keys(h_o, "holding", {"near_long_term_days", "hold_back_near_long_term"})
    holding = Holding(
        near_long_term_days=_int(
            h_o.get("near_long_term_days", 30), "holding.near_long_term_days", 0, 366
        ),
        hold_back_near_long_term=_bool(
            h_o.get("hold_back_near_long_term", True), "holding.hold_back_near_long_term"
        ),
    )

    w_o = _obj(o.get("wash_sale") or {}, "wash_sale")
    _check_keys(w_o, "wash_sale", {"window_days", "recent_buys", "recent_loss_sales"})
    wash = WashSale(
        window_days=_int(w_o.get("window_days", 30), "wash_sale.window_days", 0, 366),
        recent_buys=tuple(
            _parse_wash_event(e, f"wash_sale.recent_buys[{i}]")
            for i, e in enumerate(_list(w_o.get("recent_buys", []), "wash_sale.recent_buys"))
        ),
        recent_loss_sales=tuple(
            _parse_wash_event(e, f"wash_sale.recent_loss_sales[{i}]")
            for i, e in enumerate(
                _list(w_o.get("recent_loss_sales", []), "wash_sale.recent_loss_sales")
            )
        ),
    )
    for kind, events in (
        ("recent_buys", wash.recent_buys),
        ("recent_loss_sales", wash.recent_loss_sales),
    ):
        for i, e in enumerate(events):
            if e.account not in ids:
                raise InvalidSnapshot(
                    f"wash_sale.{kind}[{i}].account", f"unknown account {e.account!r}"
                )
            if e.date > as_of:
                raise InvalidSnapshot(f"wash_sale.{kind}[{i}].date", "is after as_of")

    ob = _obj(o.get("objective") or {}, "objective")
    _check_keys(
        ob,
        "objective",
        {"risk_aversion", "tax_weight", "loss_value_beyond_offset", "asset_location_drag"},
    )
    kappa = _opt_dec(
        ob.get("loss_value_beyond_offset"), "objective.loss_value_beyond_offset", lo=Decimal(0)
    )
    if kappa is not None and kappa > 1:
        raise InvalidSnapshot("objective.loss_value_beyond_offset", "must be in [0, 1]")
    drag_o = _obj(ob.get("asset_location_drag") or {}, "objective.asset_location_drag")
    for name in drag_o:
        if name not in classes:
            raise InvalidSnapshot(f"objective.asset_location_drag.{name}", "unknown asset class")
    objective = Objective(
        risk_aversion=_opt_dec(ob.get("risk_aversion"), "objective.risk_aversion", lo=Decimal(0)),
        tax_weight=_opt_dec(ob.get("tax_weight"), "objective.tax_weight", lo=Decimal(0)),
        loss_value_beyond_offset=kappa,
        asset_location_drag={
            str(k): _dec(v, f"objective.asset_location_drag.{k}", lo=Decimal(0))
            for k, v in sorted(drag_o.items())
        },
    )

    scenario = o.get("scenario")
    if scenario is not None:
        from optimizer.core.scenarios import PRESETS

        if scenario not in PRESETS:
            raise InvalidSnapshot("scenario", f"must be one of {', '.join(PRESETS)}")

    s_o = _obj(o.get("solver") or {}, "solver")
    _check_keys(s_o, "solver", {"name", "options"})
    sname = str(s_o.get("name", "CLARABEL")).upper()
    if sname not in SOLVERS:
        raise InvalidSnapshot("solver.name", f"must be one of {', '.join(SOLVERS)}")
    opts = _obj(s_o.get("options") or {}, "solver.options")
    for k, v in opts.items():
        if not isinstance(v, int | float | bool):
            raise InvalidSnapshot(f"solver.options.{k}", "must be a number or boolean")
    solver = SolverSpec(name=sname, options=dict(sorted(opts.items())))

    return Snapshot(
        schema_version=SCHEMA_VERSION,
        as_of=as_of,
        mode=cast(Mode, mode),
        household_id=_str(o.get("household_id", ""), "household_id", allow_empty=True),
        accounts=accounts,
        securities=securities,
        lots=lots,
        targets=targets,
        risk_model=risk,
        tax=tax,
        budgets=budgets,
        costs=costs,
        restrictions=tuple(restrictions),
        holding=holding,
        wash_sale=wash,
        objective=objective,
        scenario=scenario,
        solver=solver,
        forecast_years=_int(o.get("forecast_years", 0), "forecast_years", 0, 10),
    )


def _ds(d: Decimal | None) -> str | None:
    return None if d is None else str(d)


def _risk_dict(rm: RiskModel) -> dict[str, Any]:
    risk: dict[str, Any] = {"level": rm.level, "labels": list(rm.labels)}
    if rm.covariance is not None:
        risk["covariance"] = [list(r) for r in rm.covariance]
    else:
        risk["factor_loadings"] = [list(r) for r in rm.factor_loadings or ()]
        risk["factor_covariance"] = [list(r) for r in rm.factor_covariance or ()]
        if rm.specific_variance is not None:
            risk["specific_variance"] = list(rm.specific_variance)
    return risk


def _lot_dict(lt: Lot) -> dict[str, Any]:
    return {
        "lot_id": lt.lot_id,
        "account": lt.account,
        "symbol": lt.symbol,
        "quantity": str(lt.quantity),
        "cost_basis": str(lt.cost_basis),
        "acquired": lt.acquired.isoformat(),
        "holding_period_start": lt.holding_period_start.isoformat(),
    }


def snapshot_to_dict(s: Snapshot, *, risk: bool = True, lots: bool = True) -> dict[str, Any]:
    """The canonical JSON-serializable form of a snapshot (inverse of :func:`snapshot_from_dict`).

    ``risk=False`` and ``lots=False`` leave out the ``risk_model`` and ``lots`` sections (see
    :meth:`Snapshot.canonical_json`).
    """

    def ev(e: WashEvent) -> dict[str, Any]:
        out: dict[str, Any] = {"account": e.account, "symbol": e.symbol, "date": e.date.isoformat()}
        if e.identical_group is not None:
            out["identical_group"] = e.identical_group
        return out

    classes: dict[str, Any] = {}
    for t in s.targets.asset_classes:
        spec: dict[str, Any] = {"target": str(t.target)}
        for name in ("band", "min", "max"):
            v = getattr(t, name)
            if v is not None:
                spec[name] = str(v)
        classes[t.asset_class] = spec
    return {
        "schema_version": s.schema_version,
        "as_of": s.as_of.isoformat(),
        "mode": s.mode,
        "household_id": s.household_id,
        "accounts": [
            {
                "id": a.id,
                "tax_treatment": a.tax_treatment,
                "cash": str(a.cash),
                "allows_fractional": a.allows_fractional,
                "owner": a.owner,
                "cash_floor": str(a.cash_floor),
                "cash_floor_weight": _ds(a.cash_floor_weight),
                "cash_to_raise": str(a.cash_to_raise),
            }
            for a in s.accounts
        ],
        "securities": [
            {
                "symbol": x.symbol,
                "asset_class": x.asset_class,
                "price": str(x.price),
                "identical_group": x.identical_group,
                "cost_bps": str(x.cost_bps),
            }
            for x in s.securities
        ],
        **({"lots": [_lot_dict(lt) for lt in s.lots]} if lots else {}),
        "targets": {
            "securities": {k: str(v) for k, v in s.targets.securities.items()},
            "asset_classes": classes,
        },
        **({"risk_model": _risk_dict(s.risk_model)} if risk else {}),
        "tax": {
            "short_term_rate": str(s.tax.short_term_rate),
            "long_term_rate": str(s.tax.long_term_rate),
            "ordinary_income_offset": str(s.tax.ordinary_income_offset),
            "realized_ytd": {
                "short_term": str(s.tax.realized_ytd_short_term),
                "long_term": str(s.tax.realized_ytd_long_term),
            },
        },
        "budgets": {
            "max_net_realized_gain": _ds(s.budgets.max_net_realized_gain),
            "max_short_term_gain": _ds(s.budgets.max_short_term_gain),
            "no_short_term_gains": s.budgets.no_short_term_gains,
        },
        "costs": {
            "bps": str(s.costs.bps),
            "ticket_fee": str(s.costs.ticket_fee),
            "min_trade_value": str(s.costs.min_trade_value),
        },
        "restrictions": [
            {
                "symbol": r.symbol,
                "account": r.account,
                "no_sell": r.no_sell,
                "no_buy": r.no_buy,
                "max_weight": _ds(r.max_weight),
                "reason": r.reason,
            }
            for r in s.restrictions
        ],
        "holding": {
            "near_long_term_days": s.holding.near_long_term_days,
            "hold_back_near_long_term": s.holding.hold_back_near_long_term,
        },
        "wash_sale": {
            "window_days": s.wash_sale.window_days,
            "recent_buys": [ev(e) for e in s.wash_sale.recent_buys],
            "recent_loss_sales": [ev(e) for e in s.wash_sale.recent_loss_sales],
        },
        "objective": {
            "risk_aversion": _ds(s.objective.risk_aversion),
            "tax_weight": _ds(s.objective.tax_weight),
            "loss_value_beyond_offset": _ds(s.objective.loss_value_beyond_offset),
            "asset_location_drag": {k: str(v) for k, v in s.objective.asset_location_drag.items()},
        },
        "scenario": s.scenario,
        "solver": {"name": s.solver.name, "options": dict(s.solver.options)},
        "forecast_years": s.forecast_years,
    }


def load_snapshot(path: str | Path) -> Snapshot:
    """Read and validate a snapshot JSON file (raises :class:`InvalidSnapshot` on any problem)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidSnapshot(str(path), f"cannot read file: {exc.strerror}") from None
    try:
        data = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InvalidSnapshot(str(path), f"not valid JSON (line {exc.lineno}): {exc.msg}") from None
    return snapshot_from_dict(data)


def _reject_constant(name: str) -> Any:
    raise InvalidSnapshot("snapshot", f"{name} is not allowed in a snapshot")
