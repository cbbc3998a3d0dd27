"""Proposals in the audit tools: the run reconstruction, the four-eyes queue, the exam package."""

from __future__ import annotations

import io
import zipfile
from decimal import Decimal

from django.urls import reverse

from accounts.models import Firm
from audit.export import exam_package_build
from portal import services as wf
from tests.portal.conftest import login


def _four_eyes(book) -> None:
    firm = Firm.objects.get(pk=book.firm.pk)
    firm.four_eyes_gain_threshold = Decimal("50.00")
    firm.save()


def test_reconstruction_shows_the_proposal_edits_and_approvals(priced_book, aggressive_run):
    book = priced_book
    _four_eyes(book)
    p = wf.proposal_stage(run=aggressive_run, actor=book.owner)
    wf.proposal_approve(proposal=p, actor=book.owner, comment="first look")
    response = login(book.compliance).get(reverse("run_reconstruction", args=[aggressive_run.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Proposal: edits and approvals" in body
    assert f"Proposal {p.pk}" in body
    assert "first approval (adviser)" in body and "first look" in body
    assert "proposal.first_approval" in body  # the proposal's audit events join the timeline


def test_compliance_sees_proposals_waiting_for_a_second_approval(priced_book, aggressive_run):
    book = priced_book
    _four_eyes(book)
    p = wf.proposal_stage(run=aggressive_run, actor=book.owner)
    wf.proposal_approve(proposal=p, actor=book.owner)
    body = login(book.compliance).get(reverse("compliance_home")).content.decode()
    assert f"Proposal {p.pk} (aggressive)" in body
    assert "exceed the firm" in body
    assert login(book.outsider).get(reverse("compliance_home")).status_code == 404


def test_exam_package_contains_the_proposals(priced_book, aggressive_run, today):
    book = priced_book
    p = wf.proposal_stage(run=aggressive_run, actor=book.owner)
    wf.proposal_approve(proposal=p, actor=book.owner, comment="ok")
    package = exam_package_build(firm=book.firm, date_from=today, date_to=today)
    names = zipfile.ZipFile(io.BytesIO(package.data)).namelist()
    for stem in ("proposals", "proposal_trades", "proposal_approvals"):
        assert any(n.endswith(f"{stem}.csv") for n in names), (stem, names)
    text = (
        zipfile.ZipFile(io.BytesIO(package.data))
        .read(next(n for n in names if n.endswith("proposal_approvals.csv")))
        .decode()
    )
    assert "owner" in text or str(book.owner.pk) in text
