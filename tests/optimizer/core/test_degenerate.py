"""Infeasible and degenerate inputs: a clear error or a clean nothing-to-do result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optimizer.core.engine import solve
from optimizer.core.errors import InfeasibleProblem, InvalidSnapshot
from optimizer.core.snapshot import load_snapshot, snapshot_from_dict
from tests.optimizer.core.builders import build, loss_only_portfolio, two_security_ira


def test_empty_account_with_no_value_is_invalid() -> None:
    d = two_security_ira()
    d["lots"] = []
    d["accounts"][0]["cash"] = "0"
    with pytest.raises(InvalidSnapshot, match="no value"):
        solve(build(d))


def test_no_accounts_is_invalid() -> None:
    with pytest.raises(InvalidSnapshot) as exc:
        build(two_security_ira(), accounts=[])
    assert exc.value.field == "accounts"


def test_cash_only_account_invests() -> None:
    d = two_security_ira()
    d["lots"] = []
    d["accounts"][0]["cash"] = "10000"
    result = solve(build(d))
    assert {t.symbol: t.shares for t in result.trades} == {"AAA": 100, "BBB": 200}


def test_all_positions_restricted_is_nothing_to_do() -> None:
    d = two_security_ira()
    d["restrictions"] = [
        {"symbol": "AAA", "no_sell": True, "no_buy": True, "reason": "legal hold"},
        {"symbol": "BBB", "no_sell": True, "no_buy": True, "reason": "legal hold"},
    ]
    result = solve(build(d))
    assert result.status == "nothing_to_do"
    assert result.trades == []
    kinds = [f["kind"] for f in result.flags]
    assert kinds.count("restricted_position") == 2


def test_all_restricted_with_violated_band_is_infeasible_in_words() -> None:
    d = two_security_ira()
    d["targets"] = {
        "asset_classes": {"equity": {"target": "0.5", "band": "0.05"}, "bonds": {"target": "0.5"}}
    }
    d["accounts"][0]["cash"] = "0"
    d["restrictions"] = [{"symbol": "AAA", "no_sell": True, "reason": "legal hold"}]
    with pytest.raises(InfeasibleProblem) as exc:
        solve(build(d))
    text = str(exc.value)
    assert "equity within [45.0%, 55.0%] (now 100.0%)" in text
    assert "no-sell restriction on AAA" in text
    assert {c.constraint for c in exc.value.conflicts} == {"class", "no_sell"}


@pytest.mark.parametrize("price", ["0", "-5", "NaN", "Infinity", "abc", None])
def test_bad_prices_name_the_field(price: object) -> None:
    d = two_security_ira()
    d["securities"][1]["price"] = price
    with pytest.raises(InvalidSnapshot) as exc:
        build(d)
    assert exc.value.field == "securities[1].price"


def test_nan_in_covariance_is_invalid() -> None:
    d = two_security_ira()
    d["risk_model"]["covariance"][0][0] = float("nan")
    with pytest.raises(InvalidSnapshot) as exc:
        build(d)
    assert exc.value.field == "risk_model.covariance[0][0]"


def test_nan_token_in_json_file_is_invalid(tmp_path: Path) -> None:
    text = json.dumps(two_security_ira()).replace('"5000.00"', "NaN")
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(InvalidSnapshot, match="NaN"):
        load_snapshot(path)


def test_singular_covariance_solves() -> None:
    d = two_security_ira()
    d["risk_model"]["covariance"] = [[0.04, 0.02], [0.02, 0.01]]  # rank 1
    result = solve(build(d))
    assert result.status in ("optimal", "nothing_to_do")


def test_indefinite_covariance_is_invalid() -> None:
    d = two_security_ira()
    d["risk_model"]["covariance"] = [[0.01, 0.05], [0.05, 0.01]]
    with pytest.raises(InvalidSnapshot, match="positive semidefinite"):
        build(d)


def test_cash_floor_above_total_value_is_infeasible() -> None:
    d = two_security_ira()
    d["accounts"][0]["cash_floor"] = "20000"
    with pytest.raises(InfeasibleProblem) as exc:
        solve(build(d))
    assert exc.value.conflicts[0].constraint == "cash_floor:IRA1"
    assert "exceeds the account's total value ($10,000.00)" in str(exc.value)


def test_gain_cap_conflicting_with_cash_to_raise() -> None:
    d = two_security_ira()
    d["mode"] = "raise_cash"
    d["accounts"][0].update({"tax_treatment": "taxable", "cash": "0", "cash_to_raise": "2000"})
    d["lots"][0]["cost_basis"] = "500"
    d["budgets"] = {"max_net_realized_gain": "100"}
    with pytest.raises(InfeasibleProblem) as exc:
        solve(build(d))
    assert {c.constraint for c in exc.value.conflicts} == {"gain_net", "cash"}


def test_unknown_fields_and_references_are_named() -> None:
    d = two_security_ira()
    d["lots"][0]["symbol"] = "ZZZ"
    with pytest.raises(InvalidSnapshot) as exc:
        build(d)
    assert exc.value.field == "lots[0].symbol"
    with pytest.raises(InvalidSnapshot) as exc2:
        build(two_security_ira(), colour="blue")
    assert exc2.value.field == "colour"


def test_tax_rates_must_be_ordered() -> None:
    d = loss_only_portfolio()
    d["tax"] = {"short_term_rate": "0.1", "long_term_rate": "0.2"}
    with pytest.raises(InvalidSnapshot) as exc:
        snapshot_from_dict(d)
    assert exc.value.field == "tax.short_term_rate"
