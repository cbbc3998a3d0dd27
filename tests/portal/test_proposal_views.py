"""The review queue, runs, scenario comparison and proposal pages, for every role: owner,
colleague, compliance, client, outsider, anonymous. Through URLs, with CSRF enforced, asserting
status codes, rendered text and persisted rows."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from django.test import Client as HttpClient
from django.urls import reverse

from accounts import services as svc
from accounts.models import Firm
from optimizer.models import OptimizationRun, RunStatus
from portal import services as wf
from portal.models import Proposal, ProposalApproval, ProposalEdit, ProposalStatus
from tests.portal.conftest import add_household, login, post

D = Decimal
ROLES = ["owner", "colleague", "compliance", "client_user", "outsider"]


def detail(p) -> str:
    return reverse("proposal_detail", args=[p.pk])


# --------------------------------------------------------------------------- review queue


def test_queue_ranks_flagged_households_first_and_lists_vanilla_proposals(
    priced_book, proposal, django_capture_on_commit_callbacks
):
    add_household(priced_book)  # drifted far out of band: flagged
    response = login(priced_book.owner).get(reverse("home"))
    assert response.status_code == 200
    body = response.content.decode()
    table = body[body.index("Households by need") :]
    assert table.index("Lee Household") < table.index("Smith Household")
    assert "US Bonds -35.0 pp, beyond its ±5.0% band" in body
    assert "Vanilla proposals" in body
    assert f'value="{proposal.pk}:1"' in body  # approvable in bulk
    rows = response.context["rows"]
    assert [r.household.name for r in rows] == ["Lee Household", "Smith Household"]
    assert [f.kind for f in rows[0].flags] == ["drift", "drift"]


def test_queue_flags_stale_data_and_failed_runs(
    priced_book, proposal, django_capture_on_commit_callbacks
):
    from optimizer.services import run_request

    svc.account_set_cash(
        account=priced_book.taxable, cash=D("2500.00"), actor=priced_book.owner, reason="deposit"
    )
    with django_capture_on_commit_callbacks(execute=True):
        run_request(
            household=priced_book.household,
            scenario="moderate",
            actor=priced_book.owner,
            overrides={"restrictions": [{"symbol": "VTI", "max_weight": "0.10", "no_sell": True}]},
        )
    body = login(priced_book.owner).get(reverse("home")).content.decode()
    assert f"proposal {proposal.pk}: data changed after its run (1 change)" in body
    assert "latest moderate run infeasible" in body
    assert f'value="{proposal.pk}:1"' not in body  # stale: not vanilla


def test_compliance_sees_what_awaits_its_second_approval(priced_book, aggressive_run):
    Firm.objects.filter(pk=priced_book.firm.pk).first()
    firm = Firm.objects.get(pk=priced_book.firm.pk)
    firm.four_eyes_gain_threshold = D("50")
    firm.save()
    p = wf.proposal_stage(run=aggressive_run, actor=priced_book.owner)
    wf.proposal_approve(proposal=p, actor=priced_book.owner)
    body = login(priced_book.compliance).get(reverse("home")).content.decode()
    assert "Awaiting your second approval" in body
    assert "Net realized gains of $100 exceed the firm&#x27;s $50 threshold." in body
    owner_body = login(priced_book.owner).get(reverse("home")).content.decode()
    assert "Awaiting your second approval" not in owner_body
    assert f"proposal {p.pk} awaits a compliance approval" in owner_body


def test_queue_for_other_roles(priced_book, proposal):
    assert login(priced_book.colleague).get(reverse("home")).status_code == 200
    outsider = login(priced_book.outsider).get(reverse("home"))
    assert outsider.status_code == 200 and "Smith Household" not in outsider.content.decode()
    assert "Jones Household" in outsider.content.decode()
    client = login(priced_book.client_user).get(reverse("home"))
    assert client.status_code == 302
    anon = HttpClient().get(reverse("home"))
    assert anon.status_code == 302 and anon["Location"].startswith(reverse("login"))


def test_bulk_approve_needs_one_confirmation(
    priced_book, proposal, django_capture_on_commit_callbacks
):
    from optimizer.services import run_request

    lee = add_household(priced_book)
    with django_capture_on_commit_callbacks(execute=True):
        run = run_request(household=lee, scenario="moderate", actor=priced_book.owner)
    lee_p = wf.proposal_stage(run=OptimizationRun.objects.get(pk=run.pk), actor=priced_book.owner)
    client = login(priced_book.owner)
    picks = [f"{proposal.pk}:1", f"{lee_p.pk}:1"]
    step1 = post(client, reverse("bulk_approve"), {"pick": picks})
    assert step1.status_code == 200
    assert "Approve 2 proposals?" in step1.content.decode()
    assert not ProposalApproval.objects.exists()
    step2 = post(client, reverse("bulk_approve"), {"pick": picks, "confirm": "on"})
    assert step2.status_code == 302
    assert set(Proposal.objects.values_list("status", flat=True)) == {"approved"}
    assert ProposalApproval.objects.count() == 2
    again = post(client, reverse("bulk_approve"), {"pick": picks, "confirm": "on"})
    assert again.status_code == 302 and ProposalApproval.objects.count() == 2


@pytest.mark.parametrize("role", ["colleague", "compliance", "client_user", "outsider"])
def test_bulk_approve_is_for_the_households_adviser(priced_book, proposal, role):
    response = post(
        login(getattr(priced_book, role)),
        reverse("bulk_approve"),
        {"pick": [f"{proposal.pk}:1"], "confirm": "on"},
    )
    assert response.status_code in (302, 403)
    assert Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.DRAFT


def test_bulk_approve_without_csrf_is_refused(priced_book, proposal):
    response = login(priced_book.owner).post(
        reverse("bulk_approve"), {"pick": [f"{proposal.pk}:1"], "confirm": "on"}
    )
    assert response.status_code == 403
    assert not ProposalApproval.objects.exists()


# --------------------------------------------------------------------------- runs


def test_owner_runs_presets_and_sees_the_comparison(
    priced_book, django_capture_on_commit_callbacks
):
    client = login(priced_book.owner)
    page = client.get(reverse("household_detail", args=[priced_book.household.pk]))
    assert "Run selected scenarios" in page.content.decode()
    token = page.context["run_form"]["token"].value()
    url = reverse("run_scenarios", args=[priced_book.household.pk])
    data = {"scenarios": ["moderate", "aggressive"], "token": str(token)}
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, url, data)
    assert response.status_code == 302
    runs = list(OptimizationRun.objects.order_by("pk"))
    assert [(r.scenario, r.status) for r in runs] == [
        ("moderate", RunStatus.SUCCEEDED),
        ("aggressive", RunStatus.SUCCEEDED),
    ]
    assert response["Location"].endswith(f"?runs={runs[0].pk},{runs[1].pk}")
    assert post(client, url, data).status_code == 302  # a double submit starts nothing new
    assert OptimizationRun.objects.count() == 2
    compare = client.get(response["Location"])
    assert compare.status_code == 200
    body = compare.content.decode()
    assert body.count("<svg") == 4  # two allocation charts, gains, tracking error by year
    assert "Stage proposal" in body and "Running" not in body
    assert "$20.00" in body  # aggressive: estimated tax
    assert "Realized gains and losses by holding period" in body


@pytest.mark.parametrize(
    ("role", "status"),
    [("colleague", 403), ("compliance", 403), ("client_user", 403), ("outsider", 404)],
)
def test_only_the_adviser_runs_scenarios(priced_book, role, status):
    url = reverse("run_scenarios", args=[priced_book.household.pk])
    data = {"scenarios": ["moderate"], "token": "0b0c7e4e-8d41-4e0b-9a9f-3a3c0d7a1c11"}
    assert post(login(getattr(priced_book, role)), url, data).status_code == status
    assert not OptimizationRun.objects.exists()


def test_run_requests_need_csrf_and_login(priced_book):
    url = reverse("run_scenarios", args=[priced_book.household.pk])
    data = {"scenarios": ["moderate"], "token": "0b0c7e4e-8d41-4e0b-9a9f-3a3c0d7a1c11"}
    assert login(priced_book.owner).post(url, data).status_code == 403
    assert HttpClient().post(url, data).status_code == 302
    assert not OptimizationRun.objects.exists()


def test_run_status_json_shows_only_visible_runs(priced_book, moderate_run):
    url = f"{reverse('run_status')}?ids={moderate_run.pk},999"
    data = json.loads(login(priced_book.owner).get(url).content)
    assert data == {
        "runs": [
            {
                "id": moderate_run.pk,
                "scenario": "moderate",
                "status": "succeeded",
                "status_label": "Succeeded",
                "finished": True,
                "error": "",
            }
        ],
        "all_finished": True,
    }
    for role in ("outsider", "client_user"):
        other = json.loads(login(getattr(priced_book, role)).get(url).content)
        assert other["runs"] == []
    assert login(priced_book.owner).get(f"{reverse('run_status')}?ids=x").status_code == 400
    assert HttpClient().get(url).status_code == 302


def test_a_queued_run_shows_progress(priced_book):
    run = OptimizationRun.objects.create(
        household=priced_book.household,
        scenario="moderate",
        as_of=priced_book.ips.effective_date,
        idempotency_key="queued-1",
        requested_by=priced_book.owner,
    )
    body = (
        login(priced_book.owner)
        .get(f"{reverse('scenario_compare', args=[priced_book.household.pk])}?runs={run.pk}")
        .content.decode()
    )
    assert "data-run-progress" in body and f'data-run-id="{run.pk}"' in body
    assert "portal/portal.js" in body


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("owner", 200),
        ("colleague", 200),
        ("compliance", 200),
        ("client_user", 404),
        ("outsider", 404),
    ],
)
def test_scenario_comparison_access(priced_book, moderate_run, role, status):
    response = login(getattr(priced_book, role)).get(
        reverse("scenario_compare", args=[priced_book.household.pk])
    )
    assert response.status_code == status
    if status == 200:
        assert ("Stage proposal" in response.content.decode()) is (role == "owner")


@pytest.mark.parametrize(
    ("role", "status"),
    [("colleague", 403), ("compliance", 403), ("client_user", 404), ("outsider", 404)],
)
def test_only_the_adviser_stages(priced_book, moderate_run, role, status):
    response = post(login(getattr(priced_book, role)), reverse("run_stage", args=[moderate_run.pk]))
    assert response.status_code == status
    assert not Proposal.objects.exists()


def test_owner_stages_a_proposal(priced_book, aggressive_run):
    client = login(priced_book.owner)
    response = post(client, reverse("run_stage", args=[aggressive_run.pk]))
    p = Proposal.objects.get(run=aggressive_run)
    assert response.status_code == 302 and response["Location"] == detail(p)
    assert post(client, reverse("run_stage", args=[aggressive_run.pk]))["Location"] == detail(p)
    assert Proposal.objects.count() == 1
    assert HttpClient().post(reverse("run_stage", args=[aggressive_run.pk])).status_code == 302


# --------------------------------------------------------------------------- proposal page


@pytest.mark.parametrize("role", ["owner", "colleague", "compliance"])
def test_proposal_page_for_firm_staff(priced_book, proposal, role):
    response = login(getattr(priced_book, role)).get(detail(proposal))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Pat Individual" in body and "Sam IRA" in body  # trades by account
    assert "$100.00" in body and "$20.00" in body  # realized gain, estimated tax
    assert "basis $400.00" in body  # lot detail
    assert "Trades by account" in body and "<svg" in body
    assert ('name="approve"' in body) is (role == "owner")
    assert ("Save edit and re-check" in body) is (role == "owner")


def test_proposal_page_for_a_client_only_once_approved(priced_book, proposal):
    client = login(priced_book.client_user)
    assert client.get(detail(proposal)).status_code == 404
    wf.proposal_approve(proposal=proposal, actor=priced_book.owner)
    response = client.get(detail(proposal))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Approved" in body and "Save edit" not in body and "History" not in body


def test_proposal_page_is_404_for_an_outsider_and_login_for_anonymous(priced_book, proposal):
    assert login(priced_book.outsider).get(detail(proposal)).status_code == 404
    assert HttpClient().get(detail(proposal)).status_code == 302


def test_approve_through_the_page(priced_book, proposal):
    client = login(priced_book.owner)
    url = reverse("proposal_approve", args=[proposal.pk])
    response = post(client, url, {"version": "1", "comment": "ok"})
    assert response.status_code == 302
    p = Proposal.objects.get(pk=proposal.pk)
    assert p.status == ProposalStatus.APPROVED
    assert ProposalApproval.objects.get(proposal=p).comment == "ok"
    double = post(client, url, {"version": "1", "comment": "ok"})  # the second click
    assert double.status_code == 409
    assert "is approved; it can no longer be approved" in double.content.decode()
    assert ProposalApproval.objects.filter(proposal=p).count() == 1
    page = client.get(detail(p)).content.decode()
    assert '<span class="status approved">Approved</span>' in page


@pytest.mark.parametrize(
    ("role", "status"),
    [("colleague", 403), ("compliance", 403), ("client_user", 404), ("outsider", 404)],
)
def test_approve_refused_for_other_roles(priced_book, proposal, role, status):
    url = reverse("proposal_approve", args=[proposal.pk])
    assert post(login(getattr(priced_book, role)), url, {"version": "1"}).status_code == status
    assert Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.DRAFT
    assert not ProposalApproval.objects.exists()


def test_approve_needs_csrf_and_login(priced_book, proposal):
    url = reverse("proposal_approve", args=[proposal.pk])
    assert login(priced_book.owner).post(url, {"version": "1"}).status_code == 403
    assert HttpClient().post(url, {"version": "1"}).status_code == 302
    assert not ProposalApproval.objects.exists()


def test_stale_data_refuses_approval_and_offers_a_rerun(
    priced_book, proposal, django_capture_on_commit_callbacks
):
    svc.account_set_cash(
        account=priced_book.taxable, cash=D("2500.00"), actor=priced_book.owner, reason="deposit"
    )
    client = login(priced_book.owner)
    page = client.get(detail(proposal)).content.decode()
    assert "Cash in schwab-12345678 changed from $1,000 to $2,500." in page
    assert "Re-run the aggressive scenario" in page
    response = post(client, reverse("proposal_approve", args=[proposal.pk]), {"version": "1"})
    assert response.status_code == 409
    assert "re-run the scenario before approving" in response.content.decode()
    assert not ProposalApproval.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        rerun = post(client, reverse("proposal_rerun", args=[proposal.pk]))
    assert rerun.status_code == 302
    new = OptimizationRun.objects.exclude(pk=proposal.run_id).get()
    assert new.scenario == "aggressive" and new.status == RunStatus.SUCCEEDED
    assert rerun["Location"].endswith(f"?runs={new.pk}")
    staged = post(client, reverse("run_stage", args=[new.pk]))
    newer = Proposal.objects.get(run=new)
    assert staged["Location"] == detail(newer)
    assert Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.SUPERSEDED
    assert (
        post(client, reverse("proposal_approve", args=[newer.pk]), {"version": "1"}).status_code
        == 302
    )


def test_a_version_conflict_is_reported(priced_book, proposal):
    wf.proposal_submit(proposal=proposal, actor=priced_book.owner)
    response = post(
        login(priced_book.owner), reverse("proposal_approve", args=[proposal.pk]), {"version": "1"}
    )
    assert response.status_code == 409
    assert "changed while you were looking at it" in response.content.decode()
    assert not ProposalApproval.objects.exists()


def test_edit_through_the_page(priced_book, proposal):
    client = login(priced_book.owner)
    vti, bnd = proposal.trades.order_by("position")
    data = {
        "version": "1",
        f"shares_{vti.pk}": "4",
        f"shares_{bnd.pk}": "5",
        "note": "a little more",
    }
    response = post(client, reverse("proposal_edit", args=[proposal.pk]), data)
    assert response.status_code == 302
    p = Proposal.objects.get(pk=proposal.pk)
    assert p.version == 2 and p.realized_net == D("200.00") and p.estimated_tax == D("40.00")
    edit = ProposalEdit.objects.get(proposal=p)
    assert [c["order"] for c in edit.changes] == ["sell VTI in schwab-12345678"]
    page = client.get(detail(p)).content.decode()
    assert "(was 2)" in page and "a little more" in page


def test_an_edit_breaking_a_constraint_is_refused_on_the_page(priced_book, proposal):
    client = login(priced_book.owner)
    bnd = proposal.trades.get(security__symbol="BND")
    response = post(
        client,
        reverse("proposal_edit", args=[proposal.pk]),
        {"version": "1", f"drop_{bnd.pk}": "on"},
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "breaks a hard constraint" in body
    assert "cash after trading 0.00 is below the required 145.00" in body
    assert not ProposalEdit.objects.exists()


@pytest.mark.parametrize(
    ("role", "status"),
    [("colleague", 403), ("compliance", 403), ("client_user", 404), ("outsider", 404)],
)
def test_edit_refused_for_other_roles(priced_book, proposal, role, status):
    vti = proposal.trades.get(security__symbol="VTI")
    response = post(
        login(getattr(priced_book, role)),
        reverse("proposal_edit", args=[proposal.pk]),
        {"version": "1", f"drop_{vti.pk}": "on"},
    )
    assert response.status_code == status
    assert not ProposalEdit.objects.exists()


def test_reject_with_comment_submit_and_withdraw(priced_book, proposal, moderate_run):
    client = login(priced_book.owner)
    missing = post(client, reverse("proposal_reject", args=[proposal.pk]), {"version": "1"})
    assert missing.status_code == 400
    assert (
        post(client, reverse("proposal_submit", args=[proposal.pk]), {"version": "1"}).status_code
        == 302
    )
    assert Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.PENDING_REVIEW
    rejected = post(
        client, reverse("proposal_reject", args=[proposal.pk]), {"version": "2", "comment": "wait"}
    )
    assert rejected.status_code == 302
    p = Proposal.objects.get(pk=proposal.pk)
    assert p.status == ProposalStatus.REJECTED and p.decision_comment == "wait"
    other = wf.proposal_stage(run=moderate_run, actor=priced_book.owner)
    assert (
        post(
            login(priced_book.colleague),
            reverse("proposal_withdraw", args=[other.pk]),
            {"version": "1"},
        ).status_code
        == 403
    )
    assert (
        post(client, reverse("proposal_withdraw", args=[other.pk]), {"version": "1"}).status_code
        == 302
    )
    assert Proposal.objects.get(pk=other.pk).status == ProposalStatus.WITHDRAWN


def test_four_eyes_through_the_pages(priced_book, aggressive_run):
    firm = Firm.objects.get(pk=priced_book.firm.pk)
    firm.four_eyes_gain_threshold = D("50")
    firm.save()
    p = wf.proposal_stage(run=aggressive_run, actor=priced_book.owner)
    url = reverse("proposal_approve", args=[p.pk])
    assert post(login(priced_book.compliance), url, {"version": "1"}).status_code == 403
    assert post(login(priced_book.owner), url, {"version": "1"}).status_code == 302
    assert Proposal.objects.get(pk=p.pk).status == ProposalStatus.PENDING_REVIEW
    page = login(priced_book.compliance).get(detail(p)).content.decode()
    assert "Give the second approval" in page
    assert post(login(priced_book.compliance), url, {"version": "2"}).status_code == 302
    assert Proposal.objects.get(pk=p.pk).status == ProposalStatus.APPROVED
    assert ProposalApproval.objects.filter(proposal=p).count() == 2


@pytest.mark.parametrize("role", ROLES)
def test_proposal_list(priced_book, proposal, role):
    response = login(getattr(priced_book, role)).get(reverse("proposal_list"))
    assert response.status_code == 200
    shown = re.findall(r'href="/proposals/(\d+)/"', response.content.decode())
    assert shown == ([str(proposal.pk)] if role in ("owner", "colleague", "compliance") else [])


def test_household_page_polls_while_a_run_is_unfinished(priced_book):
    run = OptimizationRun.objects.create(
        household=priced_book.household,
        scenario="moderate",
        as_of=priced_book.ips.effective_date,
        idempotency_key="queued-2",
        requested_by=priced_book.owner,
    )
    body = (
        login(priced_book.owner)
        .get(reverse("household_detail", args=[priced_book.household.pk]))
        .content.decode()
    )
    assert f'data-status-url="{reverse("run_status")}?ids={run.pk}"' in body
    assert f'data-run-id="{run.pk}"' in body and "portal/portal.js" in body
    for role in ("client_user",):
        other = login(getattr(priced_book, role)).get(
            reverse("household_detail", args=[priced_book.household.pk])
        )
        assert "Recent runs" not in other.content.decode()
