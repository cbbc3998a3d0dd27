"""Shared by the import tests: the sample files and a Fidelity side of the test book."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from accounts import services as svc
from accounts.models import Account, Custodian, ImportBatch, Price, ReconciliationBreak, TaxLot
from accounts.models import Transaction as BookTransaction
from audit.models import AuditEvent
from tests.factories import Book

DATA = Path(__file__).resolve().parent / "data" / "imports"
D = Decimal


@dataclass
class FidelitySide:
    custodian: Custodian
    joint: Account  # Z12-341234, taxable, $500.00 cash, 50 VTI (lot F1)
    roth: Account  # Z12-555456, Roth IRA, no cash, 1,000.5 BND (lot F2)


def add_fidelity(book: Book) -> FidelitySide:
    """Two Fidelity accounts in the book's household, with one lot each."""
    custodian = svc.custodian_create(
        code="fidelity",
        name="Fidelity Investments",
        allows_fractional=True,
        account_number_pattern=r"^[A-Z][0-9]{2}-[0-9]{6}$",
        actor=None,
    )
    joint = svc.account_create(
        household=book.household,
        owner=book.client,
        custodian=custodian,
        number="Z12-341234",
        name="Pat & Sam Joint",
        registration="joint",
        tax_treatment="taxable",
        cash=D("500.00"),
        actor=book.owner,
    )
    roth = svc.account_create(
        household=book.household,
        owner=book.spouse,
        custodian=custodian,
        number="Z12-555456",
        name="Sam Roth IRA",
        registration="roth_ira",
        tax_treatment="exempt",
        actor=book.owner,
    )
    svc.lot_create(
        account=joint,
        security=book.vti,
        lot_ref="F1",
        quantity=D("50"),
        cost_basis=D("10000.00"),
        acquired=dt.date(2024, 1, 10),
        actor=book.owner,
    )
    svc.lot_create(
        account=roth,
        security=book.bnd,
        lot_ref="F2",
        quantity=D("1000.5"),
        cost_basis=D("75037.50"),
        acquired=dt.date(2023, 6, 1),
        actor=book.owner,
    )
    return FidelitySide(custodian=custodian, joint=joint, roth=roth)


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def counts() -> dict[str, int]:
    """Rows of everything an import may write (to assert that a refused file wrote nothing)."""
    return {
        "batches": ImportBatch.objects.count(),
        "breaks": ReconciliationBreak.objects.count(),
        "lots": TaxLot.objects.count(),
        "lot_history": TaxLot.history.count(),
        "transactions": BookTransaction.objects.count(),
        "prices": Price.objects.count(),
        "audit": AuditEvent.objects.count(),
        "account_history": Account.history.count(),
    }
