"""The data the export writers read: built from the database by ``portal.exports.context``,
or by hand in tests and benchmarks. Pure Python, no Django: every writer is a function of these
values only, so the same document gives byte-identical files.

Money and shares are exact ``Decimal``; weights are ``Decimal`` fractions (0.25 = 25%).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

Side = Literal["buy", "sell"]
Term = Literal["short", "long"]


class ExportRefused(Exception):
    """An export that must not be written. ``problems`` names every violation (order id,
    account, field and what is wrong); nothing has been written when this is raised."""

    def __init__(self, message: str, problems: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems)

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        return self.message + "\n" + "\n".join(f"- {p}" for p in self.problems)


# --------------------------------------------------------------------------- orders


@dataclass(frozen=True)
class LotInstruction:
    """One lot a sell relieves (specific-lot identification)."""

    lot_ref: str  # the custodian's lot id (TaxLot.lot_ref)
    acquired: dt.date
    shares: Decimal  # shares of this lot sold by the order
    lot_shares: Decimal  # shares the lot holds in the book at export time
    cost_basis: Decimal  # basis of the shares sold, dollars
    proceeds: Decimal  # estimated, at the order's price
    realized_gain: Decimal
    term: Term


@dataclass(frozen=True)
class Order:
    """One order for one account (an allocation, when it is part of a block)."""

    order_id: str  # deterministic: "P{proposal}-{position:03d}"
    block_id: str  # "P{proposal}-B{n:02d}"; every order belongs to one block (maybe of one)
    custodian: str  # custodian code: "schwab", "fidelity", "pershing", ...
    custodian_name: str
    account_number: str
    account_name: str
    registration: str  # individual, joint, trust, traditional_ira, roth_ira
    tax_treatment: str  # taxable, deferred, exempt
    allows_fractional: bool  # the account (and its custodian) accept fractional shares
    side: Side
    symbol: str
    security_name: str
    quantity: Decimal
    price: Decimal  # the estimate the proposal used (last close), not a limit
    estimated_value: Decimal
    order_type: Literal["market", "limit"] = "market"
    time_in_force: Literal["day", "gtc"] = "day"
    limit_price: Decimal | None = None
    lots: tuple[LotInstruction, ...] = ()


@dataclass(frozen=True)
class Block:
    """Orders in one security, on one side, at one custodian, aggregated across accounts."""

    block_id: str
    custodian: str
    side: Side
    symbol: str
    quantity: Decimal  # sum of the allocations
    allocations: tuple[Order, ...]


@dataclass(frozen=True)
class OrderSet:
    proposal_id: int
    household: str
    as_of: dt.date  # the snapshot's date (prices used)
    entered_at: dt.datetime  # when the orders were entered (the export's time, UTC)
    orders: tuple[Order, ...]
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class RenderedFile:
    """One file of an export, ready to be stored. ``order_count`` and ``total_shares`` are the
    file's control totals (orders or allocations written, sum of their quantities); a file that
    carries no orders (the PDF) has 0 and 0."""

    kind: str  # rationale_pdf, schwab_trades, schwab_lots, fidelity_orders, generic_orders, ...
    name: str  # deterministic, carries the proposal id
    content: bytes
    content_type: str
    order_count: int = 0
    total_shares: Decimal = Decimal(0)


# --------------------------------------------------------------------------- rationale


@dataclass(frozen=True)
class AllocationRow:
    key: str  # asset class key (us_equity) or "cash"
    label: str  # "US equity"
    target: Decimal | None
    lower: Decimal | None  # IPS band
    upper: Decimal | None
    before: Decimal
    after: Decimal


@dataclass(frozen=True)
class TradeLine:
    side: Side
    symbol: str
    security_name: str
    shares: Decimal
    price: Decimal
    estimated_value: Decimal
    realized_short_term: Decimal | None  # sells in taxable accounts; None otherwise
    realized_long_term: Decimal | None
    lots: tuple[LotInstruction, ...]  # the lots a sell relieves (empty for a buy)


@dataclass(frozen=True)
class AccountSection:
    label: str  # "Joint brokerage (Charles Schwab ****5678)"
    custodian_name: str
    account_number_masked: str  # last four only, for the client
    registration: str  # display label
    tax_treatment: str  # display label
    trades: tuple[TradeLine, ...]
    buys: Decimal
    sells: Decimal


@dataclass(frozen=True)
class RealizedSummary:
    short_term_gains: Decimal
    short_term_losses: Decimal  # negative or zero
    long_term_gains: Decimal
    long_term_losses: Decimal  # negative or zero
    net: Decimal
    estimated_tax: Decimal
    tax_deferred: Decimal  # gains realized inside IRAs (not taxed now)


@dataclass(frozen=True)
class IpsExcerpt:
    version: int
    effective_date: dt.date
    objectives: str
    targets: tuple[AllocationRow, ...]  # before/after unused (0)
    restrictions: tuple[str, ...]  # in words


@dataclass(frozen=True)
class ApprovalLine:
    step: str  # "Approval", "Second approval (four-eyes)"
    name: str
    role: str
    at: dt.datetime
    comment: str


@dataclass(frozen=True)
class RationaleDocument:
    proposal_id: int
    firm_name: str
    household_name: str
    client_names: tuple[str, ...]
    adviser_name: str
    scenario_label: str
    as_of: dt.date  # the data's date
    approved_at: dt.datetime | None
    generated_at: dt.datetime  # the export's time; the PDF's metadata dates use it
    snapshot_sha256: str
    explanation: tuple[str, ...]  # paragraphs, plain language
    explanation_source: str  # "model" or "deterministic"
    allocation: tuple[AllocationRow, ...]
    accounts: tuple[AccountSection, ...]
    realized: RealizedSummary
    tracking_error_before: Decimal
    tracking_error_after: Decimal
    turnover: Decimal
    trading_cost: Decimal
    tickets: int
    constraints: tuple[str, ...]  # the binding constraints, in words
    ips: IpsExcerpt | None
    approvals: tuple[ApprovalLine, ...]
    disclosures: tuple[str, ...] = field(default=())
