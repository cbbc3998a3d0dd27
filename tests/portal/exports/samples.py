"""Hand-built rationale documents with exact Decimals, for the PDF tests and benchmarks.

``sample_rationale()`` gives a small two-account proposal (a taxable joint account and a
traditional IRA); ``sample_rationale(accounts=2, trades_per_account=250, lots_per_sell=8)``
gives a 500-trade, 2,000-lot transition. Every total in the document is the sum of its parts.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from portal.exports.documents import (
    AccountSection,
    AllocationRow,
    ApprovalLine,
    IpsExcerpt,
    LotInstruction,
    RationaleDocument,
    RealizedSummary,
    TradeLine,
)

CENT = Decimal("0.01")
AS_OF = dt.date(2025, 3, 14)
SNAPSHOT = "9f2c4e7a1b3d5f6071829304a5b6c7d8e9f00112233445566778899aabbccddee"

# A few real tickers first; larger documents continue with made-up ones.
SECURITIES = [
    ("VTI", "Vanguard Total Stock Market ETF", Decimal("268.40")),
    ("VXUS", "Vanguard Total International Stock ETF", Decimal("61.25")),
    ("BND", "Vanguard Total Bond Market ETF", Decimal("72.18")),
    ("VNQ", "Vanguard Real Estate ETF", Decimal("88.70")),
    ("AAPL", "Apple Inc.", Decimal("213.49")),
    ("MSFT", "Microsoft Corporation", Decimal("388.56")),
    ("JNJ", "Johnson & Johnson", Decimal("162.31")),
    ("XOM", "Exxon Mobil Corporation", Decimal("114.02")),
    ("IEFA", "iShares Core MSCI EAFE ETF", Decimal("76.84")),
    ("AGG", "iShares Core U.S. Aggregate Bond ETF", Decimal("98.57")),
    ("PG", "Procter & Gamble Company", Decimal("168.90")),
    ("KO", "Coca-Cola Company", Decimal("69.33")),
]

ACCOUNTS = [
    ("Joint brokerage", "Charles Schwab", "5678", "Joint", "Taxable", True),
    ("Traditional IRA", "Fidelity", "9012", "Traditional IRA", "Tax-deferred", False),
    ("Trust account", "Charles Schwab", "3344", "Trust", "Taxable", True),
    ("Roth IRA", "Fidelity", "7781", "Roth IRA", "Tax-exempt", False),
]

ALLOCATION = [
    # key, label, target, lower, upper, before, after
    ("us_equity", "US equity", "0.45", "0.40", "0.50", "0.5630", "0.4710"),
    ("intl_equity", "International equity", "0.20", "0.17", "0.23", "0.1140", "0.1890"),
    ("us_bonds", "US bonds", "0.25", "0.22", "0.28", "0.2010", "0.2450"),
    ("real_estate", "Real estate", "0.05", "0.03", "0.07", "0.0880", "0.0580"),
    ("cash", "Cash", "0.05", "0.02", "0.08", "0.0340", "0.0370"),
]

ST_RATE = Decimal("0.37")
LT_RATE = Decimal("0.20")


def _security(i: int) -> tuple[str, str, Decimal]:
    if i < len(SECURITIES):
        return SECURITIES[i]
    n = i - len(SECURITIES)
    letters = ""
    for _ in range(3):
        n, r = divmod(n, 26)
        letters = chr(65 + r) + letters
    symbol = "Q" + letters
    price = Decimal(20 + (i * 37) % 480) + Decimal((i * 13) % 100) / 100
    return symbol, f"{symbol.title()} Industries Inc.", price


def _lots(*, seq: int, shares: Decimal, price: Decimal, count: int) -> tuple[LotInstruction, ...]:
    """``count`` lots summing to ``shares``; alternately long-term gains, short-term gains and
    losses, with acquisition dates relative to ``AS_OF``."""
    base, rest = divmod(int(shares), count)
    lots: list[LotInstruction] = []
    for k in range(count):
        lot_shares = Decimal(base + (1 if k < rest else 0))
        kind = (seq + k) % 4
        if kind in (0, 1):  # long-term gain
            acquired = AS_OF - dt.timedelta(days=400 + 97 * ((seq + k) % 9))
            unit_cost = (price * Decimal("0.62")).quantize(CENT, ROUND_HALF_UP)
            term = "long"
        elif kind == 2:  # short-term gain
            acquired = AS_OF - dt.timedelta(days=40 + 23 * ((seq + k) % 12))
            unit_cost = (price * Decimal("0.91")).quantize(CENT, ROUND_HALF_UP)
            term = "short"
        else:  # loss, short or long
            long_loss = (seq + k) % 8 == 3
            acquired = AS_OF - dt.timedelta(days=(500 if long_loss else 150) + (seq + k) % 30)
            unit_cost = (price * Decimal("1.13")).quantize(CENT, ROUND_HALF_UP)
            term = "long" if long_loss else "short"
        proceeds = (lot_shares * price).quantize(CENT, ROUND_HALF_UP)
        basis = (lot_shares * unit_cost).quantize(CENT, ROUND_HALF_UP)
        lots.append(
            LotInstruction(
                lot_ref=f"L{seq:04d}-{k + 1:02d}",
                acquired=acquired,
                shares=lot_shares,
                lot_shares=lot_shares + Decimal(k % 3) * 5,
                cost_basis=basis,
                proceeds=proceeds,
                realized_gain=proceeds - basis,
                term=term,  # type: ignore[arg-type]
            )
        )
    return tuple(lots)


def _sum(values) -> Decimal:
    return sum(values, Decimal(0))


def sample_rationale(
    *,
    proposal_id: int = 41,
    accounts: int = 2,
    trades_per_account: int = 4,
    lots_per_sell: int = 2,
    household_name: str = "Alvarez Household",
    client_names: tuple[str, ...] = ("Maria Alvarez", "Daniel Alvarez"),
    adviser_name: str = "Jordan Reyes, CFP",
    firm_name: str = "Harborview Wealth Partners LLC",
    with_ips: bool = True,
    approvals: int = 2,
    disclosures: tuple[str, ...] = (),
    explanation_source: str = "deterministic",
    snapshot_sha256: str = SNAPSHOT,
) -> RationaleDocument:
    """A realistic rationale: trades alternate sell, buy, sell, ... in each account; every sell
    relieves ``lots_per_sell`` lots. Accounts cycle through taxable joint, traditional IRA,
    taxable trust and Roth IRA."""
    sections: list[AccountSection] = []
    realized_lots: list[LotInstruction] = []
    deferred_lots: list[LotInstruction] = []
    seq = 0
    for a in range(accounts):
        name, custodian, last4, registration, treatment, taxable = ACCOUNTS[a % len(ACCOUNTS)]
        if a >= len(ACCOUNTS):
            last4 = f"{(int(last4) + 17 * a) % 10000:04d}"
        trades: list[TradeLine] = []
        for t in range(trades_per_account):
            symbol, security_name, price = _security(seq)
            if t % 2 == 0:
                shares = Decimal(lots_per_sell * (10 + (seq * 7) % 90))
                lots = _lots(seq=seq, shares=shares, price=price, count=lots_per_sell)
                value = _sum(lot.proceeds for lot in lots)
                if taxable:
                    realized_lots.extend(lots)
                    st = _sum(lot.realized_gain for lot in lots if lot.term == "short")
                    lt = _sum(lot.realized_gain for lot in lots if lot.term == "long")
                    trades.append(
                        TradeLine("sell", symbol, security_name, shares, price, value, st, lt, lots)
                    )
                else:
                    deferred_lots.extend(lots)
                    trades.append(
                        TradeLine(
                            "sell", symbol, security_name, shares, price, value, None, None, lots
                        )
                    )
            else:
                # a fractional buy now and then (where the custodian allows it)
                shares = Decimal(5 + (seq * 11) % 140) + (Decimal("0.125") if seq % 5 == 1 else 0)
                value = (shares * price).quantize(CENT, ROUND_HALF_UP)
                trades.append(
                    TradeLine("buy", symbol, security_name, shares, price, value, None, None, ())
                )
            seq += 1
        sections.append(
            AccountSection(
                label=f"{name} ({custodian} ****{last4})",
                custodian_name=custodian,
                account_number_masked=f"****{last4}",
                registration=registration,
                tax_treatment=treatment,
                trades=tuple(trades),
                buys=_sum(t.estimated_value for t in trades if t.side == "buy"),
                sells=_sum(t.estimated_value for t in trades if t.side == "sell"),
            )
        )

    st_gains = _sum(
        lot.realized_gain for lot in realized_lots if lot.term == "short" and lot.realized_gain > 0
    )
    st_losses = _sum(
        lot.realized_gain for lot in realized_lots if lot.term == "short" and lot.realized_gain < 0
    )
    lt_gains = _sum(
        lot.realized_gain for lot in realized_lots if lot.term == "long" and lot.realized_gain > 0
    )
    lt_losses = _sum(
        lot.realized_gain for lot in realized_lots if lot.term == "long" and lot.realized_gain < 0
    )
    st_net, lt_net = st_gains + st_losses, lt_gains + lt_losses
    tax = (max(st_net, Decimal(0)) * ST_RATE + max(lt_net, Decimal(0)) * LT_RATE).quantize(
        CENT, ROUND_HALF_UP
    )
    realized = RealizedSummary(
        short_term_gains=st_gains,
        short_term_losses=st_losses,
        long_term_gains=lt_gains,
        long_term_losses=lt_losses,
        net=st_net + lt_net,
        estimated_tax=tax,
        tax_deferred=_sum(lot.realized_gain for lot in deferred_lots),
    )

    allocation = tuple(
        AllocationRow(key, label, Decimal(t), Decimal(lo), Decimal(hi), Decimal(b), Decimal(af))
        for key, label, t, lo, hi, b, af in ALLOCATION
    )
    ips = (
        IpsExcerpt(
            version=3,
            effective_date=dt.date(2024, 11, 1),
            objectives=(
                "Long-term growth with moderate risk for retirement in about twelve years.\n\n"
                "Keep realized short-term gains low; harvest losses where they offset gains."
            ),
            targets=tuple(
                AllocationRow(r.key, r.label, r.target, r.lower, r.upper, Decimal(0), Decimal(0))
                for r in allocation
            ),
            restrictions=(
                "Do not sell Apple Inc. (AAPL) in the joint account (gifted shares, low basis).",
                "No tobacco or firearms manufacturers.",
            ),
        )
        if with_ips
        else None
    )
    approval_lines = (
        ApprovalLine(
            step="Approval",
            name=adviser_name,
            role="Adviser",
            at=dt.datetime(2025, 3, 15, 14, 5, tzinfo=dt.UTC),
            comment="Reviewed with the clients on the phone; they agree with the transition pace.",
        ),
        ApprovalLine(
            step="Second approval (four-eyes)",
            name="Priya Natarajan",
            role="Chief Compliance Officer",
            at=dt.datetime(2025, 3, 15, 16, 42, 9, tzinfo=dt.UTC),
            comment="",
        ),
    )[:approvals]
    n_trades = sum(len(s.trades) for s in sections)
    moved = _sum(s.buys + s.sells for s in sections)
    return RationaleDocument(
        proposal_id=proposal_id,
        firm_name=firm_name,
        household_name=household_name,
        client_names=client_names,
        adviser_name=adviser_name,
        scenario_label="Moderate transition",
        as_of=AS_OF,
        approved_at=approval_lines[-1].at if approval_lines else None,
        generated_at=dt.datetime(2025, 3, 15, 17, 0, tzinfo=dt.UTC),
        snapshot_sha256=snapshot_sha256,
        explanation=(
            f"This proposal makes {n_trades} trades that move ${moved:,.2f} to bring the "
            "portfolio closer to the targets in your investment policy statement. It trims US "
            "equity and real estate, which had grown above their ranges, and adds to "
            "international equity and US bonds.",
            f"It realizes ${realized.net:,.2f} of net gains, with an estimated tax of "
            f"${realized.estimated_tax:,.2f}. Lots held at a loss were sold first so that the "
            "losses offset part of the gains.",
            "Tracking error to your target falls from 3.42% to 1.18%. It does not reach zero "
            "because the annual gain budget binds: the positions furthest from target are the "
            "ones with the largest embedded gains.",
        ),
        explanation_source=explanation_source,
        allocation=allocation,
        accounts=tuple(sections),
        realized=realized,
        tracking_error_before=Decimal("0.0342"),
        tracking_error_after=Decimal("0.0118"),
        turnover=Decimal("0.1375"),
        trading_cost=Decimal("48.75") + Decimal(n_trades) * Decimal("0.50"),
        tickets=n_trades,
        constraints=(
            "The $25,000 annual gain budget binds: 62% of the $40,300 gains available were used.",
            "No short-term gains above $2,000 may be realized; the limit was reached.",
            "Apple Inc. (AAPL) may not be sold in the joint account.",
        ),
        ips=ips,
        approvals=approval_lines,
        disclosures=disclosures,
    )
