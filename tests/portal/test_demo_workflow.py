"""manage.py demo_workflow: the demo book's proposals in every state, one exported."""

from __future__ import annotations

import hashlib

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from portal.exports.tradefiles import recount
from portal.models import ExportFile, Proposal, ProposalExport


@pytest.mark.django_db
def test_the_demo_workflow_needs_the_demo_book():
    with pytest.raises(CommandError, match="no demo book"):
        call_command("demo_workflow")


@pytest.mark.django_db(transaction=True)  # runs are enqueued when their transaction commits
def test_the_demo_workflow_stages_approves_and_exports(capsys):
    call_command("demo", "--as-of", timezone.localdate().isoformat())
    call_command("demo_workflow", "--households", "3", "--timeout", "120")
    statuses = sorted(Proposal.objects.values_list("status", flat=True))
    assert statuses == ["approved", "exported", "pending_review"]
    export = ProposalExport.objects.get()
    assert export.proposal.prepared_by.username == "alice" and export.order_count > 0
    for f in ExportFile.objects.all():
        data = bytes(f.content)
        assert hashlib.sha256(data).hexdigest() == f.sha256
        if f.kind not in ("rationale_pdf", "manifest", "order_memorandum"):
            assert recount_of(f) == (f.order_count, f.total_shares)
    assert "Demo workflow: 3 proposals staged." in capsys.readouterr().out
    call_command("demo_workflow")
    assert "already present; nothing changed" in capsys.readouterr().out
    assert Proposal.objects.count() == 3


def recount_of(f: ExportFile):
    from portal.exports.documents import RenderedFile

    return recount(
        RenderedFile(kind=f.kind, name=f.name, content=bytes(f.content), content_type="text/csv")
    )
