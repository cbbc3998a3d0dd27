"""Benchmark: import a 100,000-lot generic lots file through the import service; prints JSON.

Builds (once) a synthetic firm in a temporary SQLite database: 250 households of 4 accounts
(1,000 accounts) and 500 securities, through the services. Generates (seeded) a generic open
lots file of 100,000 lots spread over those accounts and securities. Each run copies the
prepared database, so every run imports the same file into the same empty book, and times
``accounts.importing.import_file`` end to end: decoding, parsing, checking every row against
the book, and writing the batch, the lots and their history rows and the audit event in one
transaction. Median of at least three runs; target under 30 s.

Usage: ``python bench/imports.py [--lots N] [--runs R]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEED = 20250613
TARGET_SECONDS = 30.0
HOUSEHOLDS = 250
ACCOUNTS_PER_HOUSEHOLD = 4
SECURITIES = 500


def setup_django(database: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def use_database(path: Path) -> None:
    from django.db import connections

    connection = connections["default"]
    connection.close()
    connection.settings_dict["NAME"] = str(path)


def build_book() -> tuple[object, object, list[str], list[str]]:
    """The synthetic firm: returns (firm, adviser, account numbers, symbols)."""
    from accounts import services as svc

    firm = svc.firm_create(name="Bench Advisers", slug="bench", actor=None)
    adviser = svc.user_create(
        username="bench-adviser",
        password="bench-password-2026",
        role="adviser",
        firm=firm,
        actor=None,
    )
    custodian = svc.custodian_create(
        code="benchcust",
        name="Bench Custodian",
        allows_fractional=True,
        account_number_pattern=r"^B[0-9]{7}$",
        actor=None,
    )
    equity = svc.asset_class_create(code="equity", name="Equity", sort_order=1, actor=None)
    symbols = []
    for index in range(SECURITIES):
        symbol = f"S{index:04d}"
        svc.security_create(
            symbol=symbol, name=f"Security {index}", kind="stock", asset_class=equity, actor=None
        )
        symbols.append(symbol)
    numbers = []
    registrations = [
        ("individual", "taxable"),
        ("joint", "taxable"),
        ("traditional_ira", "deferred"),
        ("roth_ira", "exempt"),
    ]
    for h in range(HOUSEHOLDS):
        household = svc.household_create(
            firm=firm, name=f"Household {h:04d}", advisers=[adviser], actor=None
        )
        client = svc.client_create(
            household=household, first_name="Client", last_name=f"{h:04d}", actor=None
        )
        for a in range(ACCOUNTS_PER_HOUSEHOLD):
            number = f"B{h * ACCOUNTS_PER_HOUSEHOLD + a:07d}"
            registration, treatment = registrations[a]
            svc.account_create(
                household=household,
                owner=client,
                custodian=custodian,
                number=number,
                name=f"Account {number}",
                registration=registration,
                tax_treatment=treatment,
                actor=None,
            )
            numbers.append(number)
    return firm, adviser, numbers, symbols


def generate(count: int, numbers: list[str], symbols: list[str], *, seed: int = SEED) -> bytes:
    """A generic open lots file of ``count`` lots (seeded)."""
    rng = random.Random(seed)
    start = dt.date(2015, 1, 2)
    span = (dt.date(2024, 12, 31) - start).days
    lines = ["account,custodian,symbol,lot_id,quantity,cost_basis,acquired"]
    for index in range(count):
        quantity = Decimal(rng.randint(1, 500_000)) / Decimal(1000)
        price = Decimal(rng.randint(500, 50_000)) / Decimal(100)
        basis = (quantity * price).quantize(Decimal("0.01"))
        acquired = start + dt.timedelta(days=rng.randrange(span))
        lines.append(
            f"{rng.choice(numbers)},benchcust,{rng.choice(symbols)},LOT{index:07d},{quantity},{basis},{acquired}"
        )
    return ("\n".join(lines) + "\n").encode("utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lots", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-imports-"))
    try:
        template = workdir / "template.sqlite3"
        setup_django(template)
        from django.core.management import call_command

        began = time.perf_counter()
        call_command("migrate", verbosity=0)
        firm, adviser, numbers, symbols = build_book()
        setup_seconds = time.perf_counter() - began
        began = time.perf_counter()
        data = generate(args.lots, numbers, symbols)
        generate_seconds = time.perf_counter() - began
        use_database(workdir / "unused.sqlite3")

        from accounts.importing import import_file
        from accounts.models import Firm, TaxLot, User
        from audit.models import AuditEvent

        runs: list[float] = []
        checks: list[dict[str, int]] = []
        for run in range(max(3, args.runs)):
            path = workdir / f"run{run}.sqlite3"
            shutil.copyfile(template, path)
            use_database(path)
            firm = Firm.objects.get(slug="bench")
            adviser = User.objects.get(username="bench-adviser")
            began = time.perf_counter()
            outcome = import_file(
                firm=firm,
                fmt="generic",
                kind="lots",
                file_name="bench-lots.csv",
                data=data,
                actor=adviser,
            )
            runs.append(round(time.perf_counter() - began, 3))
            checks.append(
                {
                    "created": outcome.batch.rows_created,
                    "lots": TaxLot.objects.count(),
                    "lot_history": TaxLot.history.count(),
                    "audit_events": AuditEvent.objects.filter(
                        event_type="import.completed"
                    ).count(),
                }
            )
            use_database(workdir / "unused.sqlite3")
            path.unlink()
        median = statistics.median(runs)
        print(
            json.dumps(
                {
                    "benchmark": "imports.generic_lots",
                    "lots": args.lots,
                    "file_bytes": len(data),
                    "accounts": len(numbers),
                    "securities": len(symbols),
                    "setup_seconds": round(setup_seconds, 3),
                    "generate_seconds": round(generate_seconds, 3),
                    "runs": runs,
                    "seconds_median": median,
                    "target_seconds": TARGET_SECONDS,
                    "within_target": median < TARGET_SECONDS,
                    "checks": checks[-1],
                    "database": "sqlite",
                },
                sort_keys=True,
            )
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
