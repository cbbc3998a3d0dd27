"""The REST API: same object-level permissions as the pages, token and session auth,
pagination, filtering, the workflow actions, and an OpenAPI schema that validates."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import yaml
from django.core.management import call_command
from django.test import Client as HttpClient
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.authtoken.models import Token

from accounts import services as svc
from audit.models import AuditEvent
from optimizer.models import OptimizationRun
from portal import services as wf
from portal.models import Proposal, ProposalApproval, ProposalEdit, ProposalStatus
from tests.factories import PASSWORD
from tests.portal.conftest import login

D = Decimal


def api(user=None) -> HttpClient:
    """A client authenticated by token (no CSRF needed), or anonymous."""
    if user is None:
        return HttpClient()
    token, _ = Token.objects.get_or_create(user=user)
    return HttpClient(HTTP_AUTHORIZATION=f"Token {token.key}")


def get(client, url, **params):
    return client.get(url, params)


def post_json(client, url, data=None):
    return client.post(url, json.dumps(data or {}), content_type="application/json")


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


# --------------------------------------------------------------------------- schema and docs


def test_schema_validates_and_names_every_endpoint(db):
    schema = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)
    paths = set(schema["paths"])
    for path in (
        "/api/households/",
        "/api/accounts/",
        "/api/lots/",
        "/api/ips/",
        "/api/runs/",
        "/api/proposals/",
        "/api/proposals/{id}/approve/",
        "/api/proposals/{id}/edit/",
        "/api/proposals/{id}/stale-check/",
        "/api/approvals/",
        "/api/auth/token/",
    ):
        assert path in paths, path
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_schema_and_docs_pages(db):
    response = HttpClient().get(reverse("api-schema"))
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["info"]["title"] == "Advisory Portal API"
    docs = HttpClient().get(reverse("api-docs"))
    assert docs.status_code == 200
    body = docs.content.decode()
    assert "/api/proposals/{id}/approve/" in body and "ProposalDetail" in body
    assert "cdn" not in body.lower()  # nothing fetched from elsewhere at run time


# --------------------------------------------------------------------------- auth


def test_token_auth_and_lockout(book):
    client = HttpClient()
    url = reverse("api-token")
    ok = client.post(url, {"username": "owner", "password": PASSWORD})
    assert ok.status_code == 200
    token = ok.json()["token"]
    assert Token.objects.get(user=book.owner).key == token
    mine = HttpClient(HTTP_AUTHORIZATION=f"Token {token}").get("/api/households/")
    assert mine.status_code == 200 and mine.json()["count"] == 1
    for _ in range(5):
        assert client.post(url, {"username": "owner", "password": "wrong"}).status_code == 400
    locked = client.post(url, {"username": "owner", "password": PASSWORD})
    assert locked.status_code == 429
    assert "Too many failed login attempts" in locked.json()["detail"]
    assert AuditEvent.objects.filter(event_type="auth.lockout").count() == 1


def test_anonymous_and_bad_tokens_are_refused(book):
    assert HttpClient().get("/api/households/").status_code in (401, 403)
    bad = HttpClient(HTTP_AUTHORIZATION="Token nope").get("/api/households/")
    assert bad.status_code in (401, 403)


def test_session_auth_enforces_csrf_on_writes(priced_book, moderate_run):
    client = login(priced_book.owner)
    assert client.get("/api/proposals/").status_code == 200
    response = post_json(client, "/api/proposals/", {"run": moderate_run.pk})
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert not Proposal.objects.exists()


# --------------------------------------------------------------------------- read endpoints


@pytest.mark.parametrize(
    ("role", "households"),
    [("owner", 1), ("colleague", 1), ("compliance", 1), ("client_user", 1), ("outsider", 1)],
)
def test_households_are_limited_to_the_firm(book, role, households):
    data = api(getattr(book, role)).get("/api/households/").json()
    names = [h["name"] for h in data["results"]]
    assert len(names) == households
    assert names == (["Jones Household"] if role == "outsider" else ["Smith Household"])
    if role != "outsider":
        assert data["results"][0]["can_change"] is (role == "owner")


def test_book_endpoints_for_an_outsider_are_empty_and_404(book):
    client = api(book.outsider)
    for path, pk in (
        ("/api/accounts/", book.taxable.pk),
        ("/api/lots/", book.lot_vti.pk),
        ("/api/ips/", book.ips.pk),
        ("/api/households/", book.household.pk),
    ):
        assert book.household.pk not in [
            r.get("household") for r in client.get(path).json()["results"]
        ]
        assert client.get(f"{path}{pk}/").status_code == 404


def test_lots_accounts_ips_detail_and_filters(book):
    client = api(book.owner)
    lots = client.get("/api/lots/", {"symbol": "VTI"}).json()
    assert lots["count"] == 1
    assert lots["results"][0] == {
        "id": book.lot_vti.pk,
        "account": book.taxable.pk,
        "household": book.household.pk,
        "symbol": "VTI",
        "lot_ref": "L1",
        "quantity": "100.000000",
        "cost_basis": "20000.00",
        "acquired": book.lot_vti.acquired.isoformat(),
        "holding_period_start": book.lot_vti.acquired.isoformat(),
        "wash_sale_adjustment": "0.00",
        "closed_on": None,
    }
    assert ids(client.get("/api/accounts/", {"tax_treatment": "deferred"})) == [book.ira.pk]
    assert client.get("/api/accounts/", {"household": "abc"}).status_code == 400
    ips = client.get(f"/api/ips/{book.ips.pk}/").json()
    assert ips["version"] == 1 and ips["annual_gain_budget"] == "25000.00"
    assert {t["asset_class"]: t["weight"] for t in ips["targets"]} == {
        "us_large": "0.600000",
        "us_bond": "0.350000",
        "cash": "0.050000",
    }
    assert ids(client.get("/api/households/", {"name": "smith"})) == [book.household.pk]
    assert ids(client.get("/api/households/", {"name": "jones"})) == []


def test_pagination(book):
    client = api(book.owner)
    first = client.get("/api/accounts/", {"page_size": 1}).json()
    assert first["count"] == 2 and len(first["results"]) == 1 and first["next"]
    second = client.get("/api/accounts/", {"page_size": 1, "page": 2}).json()
    assert second["previous"] and second["results"][0]["id"] != first["results"][0]["id"]


# --------------------------------------------------------------------------- runs


def test_runs_create_and_read(priced_book, django_capture_on_commit_callbacks):
    client = api(priced_book.owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_json(
            client,
            "/api/runs/",
            {"household": priced_book.household.pk, "scenario": "moderate", "idempotency_key": "k"},
        )
    assert response.status_code == 201
    run = OptimizationRun.objects.get()
    assert response.json()["id"] == run.pk and run.requested_by == priced_book.owner
    again = post_json(
        client,
        "/api/runs/",
        {"household": priced_book.household.pk, "scenario": "moderate", "idempotency_key": "k"},
    )
    assert again.json()["id"] == run.pk and OptimizationRun.objects.count() == 1
    detail = client.get(f"/api/runs/{run.pk}/").json()
    assert detail["status"] == "succeeded" and detail["summary"]["trades"] == 1
    assert ids(client.get("/api/runs/", {"scenario": "moderate"})) == [run.pk]
    assert ids(client.get("/api/runs/", {"scenario": "aggressive"})) == []


@pytest.mark.parametrize(
    ("role", "status"),
    [("colleague", 403), ("compliance", 403), ("client_user", 403), ("outsider", 404)],
)
def test_runs_are_requested_by_the_adviser_only(priced_book, role, status):
    response = post_json(
        api(getattr(priced_book, role)),
        "/api/runs/",
        {"household": priced_book.household.pk, "scenario": "moderate"},
    )
    assert response.status_code == status
    assert not OptimizationRun.objects.exists()


@pytest.mark.parametrize(
    ("role", "visible"),
    [("owner", True), ("compliance", True), ("client_user", False), ("outsider", False)],
)
def test_runs_visibility(priced_book, moderate_run, role, visible):
    client = api(getattr(priced_book, role))
    assert (moderate_run.pk in ids(client.get("/api/runs/"))) is visible
    assert client.get(f"/api/runs/{moderate_run.pk}/").status_code == (200 if visible else 404)


# --------------------------------------------------------------------------- proposals


def test_stage_edit_and_approve_through_the_api(priced_book, aggressive_run):
    client = api(priced_book.owner)
    staged = post_json(client, "/api/proposals/", {"run": aggressive_run.pk})
    assert staged.status_code == 201
    body = staged.json()
    pk = body["id"]
    assert body["status"] == "draft" and body["version"] == 1
    assert body["realized_net"] == "100.00" and body["estimated_tax"] == "20.00"
    assert [(t["side"], t["symbol"], t["shares"]) for t in body["trades"]] == [
        ("sell", "VTI", "2.000000"),
        ("sell", "BND", "5.000000"),
    ]
    assert body["trades"][0]["lots"][0]["lot_ref"] == "L1"
    vti = body["trades"][0]["id"]
    edited = post_json(
        client,
        f"/api/proposals/{pk}/edit/",
        {"version": 1, "changes": [{"trade": vti, "lots": {"L1": "3"}}], "note": "api"},
    )
    assert edited.status_code == 200
    assert edited.json()["realized_net"] == "150.00" and edited.json()["version"] == 2
    assert edited.json()["edits"][0]["note"] == "api"
    refused = post_json(
        client,
        f"/api/proposals/{pk}/edit/",
        {"version": 2, "changes": [{"trade": vti, "shares": "60"}]},
    )
    assert refused.status_code == 400
    assert any("below its bound" in d for d in refused.json()["details"])
    assert ProposalEdit.objects.count() == 1
    assert client.get(f"/api/proposals/{pk}/stale-check/").json() == {"stale": False, "changes": []}
    conflict = post_json(client, f"/api/proposals/{pk}/approve/", {"version": 1})
    assert conflict.status_code == 409 and "changed while" in conflict.json()["detail"]
    approved = post_json(client, f"/api/proposals/{pk}/approve/", {"version": 2, "comment": "ok"})
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert approved.json()["approvals"][0]["approver"] == "owner"
    double = post_json(client, f"/api/proposals/{pk}/approve/", {"version": 2})
    assert double.status_code == 409
    assert ProposalApproval.objects.filter(proposal_id=pk).count() == 1
    approvals = client.get("/api/approvals/", {"proposal": pk}).json()
    assert approvals["count"] == 1 and approvals["results"][0]["proposal_version"] == 2


def test_stale_data_refusal_through_the_api(priced_book, proposal):
    svc.account_set_cash(
        account=priced_book.taxable, cash=D("2500.00"), actor=priced_book.owner, reason="deposit"
    )
    client = api(priced_book.owner)
    assert client.get(f"/api/proposals/{proposal.pk}/stale-check/").json()["stale"] is True
    response = post_json(client, f"/api/proposals/{proposal.pk}/approve/", {})
    assert response.status_code == 409
    assert response.json()["details"] == ["Cash in schwab-12345678 changed from $1,000 to $2,500."]


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [
        ("owner", 200, 200),
        ("colleague", 200, 403),
        ("compliance", 200, 403),
        ("client_user", 404, 404),
        ("outsider", 404, 404),
    ],
)
def test_proposal_permissions(priced_book, proposal, role, read, write):
    client = api(getattr(priced_book, role))
    assert client.get(f"/api/proposals/{proposal.pk}/").status_code == read
    for action, data in (("submit", {}), ("withdraw", {}), ("reject", {"comment": "x"})):
        if role == "owner":
            continue
        response = post_json(client, f"/api/proposals/{proposal.pk}/{action}/", data)
        assert response.status_code == write, action
    if role != "owner":
        vti = proposal.trades.get(security__symbol="VTI")
        response = post_json(
            client,
            f"/api/proposals/{proposal.pk}/edit/",
            {"changes": [{"trade": vti.pk, "drop": True}]},
        )
        assert response.status_code == write
        assert post_json(client, f"/api/proposals/{proposal.pk}/approve/", {}).status_code == write
        assert Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.DRAFT
        assert Proposal.objects.get(pk=proposal.pk).version == 1
    else:
        assert post_json(client, f"/api/proposals/{proposal.pk}/submit/", {}).status_code == 200
        assert (
            post_json(client, f"/api/proposals/{proposal.pk}/withdraw/", {"version": 2}).status_code
            == 200
        )
        assert Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.WITHDRAWN


def test_a_client_sees_approved_proposals_of_their_household(priced_book, proposal):
    client = api(priced_book.client_user)
    assert client.get("/api/proposals/").json()["count"] == 0
    wf.proposal_approve(proposal=proposal, actor=priced_book.owner)
    assert ids(client.get("/api/proposals/")) == [proposal.pk]
    assert client.get("/api/approvals/").json()["count"] == 1
    assert ids(api(priced_book.outsider).get("/api/approvals/")) == []


def test_staging_needs_a_visible_run(priced_book, moderate_run):
    assert (
        post_json(
            api(priced_book.outsider), "/api/proposals/", {"run": moderate_run.pk}
        ).status_code
        == 404
    )
    assert (
        post_json(
            api(priced_book.colleague), "/api/proposals/", {"run": moderate_run.pk}
        ).status_code
        == 403
    )
    assert not Proposal.objects.exists()


def test_four_eyes_through_the_api(priced_book, aggressive_run):
    from accounts.models import Firm

    firm = Firm.objects.get(pk=priced_book.firm.pk)
    firm.four_eyes_gain_threshold = D("50")
    firm.save()
    owner, compliance = api(priced_book.owner), api(priced_book.compliance)
    pk = post_json(owner, "/api/proposals/", {"run": aggressive_run.pk}).json()["id"]
    assert post_json(compliance, f"/api/proposals/{pk}/approve/", {}).status_code == 403
    first = post_json(owner, f"/api/proposals/{pk}/approve/", {})
    assert first.json()["status"] == "pending_review" and first.json()["requires_four_eyes"]
    assert post_json(owner, f"/api/proposals/{pk}/approve/", {}).status_code == 403
    second = post_json(compliance, f"/api/proposals/{pk}/approve/", {"comment": "ok"})
    assert second.status_code == 200 and second.json()["status"] == "approved"
    assert [a["step"] for a in second.json()["approvals"]] == ["first", "second"]
    listed = owner.get("/api/proposals/", {"requires_four_eyes": "true", "status": "approved"})
    assert ids(listed) == [pk]
