"""export_proposal: the one write path of exports (atomic, idempotent, audited)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import Account, TaxLot
from audit.canonical import sha256_hex
from audit.models import AuditEvent
from portal import services as wf
from portal.exports.documents import ExportRefused
from portal.exports.services import export_proposal, render_export
from portal.models import (
    ExportFile,
    OrderMemorandum,
    Proposal,
    ProposalExport,
    ProposalStatus,
)
from tests.portal.exports.conftest import change, pdf_text
from tests.portal.test_proposal_services import set_firm_policy

D = Decimal
KINDS = [
    "rationale_pdf",
    "schwab_trades",
    "schwab_lots",
    "generic_orders",
    "generic_lots",
    "blocks",
    "order_memorandum",
    "manifest",
]


def _text(export: ProposalExport, kind: str) -> str:
    return bytes(export.files.get(kind=kind).content).decode("utf-8")


def test_an_approved_proposal_exports_every_file_with_its_hash(priced_book, approved):
    book = priced_book
    export = export_proposal(proposal=approved, actor=book.owner)
    files = list(export.files.order_by("position"))
    assert [f.kind for f in files] == KINDS
    assert [f.name for f in files] == [
        f"proposal-{approved.pk}-rationale.pdf",
        f"proposal-{approved.pk}-schwab-trades.csv",
        f"proposal-{approved.pk}-schwab-lots.csv",
        f"proposal-{approved.pk}-orders.csv",
        f"proposal-{approved.pk}-lots.csv",
        f"proposal-{approved.pk}-blocks.csv",
        f"proposal-{approved.pk}-order-memorandum.csv",
        f"proposal-{approved.pk}-manifest.json",
    ]
    for f in files:
        assert f.sha256 == sha256_hex(bytes(f.content)) and f.size == len(bytes(f.content))
    # the manifest names every other file with its hash and control totals
    manifest = json.loads(_text(export, "manifest"))
    assert export.manifest_sha256 == files[-1].sha256
    assert manifest["proposal_id"] == approved.pk
    assert manifest["snapshot_sha256"] == approved.snapshot_sha256
    assert manifest["orders"] == 2 and manifest["blocks"] == 2 and manifest["total_shares"] == "7"
    listed = {m["name"]: m for m in manifest["files"]}
    assert set(listed) == {f.name for f in files[:-1]}
    for f in files[:-1]:
        assert listed[f.name]["sha256"] == f.sha256
        assert listed[f.name]["order_count"] == f.order_count
    assert listed[f"proposal-{approved.pk}-schwab-trades.csv"]["total_shares"] == "7"
    # the orders: 2 VTI from lot L1 (taxable) and 5 BND from lot L2 (IRA), specific lots
    trades = _text(export, "schwab_trades").splitlines()
    assert trades[-1] == "TRAILER,2,7"
    assert f"P{approved.pk}-001" in _text(export, "schwab_lots")
    lots = _text(export, "schwab_lots")
    assert ",VTI,L1," in lots and ",BND,L2," in lots
    # the proposal is exported, and the export is audited with every file's hash
    approved.refresh_from_db()
    assert approved.status == ProposalStatus.EXPORTED and approved.exported_at is not None
    event = AuditEvent.objects.get(event_type="export.created")
    data = json.loads(event.payload)["data"]
    assert data["manifest_sha256"] == export.manifest_sha256
    assert [f["sha256"] for f in data["files"]] == [f.sha256 for f in files]
    assert AuditEvent.objects.filter(
        event_type="proposal.exported", object_id=str(approved.pk)
    ).exists()
    assert export.history.count() == 1


def test_the_order_memorandum_records_who_recommended_approved_and_placed(priced_book, approved):
    book = priced_book
    change(Account, book.ira.pk, discretionary=False)
    export = export_proposal(proposal=approved, actor=book.owner)
    memos = list(OrderMemorandum.objects.filter(export=export).order_by("order_id"))
    assert [(m.symbol, m.side, m.quantity, m.account_number) for m in memos] == [
        ("VTI", "sell", D("2"), "12345678"),
        ("BND", "sell", D("5"), "87654321"),
    ]
    for m in memos:
        assert m.recommended_by == book.owner and m.approved_by == book.owner
        assert m.placed_by == book.owner and m.second_approved_by is None
        assert m.entered_at == export.entered_at
        assert m.order_type == "market" and m.time_in_force == "day"
    assert [m.discretionary for m in memos] == [True, False]
    assert memos[0].lots == [
        {
            "lot_ref": "L1",
            "acquired": book.lot_vti.acquired.isoformat(),
            "shares": "2",
            "cost_basis": "400.00",
            "term": "long",
        }
    ]
    csv_text = _text(export, "order_memorandum")
    assert csv_text.splitlines()[0].startswith("order_id,block_id,proposal_id,entered_at")
    assert ",yes," in csv_text and ",no," in csv_text


def test_four_eyes_puts_the_second_approver_on_the_memorandum(priced_book, aggressive_run):
    book = priced_book
    set_firm_policy(book, four_eyes_gain_threshold=D("50.00"))
    p = wf.proposal_stage(run=aggressive_run, actor=book.owner)
    wf.proposal_approve(proposal=p, actor=book.owner)
    p = wf.proposal_approve(proposal=p, actor=book.compliance, comment="checked")
    export = export_proposal(proposal=p, actor=book.owner)
    assert {m.second_approved_by for m in export.memoranda.all()} == {book.compliance}
    assert "compliance (compliance, compliance)" in _text(export, "order_memorandum")


def test_exporting_again_returns_the_same_export_and_no_second_set_of_orders(priced_book, approved):
    book = priced_book
    first = export_proposal(proposal=approved, actor=book.owner)
    hashes = list(first.files.order_by("position").values_list("sha256", flat=True))
    again = export_proposal(proposal=approved, actor=book.owner)
    assert again.pk == first.pk
    assert ProposalExport.objects.count() == 1
    assert OrderMemorandum.objects.count() == 2 and ExportFile.objects.count() == len(KINDS)
    assert list(again.files.order_by("position").values_list("sha256", flat=True)) == hashes
    assert AuditEvent.objects.filter(event_type="export.created").count() == 1


def test_only_an_approved_proposal_exports_and_nothing_is_written(priced_book, aggressive_run):
    book = priced_book
    draft = wf.proposal_stage(run=aggressive_run, actor=book.owner)
    with pytest.raises(wf.InvalidTransition, match="only an approved proposal is exported"):
        export_proposal(proposal=draft, actor=book.owner)
    rejected = wf.proposal_reject(proposal=draft, actor=book.owner, comment="no")
    with pytest.raises(wf.InvalidTransition, match="rejected"):
        export_proposal(proposal=rejected, actor=book.owner)
    assert not ProposalExport.objects.exists() and not ExportFile.objects.exists()


@pytest.mark.parametrize("who", ["colleague", "compliance", "client_user", "outsider"])
def test_only_the_households_adviser_exports(priced_book, approved, who):
    with pytest.raises(PermissionDenied):
        export_proposal(proposal=approved, actor=getattr(priced_book, who))
    assert not ProposalExport.objects.exists()
    assert Proposal.objects.get(pk=approved.pk).status == ProposalStatus.APPROVED


def test_a_sell_beyond_the_lots_shares_stops_the_export_with_nothing_written(priced_book, approved):
    book = priced_book
    # the custodian's import since approval left lot L1 with 1 share; the proposal sells 2
    change(TaxLot, book.lot_vti.pk, quantity=D("1"))
    events_before = AuditEvent.objects.count()
    with pytest.raises(ExportRefused) as refused:
        export_proposal(proposal=approved, actor=book.owner)
    text = str(refused.value)
    assert f"Proposal {approved.pk} cannot be exported" in text
    assert "L1" in text and "12345678" in text and "VTI" in text
    assert not ProposalExport.objects.exists()
    assert not ExportFile.objects.exists() and not OrderMemorandum.objects.exists()
    assert Proposal.objects.get(pk=approved.pk).status == ProposalStatus.APPROVED
    # the client's explanation may be recorded (it is cached per result), nothing else
    assert not AuditEvent.objects.filter(event_type__startswith="export.").exists()
    assert AuditEvent.objects.count() - events_before <= 1


def test_exported_files_are_immutable(priced_book, approved):
    export = export_proposal(proposal=approved, actor=priced_book.owner)
    f = export.files.first()
    f.name = "other.csv"
    with pytest.raises(ValidationError, match="immutable"):
        f.save()
    with pytest.raises(ValidationError, match="retention"):
        f.delete()
    tampered = ExportFile(
        export=export, position=99, kind="manifest", name="x", content=b"x", sha256="0" * 64
    )
    with pytest.raises(ValidationError):
        tampered.save()


def test_the_same_proposal_and_time_give_byte_identical_files(priced_book, approved):
    at = dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.UTC)
    p = Proposal.objects.get(pk=approved.pk)
    kwargs = dict(
        actor=priced_book.owner,
        entered_at=at,
        explanation=("Why.",),
        explanation_source="deterministic",
    )
    _, first = render_export(p, **kwargs)
    _, second = render_export(p, **kwargs)
    assert [f.name for f in first] == [f.name for f in second]
    assert [f.content for f in first] == [f.content for f in second]


def test_an_edited_proposal_exports_its_current_trades(priced_book, moderate_run):
    book = priced_book
    p = wf.proposal_stage(run=moderate_run, actor=book.owner)
    trade = p.trades.get()
    assert trade.shares != D("6")
    p = wf.proposal_edit(
        proposal=p, actor=book.owner, changes=[wf.TradeChange(trade_id=trade.pk, shares=D("6"))]
    )
    p = wf.proposal_approve(proposal=p, actor=book.owner)
    export = export_proposal(proposal=p, actor=book.owner)
    assert export.order_count == 1 and export.total_shares == D("6")
    action = "Sell" if trade.side == "sell" else "Buy"
    relief = "Specific Lot" if trade.side == "sell" else ""
    assert _text(export, "schwab_trades").splitlines()[1:] == [
        f"P{p.pk}-{trade.position:03d},P{p.pk}-B01,{trade.account.number},{action},6,"
        f"{trade.security.symbol},Market,Day,,{relief}",
        "TRAILER,1,6",
    ]
    assert list(export.memoranda.values_list("symbol", "quantity")) == [
        (trade.security.symbol, D("6"))
    ]
    # the client's explanation describes the edited trade list, not the run's
    pdf = bytes(export.files.get(kind="rationale_pdf").content)
    text = pdf_text(pdf)
    value = trade.price * 6
    assert f"${value:,.0f} of {'sales' if trade.side == 'sell' else 'purchases'}" in text


def test_the_pdf_names_the_household_the_trades_and_the_approver(priced_book, approved):
    export = export_proposal(proposal=approved, actor=priced_book.owner)
    text = pdf_text(bytes(export.files.get(kind="rationale_pdf").content), layout=True)
    assert "Smith Household" in text and "Alpha Advisers" in text
    assert "VTI" in text and "BND" in text and "Go ahead." in text
    assert f"Proposal {approved.pk}" in text and approved.snapshot_sha256 in text
    assert "$100.00" in text  # the long-term gain realized on VTI
