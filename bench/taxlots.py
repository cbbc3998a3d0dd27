"""Benchmark: rebuild tax lots from 200,000 transactions; prints JSON figures.

Generates a deterministic (seeded) household-style book: many accounts (taxable, IRA, Roth IRA
across several owners) trading many securities, some of them grouped as substantially
identical, with prices that random-walk so that sales realize gains and losses and wash sales
happen across accounts. Every sell is feasible (never more than held). The engine then rebuilds
all lots from the transactions as one household (the worst case for wash-sale matching: every
account's buys are candidates). Median of at least three runs; target under 30 s.

Usage: ``python bench/taxlots.py [--transactions N] [--runs R] [--method fifo|hifo|minimum_tax]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from optimizer.core.taxlots import Transaction, apply_transactions

SEED = 20240601
TARGET_SECONDS = 30.0


def generate(count: int, *, seed: int = SEED) -> list[Transaction]:
    """``count`` transactions over ~5 years, 600 accounts, 250 symbols (50 in 25 pair groups)."""
    rng = random.Random(seed)
    account_types = ["taxable"] * 6 + ["ira"] * 3 + ["roth_ira"]
    accounts = [
        (f"ACC{number:04d}", account_types[number % len(account_types)], f"OWNER{number // 3:04d}")
        for number in range(600)
    ]
    symbols = [f"S{number:03d}" for number in range(250)]
    groups = {symbol: f"G{number // 2:03d}" for number, symbol in enumerate(symbols[:50])}
    prices = {symbol: 20.0 + rng.random() * 200.0 for symbol in symbols}
    held: dict[tuple[str, str], Decimal] = {}
    positions: list[tuple[str, str]] = []
    start = dt.date(2019, 1, 2)
    days = 5 * 365
    out: list[Transaction] = []
    for index in range(count):
        trade_date = start + dt.timedelta(days=index * days // count)
        if index % 50 == 0:  # a daily-ish random walk, 0.8% volatility per step
            for symbol in symbols:
                prices[symbol] *= 1.0 + rng.gauss(0.0002, 0.008)
        sell = positions and rng.random() < 0.4
        if sell:
            slot = rng.randrange(len(positions))
            account, symbol = positions[slot]
            position = held[(account, symbol)]
            quantity = min(position, Decimal(rng.randint(1, 200)))
            remaining = position - quantity
            held[(account, symbol)] = remaining
            if remaining == 0:
                positions[slot] = positions[-1]
                positions.pop()
            action = "SELL"
        else:
            account, symbol = rng.choice(accounts)[0], rng.choice(symbols)
            quantity = Decimal(rng.randint(1, 200))
            before = held.get((account, symbol), Decimal(0))
            if before == 0:
                positions.append((account, symbol))
            held[(account, symbol)] = before + quantity
            action = "BUY"
        number = int(account[3:])
        _, account_type, owner = accounts[number]
        price = Decimal(str(round(prices[symbol], 2)))
        out.append(
            Transaction(
                trade_date=trade_date,
                account=account,
                account_type=account_type,
                owner=owner,
                action=action,
                symbol=symbol,
                identical_group=groups.get(symbol),
                quantity=quantity,
                price=price,
                fee=Decimal("0.00") if rng.random() < 0.8 else Decimal("4.95"),
                line=index + 2,
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--method", default="fifo", choices=["fifo", "hifo", "minimum_tax"])
    args = parser.parse_args()
    generated_at = time.perf_counter()
    transactions = generate(args.transactions)
    generate_seconds = time.perf_counter() - generated_at
    runs: list[float] = []
    result = None
    for _ in range(max(3, args.runs)):
        began = time.perf_counter()
        result = apply_transactions(transactions, method=args.method)
        runs.append(round(time.perf_counter() - began, 3))
    assert result is not None
    median = statistics.median(runs)
    print(
        json.dumps(
            {
                "benchmark": "taxlots.rebuild",
                "method": args.method,
                "transactions": len(transactions),
                "generate_seconds": round(generate_seconds, 3),
                "runs": runs,
                "seconds_median": median,
                "target_seconds": TARGET_SECONDS,
                "within_target": median < TARGET_SECONDS,
                "open_lots": len(result.open_lots),
                "realized": len(result.realized),
                "wash_sales": sum(1 for row in result.realized if row.wash_sale_disallowed),
                "warnings": len(result.warnings),
            },
            sort_keys=True,
        )
    )


if __name__ == "__main__":
    main()
