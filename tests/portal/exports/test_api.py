"""The export endpoints of the REST API, with the same permissions as the pages."""

from __future__ import annotations

import pytest
from django.test import Client as HttpClient
from rest_framework.authtoken.models import Token

from accounts.models import TaxLot
from portal.exports.services import export_proposal
from portal.models import ProposalExport
from tests.portal.exports.conftest import change


def api(user) -> HttpClient:
    token, _ = Token.objects.get_or_create(user=user)
    return HttpClient(HTTP_AUTHORIZATION=f"Token {token.key}")


def test_export_through_the_api_then_again(priced_book, approved):
    client = api(priced_book.owner)
    url = f"/api/proposals/{approved.pk}/export/"
    created = client.post(url, {"version": approved.version}, content_type="application/json")
    assert created.status_code == 201
    body = created.json()
    assert body["order_count"] == 2 and body["block_count"] == 2
    assert next(f["kind"] for f in body["files"]) == "rationale_pdf"
    again = client.post(url, {}, content_type="application/json")
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    download = client.get(body["files"][1]["download"])
    assert download.status_code == 200
    assert download.content == bytes(ProposalExport.objects.get().files.get(position=2).content)


def test_a_refused_api_export_lists_every_problem(priced_book, approved):
    change(TaxLot, priced_book.lot_vti.pk, quantity=1)
    response = api(priced_book.owner).post(
        f"/api/proposals/{approved.pk}/export/", {}, content_type="application/json"
    )
    assert response.status_code == 400
    assert any("L1" in p for p in response.json()["details"])
    assert not ProposalExport.objects.exists()


def test_stale_version_and_roles(priced_book, approved):
    url = f"/api/proposals/{approved.pk}/export/"
    stale = api(priced_book.owner).post(url, {"version": 1}, content_type="application/json")
    assert stale.status_code == 409
    assert (
        api(priced_book.compliance).post(url, {}, content_type="application/json").status_code
        == 403
    )
    assert (
        api(priced_book.outsider).post(url, {}, content_type="application/json").status_code == 404
    )
    assert not ProposalExport.objects.exists()


@pytest.mark.parametrize(
    "who, kinds, memoranda",
    [
        ("owner", 8, 2),
        ("compliance", 8, 2),
        ("client_user", 1, 0),
        ("outsider", 0, 0),
    ],
)
def test_who_lists_which_files_and_memoranda(priced_book, approved, who, kinds, memoranda):
    export_proposal(proposal=approved, actor=priced_book.owner)
    client = api(getattr(priced_book, who))
    files = client.get("/api/export-files/").json()["results"]
    assert len(files) == kinds
    if who == "client_user":
        assert files[0]["kind"] == "rationale_pdf"
    assert len(client.get("/api/order-memoranda/").json()["results"]) == memoranda
    filtered = client.get(f"/api/export-files/?proposal={approved.pk}&kind=manifest").json()
    assert len(filtered["results"]) == (1 if kinds == 8 else 0)
