"""Result dataclasses and the canonical JSON encoding (byte-identical for the same input).

Money is ``Decimal`` rounded to cents and written as a string; shares are ``Decimal`` strings
(whole unless the account allows fractions); ratios and weights are floats rounded to
``FLOAT_DIGITS`` decimals. Keys are sorted. Wall-clock timings are left out unless asked for,
because they differ from run to run.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

FLOAT_DIGITS = 8
CENT = Decimal("0.01")


def cents(d: Decimal) -> Decimal:
    """Round a dollar amount half-up to cents."""
    return d.quantize(CENT, rounding=ROUND_HALF_UP)


def fnum(x: float, digits: int = FLOAT_DIGITS) -> float:
    """A float rounded to ``digits`` decimals, with -0.0 and non-finite values normalized."""
    if not math.isfinite(x):
        return 0.0
    r = round(float(x), digits)
    return 0.0 if r == 0 else r


@dataclass(frozen=True)
class LotSale:
    """Shares sold from one lot and the exact realized gain (proceeds - basis share)."""

    lot_id: str
    shares: Decimal
    proceeds: Decimal
    cost_basis: Decimal
    realized_gain: Decimal
    term: str  # "short" | "long"
    holding_days: int
    taxable: bool

    @classmethod
    def make(
        cls,
        lot_id: str,
        shares: Decimal,
        proceeds: Decimal,
        cost_basis: Decimal,
        realized_gain: Decimal,
        term: str,
        holding_days: int,
        taxable: bool,
    ) -> LotSale:
        """The same object as ``LotSale(...)`` with these fields, made without the generated
        ``__init__`` (a frozen dataclass sets each field through ``object.__setattr__``; the
        optimizer makes one per lot sold in every run). No field is checked or converted by
        either."""
        obj = object.__new__(cls)
        obj.__dict__.update(
            lot_id=lot_id,
            shares=shares,
            proceeds=proceeds,
            cost_basis=cost_basis,
            realized_gain=realized_gain,
            term=term,
            holding_days=holding_days,
            taxable=taxable,
        )
        return obj

    def as_dict(self) -> dict[str, Any]:
        return {
            "lot_id": self.lot_id,
            "shares": str(self.shares),
            "proceeds": str(cents(self.proceeds)),
            "cost_basis": str(cents(self.cost_basis)),
            "realized_gain": str(cents(self.realized_gain)),
            "term": self.term,
            "holding_days": self.holding_days,
            "taxable": self.taxable,
        }


@dataclass(frozen=True)
class Trade:
    """One order (ticket): an account buys or sells one security; sells list their lots."""

    account: str
    symbol: str
    side: str  # "buy" | "sell"
    shares: Decimal
    price: Decimal
    value: Decimal  # shares * price, exact
    cost: Decimal  # proportional cost, cents
    ticket_fee: Decimal
    lots: tuple[LotSale, ...] = ()

    @classmethod
    def make(
        cls,
        account: str,
        symbol: str,
        side: str,
        shares: Decimal,
        price: Decimal,
        value: Decimal,
        cost: Decimal,
        ticket_fee: Decimal,
        lots: tuple[LotSale, ...] = (),
    ) -> Trade:
        """The same object as ``Trade(...)`` with these fields (see :meth:`LotSale.make`)."""
        obj = object.__new__(cls)
        obj.__dict__.update(
            account=account,
            symbol=symbol,
            side=side,
            shares=shares,
            price=price,
            value=value,
            cost=cost,
            ticket_fee=ticket_fee,
            lots=lots,
        )
        return obj

    @property
    def realized_gain(self) -> Decimal:
        return sum((lot.realized_gain for lot in self.lots), Decimal(0))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "account": self.account,
            "symbol": self.symbol,
            "side": self.side,
            "shares": str(self.shares),
            "price": str(self.price),
            "estimated_value": str(cents(self.value)),
            "cost": str(self.cost),
            "ticket_fee": str(self.ticket_fee),
        }
        if self.side == "sell":
            out["lots"] = [lot.as_dict() for lot in self.lots]
            out["realized_gain"] = str(cents(self.realized_gain))
            st = sum((x.realized_gain for x in self.lots if x.term == "short"), Decimal(0))
            out["realized_short_term"] = str(cents(st))
            out["realized_long_term"] = str(cents(self.realized_gain - st))
        return out


@dataclass
class SolverInfo:
    """What solved the problem: names, versions, status, iterations, objective, timings.

    Timings (wall-clock, seconds; written only when asked, they differ from run to run):
    ``solve_time_s`` the solver-reported times of this run's solves (``solves``);
    ``core_time_s`` the whole ``solve()`` call, snapshot to checked result, the forecast
    included; ``compile_time_s`` the part of it spent building and compiling cvxpy problems
    (first use of a structure, the forecast years' included); ``forecast_solves`` and
    ``forecast_solve_time_s`` the forecast years' solves and their solver-reported times;
    ``solve_wall_time_s`` the wall-clock time of this run's solve calls, parameter values in to
    primal and dual vectors out (the solver data from the compiled problem, the solver's own
    setup and solve, the mapping back; first compilations left out).
    """

    name: str
    solver_version: str
    cvxpy_version: str
    status: str
    iterations: int
    objective: float
    solves: int
    compiled_reused: bool
    solve_time_s: float = 0.0
    core_time_s: float = 0.0
    compile_time_s: float = 0.0
    forecast_solves: int = 0
    forecast_solve_time_s: float = 0.0
    solve_wall_time_s: float = 0.0

    def as_dict(self, timings: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "solver_version": self.solver_version,
            "cvxpy_version": self.cvxpy_version,
            "status": self.status,
            "iterations": self.iterations,
            "objective": fnum(self.objective, 10),
            "solves": self.solves,
        }
        if timings:
            out["solve_time_s"] = fnum(self.solve_time_s, 6)
            out["core_time_s"] = fnum(self.core_time_s, 6)
            out["compiled_reused"] = self.compiled_reused
            out["compile_time_s"] = fnum(self.compile_time_s, 6)
            out["forecast_solves"] = self.forecast_solves
            out["forecast_solve_time_s"] = fnum(self.forecast_solve_time_s, 6)
            out["solve_wall_time_s"] = fnum(self.solve_wall_time_s, 6)
        return out


@dataclass
class Result:
    """Everything one run returns. ``to_json`` gives the canonical, repeatable JSON."""

    status: str
    mode: str
    scenario: str
    as_of: str
    input_sha256: str
    trades: list[Trade]
    metrics: dict[str, Any]
    binding_constraints: list[dict[str, Any]]
    facts: list[dict[str, Any]]
    flags: list[dict[str, Any]]
    solver: SolverInfo
    forecast: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def as_dict(self, timings: bool = False) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "status": self.status,
            "mode": self.mode,
            "scenario": self.scenario,
            "as_of": self.as_of,
            "input_sha256": self.input_sha256,
            "settings": self.settings,
            "trades": [t.as_dict() for t in self.trades],
            "metrics": self.metrics,
            "binding_constraints": self.binding_constraints,
            "facts": self.facts,
            "flags": self.flags,
            "forecast": self.forecast,
            "solver": self.solver.as_dict(timings),
        }

    def to_json(self, timings: bool = False) -> str:
        return dumps(self.as_dict(timings))


def _default(o: Any) -> Any:
    if isinstance(o, Decimal):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def _normalize(o: Any) -> Any:
    if isinstance(o, float):
        return fnum(o)
    if isinstance(o, dict):
        return {str(k): _normalize(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_normalize(v) for v in o]
    return o


def dumps(obj: Any) -> str:
    """Canonical JSON: sorted keys, 2-space indent, floats rounded, Decimals as strings."""
    return json.dumps(_normalize(obj), sort_keys=True, indent=2, default=_default) + "\n"
