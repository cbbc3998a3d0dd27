"""``manage.py import_custodian``: every sample, idempotent reruns, clean errors, exit codes."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Account, ImportBatch, TaxLot
from tests.imports_support import DATA, add_fidelity, counts

D = Decimal


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_custodian", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


SAMPLES = [
    ("schwab", "schwab_positions.csv", "positions", "read 4, created 0, updated 0, unchanged 4"),
    ("schwab", "schwab_lots.csv", "lots", "read 3, created 3, updated 0, unchanged 0"),
    (
        "schwab",
        "schwab_transactions.csv",
        "transactions",
        "read 8, created 8, updated 0, unchanged 0",
    ),
    (
        "fidelity",
        "fidelity_positions.csv",
        "positions",
        "read 4, created 0, updated 0, unchanged 4",
    ),
    ("fidelity", "fidelity_lots.csv", "lots", "read 2, created 2, updated 0, unchanged 0"),
    (
        "fidelity",
        "fidelity_transactions.csv",
        "transactions",
        "read 7, created 7, updated 0, unchanged 0",
    ),
    ("generic", "generic_positions.csv", "positions", "read 3, created 0, updated 0, unchanged 3"),
    ("generic", "generic_lots.csv", "lots", "read 3, created 3, updated 0, unchanged 0"),
    (
        "generic",
        "generic_transactions.csv",
        "transactions",
        "read 12, created 12, updated 0, unchanged 0",
    ),
]


@pytest.mark.parametrize(("fmt", "name", "kind", "figures"), SAMPLES)
def test_every_sample_imports_through_the_command(book, fmt, name, kind, figures):
    add_fidelity(book)
    path = str(DATA / name)
    out, err = run("--format", fmt, "--firm", "alpha", "--user", "owner", path)
    batch = ImportBatch.objects.get()
    assert err == ""
    assert out.startswith(f"{path}: imported as batch #{batch.pk} ({kind}): {figures}")
    assert (batch.kind, batch.actor, batch.file_name) == (kind, book.owner, name)
    before = counts()
    out, _ = run("--format", fmt, "--firm", "alpha", "--kind", kind, path)
    assert out.startswith(f"{path}: already imported as batch #{batch.pk} on ")
    assert out.rstrip().endswith("; nothing changed")
    assert counts() == before


def test_positions_report_their_breaks(book):
    out, _ = run("--format", "schwab", "--firm", "alpha", str(DATA / "schwab_positions_breaks.csv"))
    assert "read 4, created 4, updated 0, unchanged 1; 4 reconciliation break(s)" in out
    assert ImportBatch.objects.get().actor is None  # no --user: the system


def test_bad_rows_are_printed_and_the_command_fails_with_nothing_written(book):
    path = str(DATA / "generic_transactions_bad.csv")
    before = counts()
    err = StringIO()
    with pytest.raises(CommandError) as info:
        call_command(
            "import_custodian",
            "--format",
            "generic",
            "--firm",
            "alpha",
            path,
            stderr=err,
            stdout=StringIO(),
        )
    assert str(info.value) == f"{path}: 18 problems; nothing was imported"
    lines = err.getvalue().splitlines()
    assert len(lines) == 18
    assert lines[0] == (
        "generic_transactions_bad.csv:3: quantity: '1O' is not a plain number (digits, '.', a"
        " leading '-')"
    )
    assert lines[-1] == (
        "generic_transactions_bad.csv:20: quantity: sell of 500 BND on 2025-03-04 but account"
        " '87654321' holds 0: short by 500 shares (rows with other problems were left out)"
    )
    assert counts() == before


def test_the_first_refused_file_stops_the_run(book):
    good, bad = str(DATA / "generic_lots.csv"), str(DATA / "generic_lots_bad.csv")
    later = str(DATA / "generic_positions.csv")
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as info:
        call_command(
            "import_custodian",
            "--format",
            "generic",
            "--firm",
            "alpha",
            good,
            bad,
            later,
            stdout=out,
            stderr=err,
        )
    assert (
        str(info.value) == f"{bad}: 10 problems; nothing was imported (later files were not tried)"
    )
    assert list(ImportBatch.objects.values_list("file_name", flat=True)) == ["generic_lots.csv"]
    assert TaxLot.objects.filter(lot_ref__startswith="G-").count() == 3


def test_several_files_in_order(book):
    out, _ = run(
        "--format",
        "generic",
        "--firm",
        "alpha",
        str(DATA / "generic_lots.csv"),
        str(DATA / "generic_transactions.csv"),
    )
    assert out.count("imported as batch") == 2
    assert Account.objects.get(pk=book.taxable.pk).cash == D("11552.22")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--firm", "nope"], "no firm with the slug 'nope'"),
        (
            ["--firm", "alpha", "--user", "compliance"],
            "--user: 'compliance' is not an adviser of Alpha Advisers",
        ),
        (
            ["--firm", "alpha", "--user", "outsider"],
            "--user: 'outsider' is not an adviser of Alpha Advisers",
        ),
        (["--firm", "alpha", "--tolerance", "x"], "--tolerance: 'x' is not a number"),
        (["--firm", "alpha", "--tolerance", "-1"], "--tolerance must be a number of shares >= 0"),
    ],
)
def test_bad_options(book, args, message):
    with pytest.raises(CommandError) as info:
        run("--format", "generic", *args, str(DATA / "generic_lots.csv"))
    assert str(info.value) == message
    assert not ImportBatch.objects.exists()


def test_a_missing_file(book, tmp_path):
    with pytest.raises(CommandError) as info:
        run("--format", "generic", "--firm", "alpha", str(tmp_path / "none.csv"))
    assert str(info.value) == f"{tmp_path / 'none.csv'}: No such file or directory"


def test_the_tolerance_option(book):
    run(
        "--format",
        "generic",
        "--firm",
        "alpha",
        "--tolerance",
        "0",
        str(DATA / "generic_positions.csv"),
    )
    batch = ImportBatch.objects.get()
    assert (batch.rows_created, batch.summary["tolerance"]) == (1, "0")
