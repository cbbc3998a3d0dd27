"""``manage.py taxlots``: JSON and table output, byte-identical reruns, clean errors, no database."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

DATA = Path(__file__).resolve().parent.parent / "data" / "taxlots"


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("taxlots", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_json_for_publication_550_example_1() -> None:
    out, err = run(str(DATA / "pub550_example1.csv"), "--json")
    assert err == ""
    payload = json.loads(out)
    assert payload["method"] == "fifo"
    (lot,) = payload["open_lots"]
    assert {key: lot[key] for key in ("account", "symbol", "quantity", "cost_basis")} == {
        "account": "BROKERAGE",
        "symbol": "XYZ",
        "quantity": "100",
        "cost_basis": "1050.00",
    }
    assert (lot["acquired"], lot["holding_period_start"]) == ("2024-06-20", "2024-01-19")
    assert (lot["lot_id"], lot["wash_sale_adjustment"]) == ("BROKERAGE-4", "250.00")
    (row,) = payload["realized"]
    assert {
        key: row[key]
        for key in (
            "account",
            "symbol",
            "quantity",
            "proceeds",
            "cost_basis",
            "gain",
            "term",
            "wash_sale_disallowed",
            "sale_date",
            "lot_id",
            "acquired",
        )
    } == {
        "account": "BROKERAGE",
        "symbol": "XYZ",
        "quantity": "100",
        "proceeds": "750.00",
        "cost_basis": "1000.00",
        "gain": "-250.00",
        "term": "short",
        "wash_sale_disallowed": "250.00",
        "sale_date": "2024-06-03",
        "lot_id": "BROKERAGE-2",
        "acquired": "2024-01-02",
    }
    assert payload["totals"]["wash_sale_disallowed"] == "250.00"


def test_json_is_byte_identical_and_key_sorted() -> None:
    first, _ = run(str(DATA / "household.csv"), "--json")
    second, _ = run(str(DATA / "household.csv"), "--json")
    assert first == second
    payload = json.loads(first)
    assert first.rstrip("\n") == json.dumps(payload, sort_keys=True, indent=2, ensure_ascii=False)


@pytest.mark.parametrize(
    ("options", "relieved"),
    [
        ([], [("L1", "10"), ("L2", "5")]),
        (["--method", "fifo"], [("L1", "10"), ("L2", "5")]),
        (["--method", "hifo"], [("L2", "10"), ("L4", "5")]),
        (["--method", "minimum_tax"], [("L4", "10"), ("L2", "5")]),
        (["--method", "minimum_tax", "--short-term-rate", "0.20"], [("L2", "10"), ("L4", "5")]),
    ],
)
def test_methods_on_the_same_file(options: list[str], relieved: list[tuple[str, str]]) -> None:
    out, _ = run(str(DATA / "methods.csv"), "--json", *options)
    payload = json.loads(out)
    assert [(row["lot_id"], row["quantity"]) for row in payload["realized"]] == relieved
    assert payload["method"] == (options[1] if options else "fifo")


def test_readable_table() -> None:
    out, err = run(str(DATA / "household.csv"))
    assert err == ""
    assert out.startswith("Open lots (4), method fifo\n")
    assert "SPOUSE-TX   ITOT    SPOUSE-TX-8         10  1400.00  2024-03-10  2023-01-29" in out
    assert "-1500.00  long   900.00 (permanent)" in out
    assert "Realized (5)" in out


def test_bad_rows_go_to_stderr_with_a_command_error() -> None:
    err = StringIO()
    with pytest.raises(CommandError, match=r"16 problems; no lots computed"):
        call_command("taxlots", str(DATA / "bad_rows.csv"), stdout=StringIO(), stderr=err)
    lines = err.getvalue().splitlines()
    assert len(lines) == 16
    assert lines[0].endswith("bad_rows.csv:3: trade_date: '2024-13-02' is not a valid date")


def test_oversell_is_reported_with_line_and_shortfall() -> None:
    err = StringIO()
    with pytest.raises(CommandError, match="3 problems"):
        call_command("taxlots", str(DATA / "oversell.csv"), "--json", stdout=StringIO(), stderr=err)
    text = err.getvalue()
    assert "oversell.csv:3: quantity: sell of 130 XYZ on 2024-02-01" in text
    assert "short by 30 shares" in text
    assert "oversell.csv:6: lot_id: unknown lot 'NOPE'" in text


def test_missing_file() -> None:
    with pytest.raises(CommandError, match="1 problem;"):
        call_command("taxlots", "/nonexistent/t.csv", stdout=StringIO(), stderr=StringIO())


def test_bad_rate() -> None:
    with pytest.raises(CommandError, match="bad tax rate"):
        run(str(DATA / "household.csv"), "--short-term-rate", "1.5")


def test_runs_without_database_access() -> None:
    """No test here has a ``django_db`` mark: pytest-django fails any query, so none is made."""
    out, _ = run(str(DATA / "household.csv"), "--json")
    assert json.loads(out)["totals"]["wash_sale_permanent"] == "600.00"
