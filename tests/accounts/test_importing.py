"""The import service: every sample into the test book, idempotency, every bad row with
nothing written, lots through the tax-lot engine, reconciliation breaks."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from accounts import services as svc
from accounts.importers import ImportFileError
from accounts.importing import import_file, reconciliation_break_resolve
from accounts.models import (
    Account,
    BreakStatus,
    ImportBatch,
    ImportStatus,
    Price,
    ReconciliationBreak,
    TaxLot,
    Transaction,
)
from audit.models import AuditEvent
from tests.imports_support import add_fidelity, counts, sample

D = Decimal


def run(book, fmt: str, name: str, *, data: bytes | None = None, **kwargs):
    return import_file(
        firm=book.firm,
        fmt=fmt,
        file_name=name,
        data=sample(name) if data is None else data,
        actor=book.owner,
        **kwargs,
    )


def refused(book, fmt: str, name: str, *, data: bytes | None = None, **kwargs):
    before = counts()
    with pytest.raises(ImportFileError) as info:
        run(book, fmt, name, data=data, **kwargs)
    assert counts() == before, "a refused file must write nothing"
    return [(p.source, p.line, p.field, p.reason) for p in info.value.problems]


def lot(account: Account, ref: str) -> TaxLot:
    return TaxLot.objects.get(account=account, lot_ref=ref)


def cash(account: Account) -> Decimal:
    return Account.objects.get(pk=account.pk).cash


# --------------------------------------------------------------------------- each sample


def test_schwab_positions_agree_with_the_book(book):
    outcome = run(book, "schwab", "schwab_positions.csv")
    batch = outcome.batch
    assert outcome.created
    assert (batch.kind, batch.file_format, batch.custodian, batch.as_of) == (
        "positions",
        "schwab",
        book.custodian,
        dt.date(2025, 6, 13),
    )
    assert (batch.rows_read, batch.rows_created, batch.rows_updated, batch.rows_unchanged) == (
        4,
        0,
        0,
        4,
    )
    assert batch.status == ImportStatus.IMPORTED and batch.actor == book.owner
    assert ReconciliationBreak.objects.count() == 0
    assert set(
        Price.objects.filter(date=dt.date(2025, 6, 13)).values_list(
            "security__symbol", "close", "source"
        )
    ) == {("VTI", D("250.000000"), "import:schwab"), ("BND", D("72.500000"), "import:schwab")}


def test_schwab_positions_breaks_are_computed_exactly(book):
    batch = run(book, "schwab", "schwab_positions_breaks.csv").batch
    assert (batch.rows_read, batch.rows_created, batch.rows_updated, batch.rows_unchanged) == (
        4,
        4,
        0,
        1,
    )
    assert batch.status == ImportStatus.NEEDS_REVIEW
    rows = {
        (b.account.number, b.security.symbol if b.security else "cash"): (
            b.custodian_quantity,
            b.book_quantity,
            b.difference,
            b.status,
        )
        for b in ReconciliationBreak.objects.filter(batch=batch)
    }
    assert rows == {
        ("12345678", "VTI"): (D("90"), D("100"), D("-10"), "open"),
        ("12345678", "BND"): (D("5"), D("0"), D("5"), "open"),
        ("12345678", "cash"): (D("1250.00"), D("1000.00"), D("250.00"), "open"),
        ("87654321", "BND"): (D("0"), D("200"), D("-200"), "open"),
    }
    brk = ReconciliationBreak.objects.filter(batch=batch).first()
    assert brk.history.get().history_user == book.owner
    assert f"import #{batch.pk}" in brk.history.get().history_change_reason


def test_schwab_lots_are_created_with_their_basis(book):
    batch = run(book, "schwab", "schwab_lots.csv").batch
    assert (batch.rows_read, batch.rows_created, batch.rows_updated, batch.rows_unchanged) == (
        3,
        3,
        0,
        0,
    )
    sw2 = lot(book.taxable, "SW-1002")
    assert (sw2.security, sw2.quantity, sw2.cost_basis, sw2.acquired) == (
        book.vti,
        D("10"),
        D("2901.00"),
        dt.date(2025, 2, 3),
    )
    assert (sw2.holding_period_start, sw2.wash_sale_adjustment) == (
        dt.date(2025, 2, 3),
        D("120.00"),
    )
    assert lot(book.ira, "SW-2001").cost_basis == D("100000.00")
    record = sw2.history.get()
    assert record.history_user == book.owner and record.history_type == "+"
    assert record.history_change_reason == f"import #{batch.pk} schwab_lots.csv"


def test_schwab_transactions_move_cash_and_lots(book):
    batch = run(book, "schwab", "schwab_transactions.csv").batch
    assert (batch.rows_read, batch.rows_created, batch.rows_updated, batch.rows_unchanged) == (
        8,
        8,
        0,
        0,
    )
    assert cash(book.taxable) == D("1388.45")  # 1,000 + 5,000 - 5,600 + 18.40 + 1,495.05 - 25 - 500
    assert cash(book.ira) == D("501.23")
    bought = lot(book.taxable, "SCH-1002")  # the buy's transaction id names its lot
    assert (bought.quantity, bought.cost_basis, bought.acquired) == (
        D("15"),
        D("4200.00"),
        dt.date(2025, 3, 4),
    )
    sell = Transaction.objects.get(account=book.taxable, external_id="SCH-1004")
    assert (sell.kind, sell.quantity, sell.price, sell.amount, sell.realized_gain) == (
        "sell",
        D("5"),
        D("300"),
        D("1495.05"),
        D("95.05"),
    )
    kinds = sorted(
        Transaction.objects.filter(external_id__startswith="SCH-").values_list("kind", flat=True)
    )
    assert kinds == [
        "buy",
        "deposit",
        "deposit",
        "dividend",
        "fee",
        "interest",
        "sell",
        "withdrawal",
    ]
    dividend = Transaction.objects.get(external_id="SCH-1003")
    assert (dividend.trade_date, dividend.security) == (dt.date(2025, 3, 27), book.vti)
    (realized,) = batch.summary["realized"]
    assert {
        k: realized[k] for k in ("lot_id", "quantity", "proceeds", "cost_basis", "gain", "term")
    } == {
        "lot_id": "SCH-1002",
        "quantity": "5",
        "proceeds": "1495.05",
        "cost_basis": "1400.00",
        "gain": "95.05",
        "term": "short",
    }
    assert batch.summary["cash"]["schwab 12345678"] == {"before": "1000.00", "after": "1388.45"}
    assert lot(book.taxable, "L1").quantity == D("100")  # acquired after the sale: untouched


def test_fidelity_positions_match_masked_numbers(book):
    side = add_fidelity(book)
    batch = run(book, "fidelity", "fidelity_positions.csv").batch
    assert batch.custodian == side.custodian
    assert (batch.rows_read, batch.rows_created, batch.rows_unchanged) == (4, 0, 4)
    assert batch.summary["accounts"] == ["Z12-341234", "Z12-555456"]


def test_fidelity_lots(book):
    side = add_fidelity(book)
    batch = run(book, "fidelity", "fidelity_lots.csv").batch
    assert (batch.rows_created, batch.rows_updated) == (2, 0)
    big = lot(side.joint, "F-88001")
    assert (big.quantity, big.cost_basis, big.acquired) == (
        D("1200.25"),
        D("288180.03"),
        dt.date(2023, 1, 10),
    )
    assert lot(side.roth, "F-88002").wash_sale_adjustment == D("12.40")


def test_fidelity_transactions_relieve_the_existing_lot_fifo(book):
    side = add_fidelity(book)
    batch = run(book, "fidelity", "fidelity_transactions.csv").batch
    assert (batch.rows_read, batch.rows_created) == (7, 7)
    f1 = lot(side.joint, "F1")  # 50 shares bought 2024-01-10 for $10,000; 10 sold
    assert (f1.quantity, f1.cost_basis, f1.closed_on) == (D("40"), D("8000.00"), None)
    new = TaxLot.objects.filter(account=side.joint).exclude(lot_ref="F1").order_by("acquired")
    assert [(x.quantity, x.cost_basis, x.acquired) for x in new] == [
        (D("5.5"), D("1551.00"), dt.date(2025, 3, 5)),
        (D("0.16"), D("45.10"), dt.date(2025, 3, 31)),
    ]
    sell = Transaction.objects.get(account=side.joint, kind="sell")
    assert (sell.quantity, sell.amount, sell.realized_gain) == (D("10"), D("2899.95"), D("899.95"))
    assert batch.summary["realized"][0]["term"] == "long"
    assert cash(side.joint) == D("3836.45")
    assert cash(side.roth) == D("2.10")
    assert f1.history.latest().history_user == book.owner


def test_generic_positions_within_tolerance(book):
    batch = run(book, "generic", "generic_positions.csv").batch
    assert batch.custodian is None
    assert (batch.rows_read, batch.rows_created, batch.rows_unchanged) == (3, 0, 3)
    assert batch.summary["tolerance"] == "0.0001"


def test_generic_positions_with_no_tolerance_break_on_a_fraction(book):
    batch = run(book, "generic", "generic_positions.csv", tolerance=D("0")).batch
    (brk,) = ReconciliationBreak.objects.filter(batch=batch)
    assert (brk.account, brk.security, brk.difference) == (book.ira, book.bnd, D("0.00005"))


def test_generic_lots(book):
    batch = run(book, "generic", "generic_lots.csv").batch
    assert batch.rows_created == 3
    g2 = lot(book.taxable, "G-2")
    assert (g2.security, g2.cost_basis, g2.holding_period_start, g2.wash_sale_adjustment) == (
        book.bnd,
        D("800.25"),
        dt.date(2024, 11, 20),
        D("40.25"),
    )
    assert lot(book.ira, "G-3").quantity == D("100")


def test_generic_transactions_wash_sale_across_the_household(book):
    batch = run(book, "generic", "generic_transactions.csv").batch
    assert (batch.rows_read, batch.rows_created) == (12, 12)
    # 40 VTI bought at 250 (GEN-A), sold at 230 less 4.95: loss 804.95. Replacements within
    # 30 days: 10 in the IRA (Feb 20: 201.24 disallowed for good), 20 in the taxable account
    # (Feb 25: 402.47 added to their basis, holding period tacked by the 31 days held).
    assert not TaxLot.objects.filter(lot_ref="GEN-A").exists()
    gen_d = lot(book.taxable, "GEN-D")
    assert (gen_d.quantity, gen_d.cost_basis, gen_d.wash_sale_adjustment) == (
        D("20"),
        D("5022.47"),
        D("402.47"),
    )
    assert (gen_d.acquired, gen_d.holding_period_start) == (
        dt.date(2025, 2, 25),
        dt.date(2025, 1, 25),
    )
    gen_c = lot(book.ira, "GEN-C")
    assert (gen_c.cost_basis, gen_c.wash_sale_adjustment) == (D("2320.00"), D("0.00"))
    gen_b = lot(book.taxable, "GEN-B")  # securities transferred in with their basis
    assert (gen_b.security, gen_b.quantity, gen_b.cost_basis, gen_b.acquired) == (
        book.bnd,
        D("30"),
        D("2250.00"),
        dt.date(2019, 5, 20),
    )
    sell = Transaction.objects.get(external_id="G-T06")
    assert (sell.amount, sell.realized_gain) == (D("9195.05"), D("-804.95"))
    (realized,) = batch.summary["realized"]
    assert (
        realized["wash_sale_disallowed"],
        realized["wash_sale_permanent"],
        realized["allowed_gain"],
        realized["replaced_by"],
    ) == ("603.71", "201.24", "-201.24", ["GEN-C", "GEN-D"])
    assert cash(book.taxable) == D("11552.22")
    assert cash(book.ira) == D("680.00")
    journal = Transaction.objects.get(external_id="G-T02")
    assert (journal.kind, journal.amount) == ("withdrawal", D("-3000.00"))
    transfer = Transaction.objects.get(external_id="G-T05")
    assert (transfer.kind, transfer.amount, transfer.lot_ref) == ("transfer_in", D("0.00"), "GEN-B")


# --------------------------------------------------------------------------- idempotency, audit


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("schwab", "schwab_positions_breaks.csv"),
        ("schwab", "schwab_lots.csv"),
        ("schwab", "schwab_transactions.csv"),
        ("fidelity", "fidelity_positions.csv"),
        ("fidelity", "fidelity_lots.csv"),
        ("fidelity", "fidelity_transactions.csv"),
        ("generic", "generic_positions.csv"),
        ("generic", "generic_lots.csv"),
        ("generic", "generic_transactions.csv"),
    ],
)
def test_the_same_file_twice_changes_nothing(book, fmt, name):
    add_fidelity(book)
    first = run(book, fmt, name)
    before = counts()
    cash_before = list(Account.objects.order_by("pk").values_list("cash", flat=True))
    again = run(book, fmt, name, kind=first.batch.kind)
    assert (again.created, again.batch.pk) == (False, first.batch.pk)
    assert run(book, fmt, "renamed.csv", data=sample(name)).batch.pk == first.batch.pk
    assert counts() == before
    assert list(Account.objects.order_by("pk").values_list("cash", flat=True)) == cash_before
    assert first.batch.sha256 == hashlib.sha256(sample(name)).hexdigest()


def test_an_import_writes_one_audit_event_with_the_file_hash(book):
    before = AuditEvent.objects.count()
    batch = run(book, "schwab", "schwab_lots.csv").batch
    assert AuditEvent.objects.count() == before + 1
    event = AuditEvent.objects.get(event_type="import.completed")
    assert (event.actor, event.firm, event.object_id) == (book.owner, book.firm, str(batch.pk))
    assert batch.sha256 in event.payload and '"created":3' in event.payload
    assert batch.history.get().history_user == book.owner


def test_overlapping_transaction_files_record_each_transaction_once(book):
    run(book, "schwab", "schwab_transactions.csv")
    text = sample("schwab_transactions.csv").decode().replace("04:00:00 PM", "05:00:00 PM")
    batch = run(book, "schwab", "later.csv", data=text.encode()).batch
    assert (batch.rows_read, batch.rows_created, batch.rows_unchanged) == (8, 0, 8)
    assert Transaction.objects.filter(external_id__startswith="SCH-").count() == 8
    assert cash(book.taxable) == D("1388.45")


def test_a_transaction_id_on_record_with_other_values_is_refused(book):
    run(book, "schwab", "schwab_transactions.csv")
    text = sample("schwab_transactions.csv").decode()
    text = text.replace('"$18.40","SCH-1003"', '"$18.50","SCH-1003"').replace("$889.68", "$889.78")
    assert refused(book, "schwab", "changed.csv", data=text.encode()) == [
        (
            "changed.csv",
            5,
            "Transaction ID",
            "transaction 'SCH-1003' of account 12345678 is on record with other values"
            " (dividend on 2025-03-27, amount 18.40)",
        )
    ]


def test_lots_file_updates_changed_lots_and_counts_unchanged_ones(book):
    run(book, "generic", "generic_lots.csv")
    text = sample("generic_lots.csv").decode().replace("G-3,100,7000.00", "G-3,90,6300.00")
    batch = run(book, "generic", "lots-later.csv", data=text.encode()).batch
    assert (batch.rows_created, batch.rows_updated, batch.rows_unchanged) == (0, 1, 2)
    g3 = lot(book.ira, "G-3")
    assert (g3.quantity, g3.cost_basis) == (D("90"), D("6300.00"))
    assert [h.quantity for h in g3.history.order_by("history_date")] == [D("100"), D("90")]
    assert batch.summary["lots_updated"] == ["87654321 G-3"]


# --------------------------------------------------------------------------- bad rows


def test_every_bad_transaction_row_is_refused_at_once(book):
    problems = refused(book, "generic", "generic_transactions_bad.csv")
    by_line = {(line, field): reason for _, line, field, reason in problems}
    assert len(problems) == 18
    assert by_line[(3, "quantity")].startswith("'1O' is not a plain number")
    assert by_line[(4, "trade_date")] == "'2025-13-01' is not a valid date"
    assert by_line[(5, "quantity")] == "must be positive, got -5"
    assert by_line[(6, "quantity")] == "must be positive, got 0"
    assert by_line[(7, "trade_date")].startswith("2099-01-02 is in the future")
    assert by_line[(8, "price")] == "missing price"
    assert (
        by_line[(17, "account")]
        == "unknown account '99999999': no such account of this firm at custodian 'schwab'"
    )
    assert by_line[(18, "symbol")] == "unknown symbol 'ZZZZ': add the security to the book first"
    assert (
        by_line[(19, "lot_id")]
        == "duplicate lot id 'L1': account 12345678 already has a lot with this id"
    )
    assert by_line[(20, "quantity")] == (
        "sell of 500 BND on 2025-03-04 but account '87654321' holds 0: short by 500 shares"
        " (rows with other problems were left out)"
    )
    assert {source for source, *_ in problems} == {"generic_transactions_bad.csv"}


def test_an_oversell_alone_names_its_line(book, today):
    day = (today - dt.timedelta(days=10)).isoformat()
    text = (
        f"trade_date,account,action,symbol,quantity,price\n{day},12345678,SELL,VTI,100.5,260.00\n"
    )
    assert refused(book, "generic", "oversell.csv", data=text.encode()) == [
        (
            "oversell.csv",
            2,
            "quantity",
            f"sell of 100.5 VTI on {day} but account '12345678' holds 100: short by 0.5 shares",
        )
    ]


def test_bad_lots_are_refused(book):
    problems = refused(book, "generic", "generic_lots_bad.csv")
    assert [(line, field) for _, line, field, _ in problems] == [
        (3, "lot_id"),
        (4, "quantity"),
        (5, "cost_basis"),
        (6, "acquired"),
        (7, "holding_period_start"),
        (8, "wash_sale_adjustment"),
        (9, "lot_id"),
        (10, "account"),
        (11, "symbol"),
        (12, "lot_id"),
    ]
    assert problems[-1][3] == "lot 'L2' of account 87654321 holds BND in the book, not VTI"


def test_bad_positions_are_refused(book):
    problems = refused(book, "generic", "generic_positions_bad.csv")
    assert [(line, field) for _, line, field, _ in problems] == [
        (3, "price"),
        (4, "quantity"),
        (5, "symbol"),
        (6, "as_of"),
        (7, "quantity"),
        (8, "account"),
        (9, "symbol"),
    ]


def test_bad_schwab_and_fidelity_files_are_refused(book):
    add_fidelity(book)
    assert [p[1:3] for p in refused(book, "schwab", "schwab_transactions_bad.csv")] == [
        (3, "Action"),
        (4, "Action"),
        (5, "Date"),
        (6, "Price"),
        (7, "Quantity"),
    ]
    problems = refused(book, "fidelity", "fidelity_transactions_bad.csv")
    assert [p[1:3] for p in problems] == [
        (4, "Quantity"),
        (5, "Quantity"),
        (6, "Account Number"),
        (7, "Run Date"),
        (8, "Action"),
        (9, "Account Number"),
        (11, "row"),
    ]
    assert problems[5][3] == "no account of this firm matches the masked number 'Y77-***234'"


def test_an_ambiguous_masked_number_names_the_row(book):
    side = add_fidelity(book)
    svc.account_create(
        household=book.household,
        owner=book.client,
        custodian=side.custodian,
        number="Y77-001234",
        name="Pat Trust",
        registration="trust",
        tax_treatment="taxable",
        actor=book.owner,
    )
    problems = refused(book, "fidelity", "fidelity_positions.csv")
    assert problems[:2] == [
        (
            "fidelity_positions.csv",
            4,
            "Account Number",
            "the masked number 'XXXX-1234' matches 2 accounts of this firm"
            " (fidelity Y77-001234, fidelity Z12-341234): ambiguous",
        ),
        (
            "fidelity_positions.csv",
            5,
            "Account Number",
            "the masked number 'XXXX-1234' matches 2 accounts of this firm"
            " (fidelity Y77-001234, fidelity Z12-341234): ambiguous",
        ),
    ]


def test_another_firms_account_is_unknown(book):
    other_custodian_account = svc.account_create(
        household=book.other_household,
        owner=svc.client_create(
            household=book.other_household, first_name="Jo", last_name="Jones", actor=None
        ),
        custodian=book.custodian,
        number="55554444",
        name="Jones Individual",
        registration="individual",
        tax_treatment="taxable",
        actor=None,
    )
    text = (
        "account,symbol,lot_id,quantity,cost_basis,acquired\n55554444,VTI,X1,1,10.00,2024-01-02\n"
    )
    assert refused(book, "generic", "theirs.csv", data=text.encode()) == [
        ("theirs.csv", 2, "account", "unknown account '55554444': no such account of this firm")
    ]
    assert not TaxLot.objects.filter(account=other_custodian_account).exists()


def test_a_withdrawal_beyond_the_cash_is_refused(book):
    text = "trade_date,account,action,amount\n2025-03-03,87654321,WITHDRAWAL,-0.01\n"
    assert refused(book, "generic", "overdraw.csv", data=text.encode()) == [
        (
            "overdraw.csv",
            2,
            "amount",
            "account 87654321 would end with -$0.01 in cash ($0.00 before this file, -$0.01"
            " moved by it): margin is not supported",
        )
    ]


def test_file_level_problems(book):
    assert refused(book, "generic", "latin1.csv", data="as_of\xe9,x".encode("latin-1")) == [
        ("latin1.csv", None, "file", "not UTF-8 text (invalid continuation byte at byte 5)")
    ]
    assert refused(book, "quicken", "x.csv", data=b"a") == [
        ("x.csv", None, "format", "unknown format 'quicken' (expected fidelity, generic, schwab)")
    ]
    assert refused(book, "generic", "x.csv", data=b"a", kind="trades")[0][2] == "kind"
    assert refused(book, "fidelity", "fidelity_lots.csv") == [
        (
            "fidelity_lots.csv",
            None,
            "format",
            "the book has no custodian 'fidelity' for this format",
        )
    ]


def test_a_closed_lot_is_not_reopened(book, today):
    day = (today - dt.timedelta(days=5)).isoformat()
    run(
        book,
        "generic",
        "close.csv",
        data=f"trade_date,account,action,symbol,quantity,price\n{day},12345678,SELL,VTI,100,260.00\n".encode(),
    )
    closed = lot(book.taxable, "L1")
    assert (closed.quantity, closed.cost_basis, closed.closed_on) == (
        D("0"),
        D("0.00"),
        today - dt.timedelta(days=5),
    )
    sell = Transaction.objects.get(account=book.taxable, kind="sell")
    assert sell.realized_gain == D("6000.00")  # 26,000 - 20,000, long term
    text = "account,symbol,lot_id,quantity,cost_basis,acquired\n12345678,VTI,L1,100,20000.00,2024-01-02\n"
    assert refused(book, "generic", "reopen.csv", data=text.encode()) == [
        (
            "reopen.csv",
            2,
            "lot_id",
            f"lot 'L1' of account 12345678 was closed on {today - dt.timedelta(days=5)};"
            " an import does not reopen a closed lot",
        )
    ]


def test_an_existing_lot_is_a_wash_sale_replacement(book, today):
    """A lot already in the book, bought 5 days before a loss sale in the file, replaces it."""
    svc.lot_create(
        account=book.ira,
        security=book.vti,
        lot_ref="IRA-VTI",
        quantity=D("10"),
        cost_basis=D("2600.00"),
        acquired=today - dt.timedelta(days=20),
        actor=book.owner,
    )
    buy, sell = today - dt.timedelta(days=60), today - dt.timedelta(days=15)
    text = (
        "trade_date,account,action,symbol,quantity,price,lot_id,amount\n"
        f"{buy},12345678,DEPOSIT,,,,,5000.00\n"
        f"{buy},12345678,BUY,VTI,10,250.00,T-1,\n"
        f"{sell},12345678,SELL,VTI,10,200.00,T-1,\n"
    )
    batch = run(book, "generic", "harvest.csv", data=text.encode()).batch
    (realized,) = batch.summary["realized"]
    assert (
        realized["gain"],
        realized["wash_sale_disallowed"],
        realized["wash_sale_permanent"],
        realized["allowed_gain"],
    ) == ("-500.00", "500.00", "500.00", "0.00")
    assert realized["replaced_by"] == ["IRA-VTI"]
    ira_lot = lot(book.ira, "IRA-VTI")
    assert (ira_lot.cost_basis, ira_lot.wash_sale_adjustment) == (D("2600.00"), D("0.00"))
    assert not TaxLot.objects.filter(lot_ref="T-1").exists()


# --------------------------------------------------------------------------- reconciliation


def test_a_later_positions_file_supersedes_earlier_breaks(book):
    first = run(book, "schwab", "schwab_positions_breaks.csv").batch
    later = run(book, "schwab", "schwab_positions.csv").batch
    assert (later.rows_created, later.rows_updated, later.rows_unchanged) == (0, 4, 4)
    old = ReconciliationBreak.objects.filter(batch=first)
    assert {b.status for b in old} == {BreakStatus.RESOLVED}
    assert {b.resolution_note for b in old} == {
        f"Superseded by import #{later.pk} (positions as of 2025-06-13)."
    }
    first.refresh_from_db()
    assert first.status == ImportStatus.REVIEWED
    assert later.summary["superseded_breaks"] == sorted(b.pk for b in old)


def test_resolving_breaks_reviews_the_batch(book):
    batch = run(book, "schwab", "schwab_positions_breaks.csv").batch
    breaks = list(ReconciliationBreak.objects.filter(batch=batch).order_by("pk"))
    with pytest.raises(ValidationError) as info:
        reconciliation_break_resolve(brk=breaks[0], actor=book.owner, note="  ")
    assert info.value.message_dict == {"resolution_note": ["Say how the break was resolved."]}
    for brk in breaks[:-1]:
        reconciliation_break_resolve(brk=brk, actor=book.owner, note="Settled after the file.")
    batch.refresh_from_db()
    assert batch.status == ImportStatus.NEEDS_REVIEW
    last = reconciliation_break_resolve(brk=breaks[-1], actor=book.owner, note=" Custodian error. ")
    assert (last.status, last.resolved_by, last.resolution_note) == (
        BreakStatus.RESOLVED,
        book.owner,
        "Custodian error.",
    )
    assert last.history.latest().history_user == book.owner
    batch.refresh_from_db()
    assert batch.status == ImportStatus.REVIEWED
    assert AuditEvent.objects.filter(event_type="reconciliation_break.resolved").count() == 4
    with pytest.raises(ValidationError):
        reconciliation_break_resolve(brk=last, actor=book.owner, note="again")


def test_import_batch_counts_are_per_firm(book):
    run(book, "schwab", "schwab_lots.csv")
    assert ImportBatch.objects.filter(firm=book.firm).count() == 1
    assert not ImportBatch.objects.exclude(firm=book.firm).exists()


def test_positions_without_an_as_of_date_are_refused(book):
    add_fidelity(book)
    text = sample("fidelity_positions.csv").decode()
    text = text.replace('"Date downloaded 06/13/2025 4:05 PM ET"\n', "")
    assert refused(book, "fidelity", "undated.csv", data=text.encode()) == [
        ("undated.csv", 3, "as of", "the file gives no as-of date for its positions")
    ]


def test_cash_short_because_of_a_bad_row_says_so(book):
    text = (
        "trade_date,account,action,amount\n"
        "2025-03-03,87654321,DEPOSIT,1O0.00\n"
        "2025-03-04,87654321,WITHDRAWAL,-50.00\n"
    )
    assert refused(book, "generic", "short.csv", data=text.encode()) == [
        ("short.csv", 2, "amount", "'1O0.00' is not a plain number (digits, '.', a leading '-')"),
        (
            "short.csv",
            3,
            "amount",
            "account 87654321 would end with -$50.00 in cash ($0.00 before this file, -$50.00"
            " moved by it): margin is not supported (rows with other problems were left out)",
        ),
    ]
