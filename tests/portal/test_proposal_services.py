"""The proposal workflow services: staging, states, four-eyes, stale data, editing, versions."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied

from accounts import services as svc
from accounts.models import Firm, Price, Role, TaxLot
from audit.models import AuditEvent
from optimizer.models import OptimizationRun, RunStatus
from portal import services as wf
from portal.models import (
    ApprovalStep,
    Proposal,
    ProposalApproval,
    ProposalEdit,
    ProposalStatus,
    ProposalTrade,
)
from portal.selectors import stale_changes
from tests.portal.conftest import add_household, make_run

D = Decimal


def events(proposal: Proposal) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_type="portal.Proposal", object_id=str(proposal.pk))
        .order_by("seq")
        .values_list("event_type", flat=True)
    )


def set_firm_policy(book, **policy) -> Firm:
    firm = Firm.objects.get(pk=book.firm.pk)
    for key, value in policy.items():
        setattr(firm, key, value)
    firm.save()
    return firm


# --------------------------------------------------------------------------- staging


def test_stage_copies_the_runs_trades_with_exact_lot_detail(priced_book, proposal):
    p = Proposal.objects.get(pk=proposal.pk)
    assert p.status == ProposalStatus.DRAFT and p.version == 1
    assert p.prepared_by == priced_book.owner and p.scenario == "aggressive"
    assert p.snapshot_sha256 == p.run.snapshot_sha256
    trades = list(p.trades.order_by("position"))
    assert [(t.side, t.security.symbol, t.account, t.shares) for t in trades] == [
        ("sell", "VTI", priced_book.taxable, D("2")),
        ("sell", "BND", priced_book.ira, D("5")),
    ]
    vti = trades[0]
    assert vti.estimated_value == D("500.00") and vti.cost == D("0.10")
    assert vti.ticket_fee == D("4.95") and vti.realized_gain == D("100.00")
    assert vti.realized_long_term == D("100.00") and vti.realized_short_term == D("0.00")
    assert vti.lots == [
        {
            "lot_id": "L1",
            "taxlot": priced_book.lot_vti.pk,
            "lot_ref": "L1",
            "acquired": priced_book.lot_vti.acquired.isoformat(),
            "shares": "2",
            "proceeds": "500.00",
            "cost_basis": "400.00",
            "realized_gain": "100.00",
            "term": "long",
            "holding_days": 400,
            "taxable": True,
        }
    ]
    assert trades[1].lots[0]["taxable"] is False and trades[1].realized_gain == D("-37.50")
    assert p.realized_net == D("100.00") and p.estimated_tax == D("20.00")
    assert p.tickets == 2 and p.trading_cost == D("10.07") and p.turnover == D("0.010648")
    assert p.requires_four_eyes is False and p.four_eyes_reasons == []
    assert p.history.earliest().history_user == priced_book.owner
    assert events(p) == ["proposal.staged"]
    payload = json.loads(AuditEvent.objects.get(event_type="proposal.staged").payload)
    assert payload["data"]["trades"][0] == {
        "account": "schwab-12345678",
        "symbol": "VTI",
        "side": "sell",
        "shares": "2",
    }


def test_staging_the_same_run_twice_gives_one_proposal(priced_book, aggressive_run, proposal):
    again = wf.proposal_stage(run=aggressive_run, actor=priced_book.owner)
    assert again.pk == proposal.pk
    assert Proposal.objects.filter(run=aggressive_run).count() == 1
    assert ProposalTrade.objects.filter(proposal=proposal).count() == 2


@pytest.mark.parametrize("role", ["colleague", "compliance", "client_user", "outsider"])
def test_only_an_assigned_adviser_stages(priced_book, aggressive_run, role):
    with pytest.raises(PermissionDenied):
        wf.proposal_stage(run=aggressive_run, actor=getattr(priced_book, role))
    assert not Proposal.objects.exists()


def test_a_run_that_did_not_succeed_is_not_staged(priced_book, django_capture_on_commit_callbacks):
    from optimizer.services import run_request

    overrides = {"restrictions": [{"symbol": "VTI", "max_weight": "0.10", "no_sell": True}]}
    with django_capture_on_commit_callbacks(execute=True):
        run = run_request(
            household=priced_book.household,
            scenario="moderate",
            actor=priced_book.owner,
            overrides=overrides,
        )
    run.refresh_from_db()
    assert run.status == RunStatus.INFEASIBLE
    with pytest.raises(wf.InvalidTransition, match="only a succeeded run can be staged"):
        wf.proposal_stage(run=run, actor=priced_book.owner)
    assert not Proposal.objects.exists()


def test_a_newer_proposal_of_the_same_scenario_supersedes_the_open_one(
    priced_book, proposal, django_capture_on_commit_callbacks
):
    run2 = make_run(priced_book, "aggressive", django_capture_on_commit_callbacks)
    newer = wf.proposal_stage(run=run2, actor=priced_book.owner)
    old = Proposal.objects.get(pk=proposal.pk)
    assert old.status == ProposalStatus.SUPERSEDED and old.superseded_by == newer
    assert old.version == 2
    assert events(old) == ["proposal.staged", "proposal.superseded"]
    assert newer.status == ProposalStatus.DRAFT


# --------------------------------------------------------------------------- transitions


def test_submit_then_approve(priced_book, proposal):
    p = wf.proposal_submit(proposal=proposal, actor=priced_book.owner, expected_version=1)
    assert p.status == ProposalStatus.PENDING_REVIEW and p.version == 2 and p.submitted_at
    with pytest.raises(wf.InvalidTransition, match="only a draft is submitted"):
        wf.proposal_submit(proposal=p, actor=priced_book.owner)
    p = wf.proposal_approve(
        proposal=p, actor=priced_book.owner, comment="Looks right", expected_version=2
    )
    assert p.status == ProposalStatus.APPROVED and p.version == 3
    assert p.decided_by == priced_book.owner and p.decided_at is not None
    approval = ProposalApproval.objects.get(proposal=p)
    assert (approval.step, approval.approver, approval.proposal_version, approval.comment) == (
        ApprovalStep.FIRST,
        priced_book.owner,
        2,
        "Looks right",
    )
    assert events(p) == ["proposal.staged", "proposal.submitted", "proposal.approved"]
    statuses = list(p.history.order_by("history_date").values_list("status", flat=True))
    assert statuses == ["draft", "pending_review", "approved"]


def test_approving_one_proposal_supersedes_the_other_open_ones_of_the_household(
    priced_book, proposal, moderate_run
):
    other = wf.proposal_stage(run=moderate_run, actor=priced_book.owner)
    wf.proposal_approve(proposal=proposal, actor=priced_book.owner)
    other.refresh_from_db()
    assert other.status == ProposalStatus.SUPERSEDED and other.superseded_by_id == proposal.pk


@pytest.mark.parametrize("role", ["colleague", "compliance", "client_user", "outsider"])
def test_only_the_households_adviser_gives_the_first_approval(priced_book, proposal, role):
    with pytest.raises(PermissionDenied):
        wf.proposal_approve(proposal=proposal, actor=getattr(priced_book, role))
    assert Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.DRAFT
    assert not ProposalApproval.objects.exists()


def test_a_stale_version_is_refused_and_nothing_changes(priced_book, proposal):
    wf.proposal_submit(proposal=proposal, actor=priced_book.owner)
    with pytest.raises(wf.VersionConflict, match="version 2, you saw version 1"):
        wf.proposal_approve(proposal=proposal, actor=priced_book.owner, expected_version=1)
    p = Proposal.objects.get(pk=proposal.pk)
    assert p.status == ProposalStatus.PENDING_REVIEW and not p.approvals.exists()


def test_a_double_click_never_records_two_approvals(priced_book, proposal):
    wf.proposal_approve(proposal=proposal, actor=priced_book.owner, expected_version=1)
    with pytest.raises(wf.InvalidTransition, match="is approved"):
        wf.proposal_approve(proposal=proposal, actor=priced_book.owner, expected_version=1)
    with pytest.raises(wf.InvalidTransition, match="is approved"):
        wf.proposal_approve(proposal=proposal, actor=priced_book.owner)
    assert ProposalApproval.objects.filter(proposal=proposal).count() == 1
    assert events(proposal).count("proposal.approved") == 1


def test_reject_needs_a_reason(priced_book, proposal):
    with pytest.raises(wf.InvalidTransition, match="Say why"):
        wf.proposal_reject(proposal=proposal, actor=priced_book.owner, comment="  ")
    p = wf.proposal_reject(proposal=proposal, actor=priced_book.owner, comment="Client said wait")
    assert p.status == ProposalStatus.REJECTED and p.decision_comment == "Client said wait"
    with pytest.raises(wf.InvalidTransition, match="can no longer be approved"):
        wf.proposal_approve(proposal=p, actor=priced_book.owner)


def test_withdraw_and_export_rules(priced_book, proposal, moderate_run):
    with pytest.raises(wf.InvalidTransition, match="only an approved proposal"):
        wf.proposal_mark_exported(proposal=proposal, actor=priced_book.owner)
    p = wf.proposal_approve(proposal=proposal, actor=priced_book.owner)
    p = wf.proposal_mark_exported(proposal=p, actor=priced_book.owner, files=["a.csv"])
    assert p.status == ProposalStatus.EXPORTED and p.exported_at is not None
    other = wf.proposal_stage(run=moderate_run, actor=priced_book.owner)
    with pytest.raises(PermissionDenied):
        wf.proposal_withdraw(proposal=other, actor=priced_book.colleague)
    other = wf.proposal_withdraw(proposal=other, actor=priced_book.owner, comment="not now")
    assert other.status == ProposalStatus.WITHDRAWN
    assert events(other)[-1] == "proposal.withdrawn"


def test_supersede_by_hand(priced_book, proposal, moderate_run):
    other = wf.proposal_stage(run=moderate_run, actor=priced_book.owner)
    with pytest.raises(wf.InvalidTransition):
        wf.proposal_supersede(proposal=other, actor=priced_book.owner, by=other)
    done = wf.proposal_supersede(proposal=proposal, actor=priced_book.owner, by=other)
    assert done.status == ProposalStatus.SUPERSEDED and done.superseded_by == other


# --------------------------------------------------------------------------- stale data


def test_current_data_is_not_stale(proposal):
    assert stale_changes(proposal) == []


def test_cash_change_refuses_approval_with_what_changed(priced_book, proposal):
    svc.account_set_cash(
        account=priced_book.taxable, cash=D("2500.00"), actor=priced_book.owner, reason="deposit"
    )
    with pytest.raises(wf.StaleData) as info:
        wf.proposal_approve(proposal=proposal, actor=priced_book.owner)
    assert info.value.details == ["Cash in schwab-12345678 changed from $1,000 to $2,500."]
    assert Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.DRAFT
    assert not ProposalApproval.objects.exists()


def test_price_lot_ips_and_restriction_changes_are_all_reported(priced_book, proposal, today):
    book = priced_book
    Price.objects.create(security=book.vti, date=today, close=D("260.00"), source="test")
    lot = TaxLot.objects.get(pk=book.lot_bnd.pk)
    lot.quantity = D("150")
    lot.save()
    svc.lot_create(
        account=book.taxable,
        security=book.bnd,
        lot_ref="L9",
        quantity=D("10"),
        cost_basis=D("700.00"),
        acquired=today,
        actor=book.owner,
    )
    svc.ips_create_version(
        household=book.household,
        targets=[
            svc.TargetInput(weight=D("0.50"), asset_class=book.equity),
            svc.TargetInput(weight=D("0.45"), asset_class=book.bonds),
            svc.TargetInput(weight=D("0.05"), asset_class=book.cash),
        ],
        effective_date=today,
        actor=book.owner,
    )
    svc.restriction_create(
        household=book.household,
        security=book.vti,
        kind="no_sell",
        reason="client_request",
        actor=book.owner,
    )
    changes = stale_changes(proposal)
    assert changes == [
        "New lot L9 in schwab-12345678: 10 BND acquired " + today.isoformat() + ".",
        "The lot L2 in schwab-87654321 now holds 150 BND (the run used 200).",
        f"The price of VTI changed from $250 to $260 ({today}).",
        "IPS version 2 is now in force (the run used version 1).",
        "A no-sell restriction on VTI was added after the run.",
    ]


def test_rerun_offers_a_fresh_run_once_per_version(priced_book, proposal, today):
    svc.account_set_cash(
        account=priced_book.taxable, cash=D("2500.00"), actor=priced_book.owner, reason="deposit"
    )
    run = wf.proposal_rerun(proposal=proposal, actor=priced_book.owner)
    again = wf.proposal_rerun(proposal=proposal, actor=priced_book.owner)
    assert run.pk == again.pk and run.scenario == "aggressive"
    assert OptimizationRun.objects.filter(household=priced_book.household).count() == 2
    assert events(proposal)[-1] == "proposal.rerun_requested"
    with pytest.raises(PermissionDenied):
        wf.proposal_rerun(proposal=proposal, actor=priced_book.compliance)


# --------------------------------------------------------------------------- four-eyes


def test_four_eyes_gain_threshold_needs_a_compliance_second_approval(priced_book, aggressive_run):
    book = priced_book
    set_firm_policy(book, four_eyes_gain_threshold=D("50.00"))
    p = wf.proposal_stage(run=aggressive_run, actor=book.owner)
    assert p.requires_four_eyes
    assert p.four_eyes_reasons == ["Net realized gains of $100 exceed the firm's $50 threshold."]
    with pytest.raises(PermissionDenied, match="adviser approves first"):
        wf.proposal_approve(proposal=p, actor=book.compliance)
    p = wf.proposal_approve(proposal=p, actor=book.owner, comment="mine")
    assert p.status == ProposalStatus.PENDING_REVIEW
    assert events(p)[-1] == "proposal.first_approval"
    for role in ("owner", "colleague", "client_user"):
        with pytest.raises(PermissionDenied):
            wf.proposal_approve(proposal=p, actor=getattr(book, role))
    p = wf.proposal_approve(proposal=p, actor=book.compliance, comment="checked")
    assert p.status == ProposalStatus.APPROVED and p.decided_by == book.compliance
    steps = list(
        ProposalApproval.objects.filter(proposal=p)
        .order_by("pk")
        .values_list("step", "approver__username", "role")
    )
    assert steps == [("first", "owner", "adviser"), ("second", "compliance", "compliance")]


def test_the_second_approver_is_never_the_preparer(priced_book, aggressive_run):
    book = priced_book
    set_firm_policy(book, four_eyes_gain_threshold=D("50.00"))
    p = wf.proposal_stage(run=aggressive_run, actor=book.owner)
    wf.proposal_approve(proposal=p, actor=book.owner)
    book.owner.role = Role.COMPLIANCE  # the preparer later becomes a compliance officer
    book.owner.save()
    with pytest.raises(PermissionDenied, match="cannot be the preparer"):
        wf.proposal_approve(proposal=p, actor=book.owner)
    assert ProposalApproval.objects.filter(proposal=p).count() == 1


def test_compliance_may_reject_a_proposal_awaiting_it(priced_book, aggressive_run):
    book = priced_book
    set_firm_policy(book, four_eyes_turnover_threshold=D("0.01"))
    p = wf.proposal_stage(run=aggressive_run, actor=book.owner)
    assert p.four_eyes_reasons == ["Turnover of 1.06% exceeds the firm's 1% threshold."]
    with pytest.raises(PermissionDenied):
        wf.proposal_reject(proposal=p, actor=book.compliance, comment="no")
    wf.proposal_approve(proposal=p, actor=book.owner)
    p = wf.proposal_reject(proposal=p, actor=book.compliance, comment="Too much turnover")
    assert p.status == ProposalStatus.REJECTED and p.decided_by == book.compliance


def test_a_trade_in_a_restricted_security_needs_four_eyes(
    priced_book, django_capture_on_commit_callbacks
):
    book = priced_book
    svc.restriction_create(
        household=book.household,
        security=book.vti,
        kind="max_weight",
        max_weight=D("0.95"),
        reason="concentrated",
        actor=book.owner,
    )
    run = make_run(book, "aggressive", django_capture_on_commit_callbacks)
    p = wf.proposal_stage(run=run, actor=book.owner)
    assert p.restricted_symbols == [
        "sell VTI in schwab-12345678 (max weight 0.950000; Concentrated position)"
    ]
    assert p.four_eyes_reasons == [
        "Trades a restricted security: sell VTI in schwab-12345678 (max weight 0.950000; "
        "Concentrated position)."
    ]
    set_firm_policy(book, four_eyes_on_restricted_trade=False)
    run2 = make_run(book, "aggressive", django_capture_on_commit_callbacks)
    assert wf.proposal_stage(run=run2, actor=book.owner).requires_four_eyes is False


def test_a_short_term_gain_needs_four_eyes(priced_book, today, django_capture_on_commit_callbacks):
    book = priced_book
    svc.lot_create(
        account=book.taxable,
        security=book.vti,
        lot_ref="S1",
        quantity=D("4"),
        cost_basis=D("800.00"),
        acquired=today - dt.timedelta(days=200),
        actor=book.owner,
    )
    run = make_run(book, "aggressive", django_capture_on_commit_callbacks)
    p = wf.proposal_stage(run=run, actor=book.owner)
    vti = p.trades.get(security__symbol="VTI")
    assert [lot["lot_id"] for lot in vti.lots] == ["L1"] and not p.requires_four_eyes
    p = wf.proposal_edit(
        proposal=p,
        actor=book.owner,
        changes=[wf.TradeChange(trade_id=vti.pk, lots={"S1": D("2")})],
    )
    assert p.realized_short_term_gain == D("100.00")
    assert p.estimated_tax == D("37.00")
    assert p.four_eyes_reasons == ["Realizes $100 of short-term gains."]
    set_firm_policy(book, four_eyes_on_short_term_gain=False)
    vti.refresh_from_db()
    p = wf.proposal_edit(
        proposal=p,
        actor=book.owner,
        changes=[wf.TradeChange(trade_id=vti.pk, lots={"S1": D("3")})],
    )
    assert p.realized_short_term_gain == D("150.00") and not p.requires_four_eyes


# --------------------------------------------------------------------------- editing


def test_drop_a_trade_recomputes_metrics_and_keeps_the_original(priced_book, proposal):
    vti = proposal.trades.get(security__symbol="VTI")
    p = wf.proposal_edit(
        proposal=proposal,
        actor=priced_book.owner,
        changes=[wf.TradeChange(trade_id=vti.pk, drop=True)],
        expected_version=1,
        note="no gains this year",
    )
    assert p.version == 2 and p.edited and p.tickets == 1
    assert p.realized_net == D("0.00") and p.estimated_tax == D("0.00")
    assert p.trading_cost == D("5.02")
    assert p.metrics["after"]["cash"]["by_account"] == {
        "schwab-12345678": "1000.00",
        "schwab-87654321": "357.48",
    }
    assert p.metrics["before"]["tracking_error"] == proposal.metrics["before"]["tracking_error"]
    assert p.metrics["after"]["tracking_error"] != proposal.metrics["after"]["tracking_error"]
    vti.refresh_from_db()
    assert vti.dropped and vti.shares == 0 and vti.original_shares == D("2") and vti.lots == []
    assert vti.original_lots[0]["shares"] == "2"
    assert list(vti.history.order_by("history_date").values_list("shares", "dropped")) == [
        (D("2"), False),
        (D("0"), True),
    ]
    edit = ProposalEdit.objects.get(proposal=p)
    assert (edit.from_version, edit.to_version, edit.editor) == (1, 2, priced_book.owner)
    assert edit.note == "no gains this year"
    assert edit.changes == [
        {
            "trade": vti.pk,
            "order": "sell VTI in schwab-12345678",
            "from": "2.000000",
            "to": "0",
            "dropped": True,
        }
    ]
    assert edit.metrics_before["after"]["realized"]["net"] == "100.00"
    assert edit.metrics_after["after"]["realized"]["net"] == "0.00"
    assert events(p) == ["proposal.staged", "proposal.edited"]


def test_dropping_the_sale_that_funds_the_cash_floor_is_refused(priced_book, proposal):
    bnd = proposal.trades.get(security__symbol="BND")
    with pytest.raises(wf.EditRefused) as info:
        wf.proposal_edit(
            proposal=proposal,
            actor=priced_book.owner,
            changes=[wf.TradeChange(trade_id=bnd.pk, drop=True)],
        )
    assert info.value.details == [
        "account schwab-87654321: cash after trading 0.00 is below the required 145.00"
    ]
    bnd.refresh_from_db()
    assert not bnd.dropped and bnd.shares == D("5")


def test_change_shares_recomputes_gain_and_tax_and_four_eyes_at_once(priced_book, proposal):
    set_firm_policy(priced_book, four_eyes_gain_threshold=D("150.00"))
    vti = proposal.trades.get(security__symbol="VTI")
    p = wf.proposal_edit(
        proposal=proposal,
        actor=priced_book.owner,
        changes=[wf.TradeChange(trade_id=vti.pk, shares=D("4"))],
    )
    vti.refresh_from_db()
    assert vti.shares == D("4") and vti.estimated_value == D("1000.00") and vti.cost == D("0.20")
    assert vti.realized_gain == D("200.00") and vti.lots[0]["cost_basis"] == "800.00"
    assert p.realized_net == D("200.00") and p.estimated_tax == D("40.00")
    assert p.requires_four_eyes
    assert p.four_eyes_reasons == ["Net realized gains of $200 exceed the firm's $150 threshold."]


def test_an_edit_that_breaks_a_hard_constraint_is_refused_and_changes_nothing(
    priced_book, proposal
):
    vti = proposal.trades.get(security__symbol="VTI")
    with pytest.raises(wf.EditRefused) as info:
        wf.proposal_edit(
            proposal=proposal,
            actor=priced_book.owner,
            changes=[wf.TradeChange(trade_id=vti.pk, shares=D("60"))],
        )
    assert any("asset class us_large" in d and "below its bound" in d for d in info.value.details)
    vti.refresh_from_db()
    assert vti.shares == D("2")
    p = Proposal.objects.get(pk=proposal.pk)
    assert p.version == 1 and not p.edited and p.realized_net == D("100.00")
    assert not ProposalEdit.objects.exists()
    with pytest.raises(wf.EditRefused) as info:
        wf.proposal_edit(
            proposal=proposal,
            actor=priced_book.owner,
            changes=[wf.TradeChange(trade_id=vti.pk, shares=D("101"))],
        )
    assert info.value.details == [
        "sell 101 VTI in schwab-12345678: the position holds only 100.000000 shares"
    ]


def test_an_edit_cannot_drop_every_trade(priced_book, proposal):
    changes = [wf.TradeChange(trade_id=t.pk, drop=True) for t in proposal.trades.all()]
    with pytest.raises(wf.EditRefused, match="withdraw the proposal instead"):
        wf.proposal_edit(proposal=proposal, actor=priced_book.owner, changes=changes)


def test_exact_lot_sales_can_be_named(priced_book, proposal):
    vti = proposal.trades.get(security__symbol="VTI")
    p = wf.proposal_edit(
        proposal=proposal,
        actor=priced_book.owner,
        changes=[wf.TradeChange(trade_id=vti.pk, lots={"L1": D("3")})],
    )
    vti.refresh_from_db()
    assert vti.shares == D("3") and vti.lots[0]["shares"] == "3"
    assert p.realized_net == D("150.00")
    with pytest.raises(wf.EditRefused, match="refused") as info:
        wf.proposal_edit(
            proposal=p,
            actor=priced_book.owner,
            changes=[wf.TradeChange(trade_id=vti.pk, lots={"L2": D("3")})],
        )
    assert info.value.details == [
        "sell VTI in schwab-12345678: lot L2 is not a lot of this position"
    ]


@pytest.mark.parametrize("role", ["colleague", "compliance", "client_user", "outsider"])
def test_only_the_adviser_edits(priced_book, proposal, role):
    vti = proposal.trades.get(security__symbol="VTI")
    with pytest.raises(PermissionDenied):
        wf.proposal_edit(
            proposal=proposal,
            actor=getattr(priced_book, role),
            changes=[wf.TradeChange(trade_id=vti.pk, drop=True)],
        )
    assert Proposal.objects.get(pk=proposal.pk).version == 1


def test_no_edit_after_a_first_approval(priced_book, aggressive_run):
    set_firm_policy(priced_book, four_eyes_gain_threshold=D("50.00"))
    p = wf.proposal_stage(run=aggressive_run, actor=priced_book.owner)
    wf.proposal_approve(proposal=p, actor=priced_book.owner)
    vti = p.trades.get(security__symbol="VTI")
    with pytest.raises(wf.InvalidTransition, match="already has"):
        wf.proposal_edit(
            proposal=p,
            actor=priced_book.owner,
            changes=[wf.TradeChange(trade_id=vti.pk, drop=True)],
        )


def test_an_edit_with_a_stale_version_is_refused(priced_book, proposal):
    vti = proposal.trades.get(security__symbol="VTI")
    wf.proposal_edit(
        proposal=proposal,
        actor=priced_book.owner,
        changes=[wf.TradeChange(trade_id=vti.pk, shares=D("3"))],
        expected_version=1,
    )
    with pytest.raises(wf.VersionConflict):
        wf.proposal_edit(
            proposal=proposal,
            actor=priced_book.owner,
            changes=[wf.TradeChange(trade_id=vti.pk, shares=D("4"))],
            expected_version=1,
        )
    vti.refresh_from_db()
    assert vti.shares == D("3")


# --------------------------------------------------------------------------- bulk


def test_bulk_approve_approves_vanilla_proposals_and_refuses_changed_ones(
    priced_book, proposal, django_capture_on_commit_callbacks
):
    book = priced_book
    lee = add_household(book)
    from optimizer.services import run_request

    with django_capture_on_commit_callbacks(execute=True):
        run = run_request(household=lee, scenario="moderate", actor=book.owner)
    lee_p = wf.proposal_stage(run=OptimizationRun.objects.get(pk=run.pk), actor=book.owner)
    assert lee_p.is_vanilla and Proposal.objects.get(pk=proposal.pk).is_vanilla
    outcome = wf.proposal_bulk_approve(proposals=[(proposal, 1), (lee_p, 7)], actor=book.owner)
    assert [p.pk for p in outcome.approved] == [proposal.pk]
    assert [p.pk for p, _ in outcome.refused] == [lee_p.pk]
    assert outcome.refused[0][1].startswith(f"Proposal {lee_p.pk} changed while you were looking")
    assert Proposal.objects.get(pk=lee_p.pk).status == ProposalStatus.DRAFT
