"""The export page action, downloads and who may reach which file (firm staff, the client of
the household, a client of another household, an outsider)."""

from __future__ import annotations

import pytest
from django.test import Client as HttpClient
from django.urls import reverse

from accounts.models import TaxLot
from audit.models import AuditEvent
from portal.exports.services import export_proposal
from portal.models import ExportFile, ProposalExport, ProposalStatus
from tests.portal.conftest import add_household, login, post
from tests.portal.exports.conftest import change


def _export_url(proposal) -> str:
    return reverse("proposal_export", args=[proposal.pk])


def _file_url(proposal, name: str) -> str:
    return reverse("export_file", args=[proposal.pk, name])


def test_the_adviser_exports_from_the_proposal_page(priced_book, approved):
    client = login(priced_book.owner)
    page = client.get(reverse("proposal_detail", args=[approved.pk]))
    assert "Export the PDF and trade files" in page.content.decode()
    response = post(client, _export_url(approved), {"version": approved.version})
    assert response.status_code == 302
    export = ProposalExport.objects.get(proposal=approved)
    page = client.get(reverse("proposal_detail", args=[approved.pk])).content.decode()
    assert "Export the PDF and trade files" not in page
    for f in export.files.all():
        assert f.name in page and f.sha256[:16] in page
    assert "Order memorandum (2 orders" in page
    # a second click shows the stored export: still one
    again = post(client, _export_url(approved), {"version": approved.version + 1})
    assert again.status_code in (302, 409)
    assert ProposalExport.objects.count() == 1


def test_a_download_returns_the_stored_bytes_every_time(priced_book, approved):
    export = export_proposal(proposal=approved, actor=priced_book.owner)
    client = login(priced_book.colleague)  # firm staff read every file of the firm
    for f in export.files.all():
        first = client.get(_file_url(approved, f.name))
        second = client.get(_file_url(approved, f.name))
        assert first.status_code == 200
        assert first.content == second.content == bytes(f.content)
        assert first["Content-Type"] == f.content_type
        assert first["X-Content-SHA256"] == f.sha256
        assert f.name in first["Content-Disposition"]
    downloads = AuditEvent.objects.filter(event_type="export.downloaded")
    assert downloads.count() == 2 * export.files.count()
    assert '"file":"' in downloads.first().payload


def test_a_refused_export_names_the_problem_and_writes_nothing(priced_book, approved):
    change(TaxLot, priced_book.lot_bnd.pk, quantity=2)
    client = login(priced_book.owner)
    response = post(client, _export_url(approved), {"version": approved.version})
    assert response.status_code == 400
    body = response.content.decode()
    assert "cannot be exported" in body and "L2" in body and "87654321" in body
    assert not ProposalExport.objects.exists() and not ExportFile.objects.exists()


def test_a_stale_version_is_refused(priced_book, approved):
    client = login(priced_book.owner)
    response = post(client, _export_url(approved), {"version": approved.version - 1})
    assert response.status_code == 409
    assert not ProposalExport.objects.exists()


@pytest.mark.parametrize("who", ["colleague", "compliance"])
def test_staff_who_are_not_the_households_adviser_cannot_export(priced_book, approved, who):
    client = login(getattr(priced_book, who))
    page = client.get(reverse("proposal_detail", args=[approved.pk])).content.decode()
    assert "Export the PDF and trade files" not in page
    response = post(client, _export_url(approved), {"version": approved.version})
    assert response.status_code == 403
    assert not ProposalExport.objects.exists()


def test_exporting_needs_a_csrf_token(priced_book, approved):
    client = login(priced_book.owner)
    response = client.post(_export_url(approved), {"version": approved.version})
    assert response.status_code == 403
    assert not ProposalExport.objects.exists()


def test_the_client_downloads_only_their_pdf(priced_book, approved):
    export = export_proposal(proposal=approved, actor=priced_book.owner)
    pdf = export.files.get(kind="rationale_pdf")
    client = login(priced_book.client_user)
    household = client.get(reverse("household_detail", args=[priced_book.household.pk]))
    assert "Your reports" in household.content.decode() and pdf.name in household.content.decode()
    proposal_page = client.get(reverse("proposal_detail", args=[approved.pk])).content.decode()
    assert pdf.name in proposal_page
    assert "schwab-trades" not in proposal_page and "memorandum" not in proposal_page.lower()
    got = client.get(_file_url(approved, pdf.name))
    assert got.status_code == 200 and got.content == bytes(pdf.content)
    assert got["Content-Type"] == "application/pdf"
    for f in export.files.exclude(kind="rationale_pdf"):
        assert client.get(_file_url(approved, f.name)).status_code == 404
    assert post(client, _export_url(approved), {"version": approved.version}).status_code == 403


def test_a_client_of_another_household_and_an_outsider_get_404(
    priced_book, approved, django_capture_on_commit_callbacks
):
    book = priced_book
    export = export_proposal(proposal=approved, actor=book.owner)
    lee = add_household(book)
    from accounts import services as svc
    from accounts.models import Role
    from tests.factories import PASSWORD

    other_client = svc.user_create(
        username="lee-client",
        password=PASSWORD,
        role=Role.CLIENT,
        firm=book.firm,
        household=lee,
        actor=book.owner,
    )
    for user in (other_client, book.outsider):
        client = login(user)
        for f in export.files.all():
            assert client.get(_file_url(approved, f.name)).status_code == 404
        page = client.get(reverse("proposal_detail", args=[approved.pk]))
        assert page.status_code == 404
        assert post(client, _export_url(approved), {"version": 1}).status_code == 404
    anonymous = HttpClient()
    pdf = export.files.get(kind="rationale_pdf")
    assert anonymous.get(_file_url(approved, pdf.name)).status_code == 302  # to the login
    assert ProposalExport.objects.get().proposal.status == ProposalStatus.EXPORTED
