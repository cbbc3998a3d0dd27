"""The command line and the documented example problems."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from optimizer.__main__ import main
from optimizer.core.checker import CheckPolicy, check
from optimizer.core.engine import solve
from optimizer.core.snapshot import load_snapshot

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "docs" / "examples").glob("*.json"))


def test_there_are_at_least_four_examples() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {
        "single_taxable_rebalance",
        "funds_to_direct_index",
        "harvest_with_replacement",
        "household_asset_location",
    } <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_solves_and_passes_the_checker(path: Path) -> None:
    snap = load_snapshot(path)
    result = solve(snap)
    assert result.status == "optimal"
    assert check(snap, result.trades, CheckPolicy(result.settings["no_short_term_gains"])) == []


def test_cli_prints_repeatable_json(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(EXAMPLES[0])
    assert main(["solve", path]) == 0
    first = capsys.readouterr().out
    assert main(["solve", path]) == 0
    assert capsys.readouterr().out == first
    data = json.loads(first)
    assert data["status"] == "optimal"
    assert list(data) == sorted(data)


def test_cli_all_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["solve", str(EXAMPLES[0]), "--scenario", "all", "--no-explain"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert sorted(data["scenarios"]) == ["aggressive", "conservative", "moderate", "tax_sensitive"]


def test_cli_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"as_of": "2025-06-30", "accounts": []}')
    proc = subprocess.run(
        [sys.executable, "-m", "optimizer", "solve", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: invalid snapshot: accounts")
    assert "Traceback" not in proc.stderr


def test_cli_infeasible_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(EXAMPLES[0].read_text())
    data["accounts"][0]["cash_floor"] = "99999999"
    path = tmp_path / "inf.json"
    path.write_text(json.dumps(data))
    assert main(["solve", str(path)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: infeasible:") and err.count("\n") == 1


def test_optimizer_package_does_not_import_django() -> None:
    code = "import sys, optimizer, optimizer.core.engine, optimizer.__main__; print('django' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
