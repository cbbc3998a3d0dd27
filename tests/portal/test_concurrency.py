"""Two people acting on one proposal at once: the row lock and the version check let exactly
one win (real threads, real transactions, on SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from portal import services as wf
from portal.models import Proposal, ProposalApproval, ProposalEdit, ProposalStatus


def _race(*calls):
    barrier = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def worker(i, call):
        try:
            barrier.wait(timeout=10)
            outcomes[i] = call()
        except Exception as exc:  # the loser's refusal is the point of the test
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_approvals_record_exactly_one(proposal, priced_book):
    def approve():
        return wf.proposal_approve(
            proposal=Proposal(pk=proposal.pk), actor=priced_book.owner, expected_version=1
        )

    outcomes = _race(approve, approve)
    wins = [o for o in outcomes if isinstance(o, Proposal)]
    losses = [o for o in outcomes if isinstance(o, wf.WorkflowError)]
    assert len(wins) == 1 and len(losses) == 1, outcomes
    assert ProposalApproval.objects.filter(proposal_id=proposal.pk).count() == 1
    p = Proposal.objects.get(pk=proposal.pk)
    assert p.status == ProposalStatus.APPROVED and p.version == 2


@pytest.mark.django_db(transaction=True)
def test_an_edit_and_an_approval_at_once_cannot_both_win(proposal, priced_book):
    vti = proposal.trades.get(security__symbol="VTI")

    def approve():
        return wf.proposal_approve(
            proposal=Proposal(pk=proposal.pk), actor=priced_book.owner, expected_version=1
        )

    def edit():
        return wf.proposal_edit(
            proposal=Proposal(pk=proposal.pk),
            actor=priced_book.owner,
            changes=[wf.TradeChange(trade_id=vti.pk, shares=Decimal("3"))],
            expected_version=1,
        )

    outcomes = _race(approve, edit)
    assert sum(isinstance(o, Proposal) for o in outcomes) == 1, outcomes
    assert sum(isinstance(o, wf.WorkflowError) for o in outcomes) == 1, outcomes
    p = Proposal.objects.get(pk=proposal.pk)
    approved = ProposalApproval.objects.filter(proposal=p).count()
    edited = ProposalEdit.objects.filter(proposal=p).count()
    assert (approved, edited) in ((1, 0), (0, 1))
    assert p.version == 2
    if approved:
        assert p.status == ProposalStatus.APPROVED and p.trades.get(pk=vti.pk).shares == 2
    else:
        assert p.status == ProposalStatus.DRAFT and p.trades.get(pk=vti.pk).shares == 3
