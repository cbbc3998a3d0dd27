"""The audit and compliance pages: who may see each one, and what they show.

Compliance area: compliance 200; advisers (owner, colleague, another firm's) and clients 404;
anonymous users go to the login page. Run reconstruction, household as of, record history:
compliance and the assigned adviser 200, an unassigned colleague 403, client and outsider 404.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from decimal import Decimal

import pytest
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from accounts import services as svc
from audit.compliance import (
    PendingApproval,
    register_pending_approvals,
    unregister_pending_approvals,
)
from audit.export import verify_package
from audit.models import AuditEvent, VerificationRun, VerificationTrigger
from audit.reconstruction import (
    ReconstructionSection,
    SectionLink,
    register_reconstruction_section,
    unregister_reconstruction_section,
)
from audit.tasks import verify_audit_chains
from tests.audit.test_chain import _raw

ROLES = ("owner", "colleague", "compliance", "client_user", "outsider")


def client_for(book, role: str | None) -> HttpClient:
    client = HttpClient()
    if role is not None:
        client.force_login(getattr(book, role))
    return client


def _assert_anonymous_goes_to_login(response) -> None:
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# --------------------------------------------------------------------------- authorization

COMPLIANCE_ONLY = {
    "owner": 404,
    "colleague": 404,
    "compliance": 200,
    "client_user": 404,
    "outsider": 404,
}
HOUSEHOLD_AUDIT = {
    "owner": 200,
    "colleague": 403,
    "compliance": 200,
    "client_user": 404,
    "outsider": 404,
}


@pytest.mark.parametrize(
    "name",
    [
        "compliance_home",
        "compliance_events",
        "compliance_changes",
        "compliance_runs",
        "compliance_export",
    ],
)
@pytest.mark.parametrize("role", ROLES)
def test_compliance_pages_are_for_compliance_only(book, name, role):
    response = client_for(book, role).get(reverse(name))
    assert response.status_code == COMPLIANCE_ONLY[role]


@pytest.mark.parametrize(
    "name",
    [
        "compliance_home",
        "compliance_events",
        "compliance_changes",
        "compliance_runs",
        "compliance_export",
        "compliance_verify",
    ],
)
def test_compliance_pages_send_anonymous_users_to_login(book, name):
    _assert_anonymous_goes_to_login(HttpClient().get(reverse(name)))


@pytest.mark.parametrize("role", ROLES)
def test_verify_now_is_for_compliance_only(book, role):
    response = client_for(book, role).post(reverse("compliance_verify"))
    expected = 302 if role == "compliance" else 404
    assert response.status_code == expected
    assert VerificationRun.objects.count() == (1 if role == "compliance" else 0)
    _assert_anonymous_goes_to_login(HttpClient().post(reverse("compliance_verify")))


@pytest.mark.parametrize("role", ROLES)
def test_export_download_is_for_compliance_only(book, role, today):
    data = {"date_from": today.isoformat(), "date_to": today.isoformat()}
    response = client_for(book, role).post(reverse("compliance_export"), data)
    assert response.status_code == COMPLIANCE_ONLY[role]
    assert AuditEvent.objects.filter(event_type="audit.exported").count() == (
        1 if role == "compliance" else 0
    )
    _assert_anonymous_goes_to_login(HttpClient().post(reverse("compliance_export"), data))


@pytest.mark.parametrize("name", ["run_reconstruction", "run_snapshot", "run_result"])
@pytest.mark.parametrize("role", ROLES)
def test_run_pages_are_for_compliance_and_the_households_advisers(book, finished_run, name, role):
    response = client_for(book, role).get(reverse(name, args=[finished_run.pk]))
    assert response.status_code == HOUSEHOLD_AUDIT[role]


@pytest.mark.parametrize("name", ["run_reconstruction", "run_snapshot", "run_result", "run_replay"])
def test_run_pages_send_anonymous_users_to_login(book, finished_run, name):
    _assert_anonymous_goes_to_login(HttpClient().get(reverse(name, args=[finished_run.pk])))


@pytest.mark.parametrize("role", ROLES)
def test_replay_is_for_compliance_and_the_households_advisers(book, finished_run, role):
    response = client_for(book, role).post(reverse("run_replay", args=[finished_run.pk]))
    expected = {200: 302}.get(HOUSEHOLD_AUDIT[role], HOUSEHOLD_AUDIT[role])
    assert response.status_code == expected
    replays = AuditEvent.objects.filter(event_type="optimizer.run_replayed").count()
    assert replays == (1 if expected == 302 else 0)


def test_replay_requires_post_and_a_csrf_token(book, finished_run):
    client = HttpClient(enforce_csrf_checks=True)
    client.force_login(book.compliance)
    url = reverse("run_replay", args=[finished_run.pk])
    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 403
    page = client.get(reverse("run_reconstruction", args=[finished_run.pk]))
    token = page.context["csrf_token"]
    response = client.post(url, {"csrfmiddlewaretoken": str(token)})
    assert response.status_code == 302
    assert AuditEvent.objects.filter(event_type="optimizer.run_replayed").count() == 1


@pytest.mark.parametrize("role", ROLES)
def test_household_as_of_is_for_compliance_and_the_households_advisers(book, role, today):
    url = reverse("household_as_of", args=[book.household.pk]) + f"?when={today.isoformat()}"
    assert client_for(book, role).get(url).status_code == HOUSEHOLD_AUDIT[role]
    _assert_anonymous_goes_to_login(HttpClient().get(url))


def test_another_firms_household_is_404_even_for_compliance(book):
    url = reverse("household_as_of", args=[book.other_household.pk])
    assert client_for(book, "compliance").get(url).status_code == 404


@pytest.mark.parametrize("role", ROLES)
def test_record_history_follows_the_records_household(book, role):
    url = reverse("record_history", args=["accounts.TaxLot", book.lot_vti.pk])
    assert client_for(book, role).get(url).status_code == HOUSEHOLD_AUDIT[role]
    _assert_anonymous_goes_to_login(HttpClient().get(url))


@pytest.mark.parametrize("role", ROLES)
def test_firm_level_record_history_is_for_compliance_only(book, role):
    url = reverse("record_history", args=["accounts.User", book.owner.pk])
    assert client_for(book, role).get(url).status_code == COMPLIANCE_ONLY[role]


def test_record_history_of_unknown_kinds_or_rows_is_404(book):
    client = client_for(book, "compliance")
    assert client.get(reverse("record_history", args=["audit.AuditEvent", 1])).status_code == 404
    assert (
        client.get(reverse("record_history", args=["accounts.TaxLot", 999999])).status_code == 404
    )
    other_lot = reverse("record_history", args=["accounts.Household", book.other_household.pk])
    assert client.get(other_lot).status_code == 404


# --------------------------------------------------------------------------- compliance area


def test_compliance_page_shows_the_last_scheduled_verification(book):
    client = client_for(book, "compliance")
    page = client.get(reverse("compliance_home")).content.decode()
    assert "No scheduled verification has run yet" in page
    verify_audit_chains.delay().get()
    run = VerificationRun.objects.get()
    entry = run.chain_entry("alpha")
    page = client.get(reverse("compliance_home")).content.decode()
    assert "intact" in page
    assert entry["head_hash"] in page
    assert f"<dd>{entry['events']}</dd>" in page


def test_compliance_page_names_the_first_broken_event(book):
    victim = AuditEvent.objects.filter(chain="alpha").order_by("seq")[2]
    _raw("UPDATE audit_auditevent SET event_type = %s WHERE id = %s", ["innocent", victim.pk])
    verify_audit_chains.delay().get()
    page = client_for(book, "compliance").get(reverse("compliance_home")).content.decode()
    assert "BROKEN" in page
    assert f"event #{victim.pk} (chain alpha, seq {victim.seq})" in page


def test_verify_now_records_a_firm_scoped_run_and_reports_it(book):
    client = client_for(book, "compliance")
    response = client.post(reverse("compliance_verify"), follow=True)
    run = VerificationRun.objects.get()
    assert run.trigger == VerificationTrigger.ON_DEMAND and run.scope == "alpha"
    assert run.requested_by == book.compliance
    page = response.content.decode()
    assert f"Audit chain intact: {run.events_checked} events verified." in page
    assert "last on demand" in page


def test_pending_approvals_come_from_the_registered_providers(book):
    client = client_for(book, "compliance")
    page = client.get(reverse("compliance_home")).content.decode()
    assert "Nothing waits for a second approver." in page  # the proposals provider, empty
    seen = []

    def provider(firm, user):
        seen.append((firm, user))
        return [
            PendingApproval(
                title="Proposal 12",
                household="Smith Household",
                requested_by="owner",
                requested_at=timezone.now(),
                reason="net gains above $50,000",
                href="/proposals/12/",
            )
        ]

    register_pending_approvals("test-proposals", provider)
    try:
        page = client.get(reverse("compliance_home")).content.decode()
    finally:
        unregister_pending_approvals("test-proposals")
    assert '<a href="/proposals/12/">Proposal 12</a>' in page
    assert "net gains above $50,000" in page
    assert seen == [(book.firm, book.compliance)]


def _event_seqs(response) -> list[int]:
    return [event.seq for event, _data in response.context["rows"]]


def test_event_log_filters_by_actor_type_household_and_date(book, today):
    client = client_for(book, "compliance")
    url = reverse("compliance_events")
    everything = client.get(url)
    assert everything.status_code == 200
    alpha = list(AuditEvent.objects.filter(chain="alpha").order_by("-seq"))
    assert _event_seqs(everything) == [e.seq for e in alpha]
    by_actor = client.get(url, {"actor": book.owner.pk})
    assert _event_seqs(by_actor) == [e.seq for e in alpha if e.actor_id == book.owner.pk]
    by_type = client.get(url, {"type": "lot.created"})
    assert len(_event_seqs(by_type)) == 2
    by_prefix = client.get(url, {"type": "ips."})
    assert {e.event_type for e, _ in by_prefix.context["rows"]} == {"ips.version_created"}
    by_household = client.get(url, {"household": book.household.pk})
    objects = {(e.object_type, e.object_id) for e, _ in by_household.context["rows"]}
    assert ("accounts.TaxLot", str(book.lot_vti.pk)) in objects
    assert ("accounts.Household", str(book.household.pk)) in objects
    assert ("accounts.InvestmentPolicy", str(book.ips.pk)) in objects
    assert all(t != "accounts.User" for t, _ in objects)
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    assert _event_seqs(client.get(url, {"date_from": tomorrow})) == []
    assert _event_seqs(
        client.get(url, {"date_from": today.isoformat(), "date_to": today.isoformat()})
    ) == [e.seq for e in alpha]
    bad = client.get(url, {"date_from": tomorrow, "date_to": today.isoformat()})
    assert bad.status_code == 400
    assert "The range ends before it starts." in bad.content.decode()


def test_event_log_paginates_with_the_filters_kept(book):
    for index in range(60):
        svc.account_set_cash(
            account=book.taxable, cash=Decimal(1000 + index), actor=book.owner, reason="x"
        )
    client = client_for(book, "compliance")
    url = reverse("compliance_events")
    first = client.get(url, {"type": "account.cash_set"})
    assert len(first.context["rows"]) == 50
    assert "type=account.cash_set&amp;page=2" in first.content.decode()
    second = client.get(url, {"type": "account.cash_set", "page": 2})
    assert len(second.context["rows"]) == 10
    assert set(_event_seqs(first)).isdisjoint(_event_seqs(second))


def test_changes_page_lists_recent_versions_with_their_fields(book):
    svc.account_set_cash(
        account=book.taxable, cash=Decimal("2500.00"), actor=book.colleague, reason="x"
    )
    response = client_for(book, "compliance").get(reverse("compliance_changes"))
    top = response.context["rows"][0]
    assert (top.label, top.object_id, top.kind, top.fields) == (
        "accounts.Account",
        book.taxable.pk,
        "changed",
        ("cash",),
    )
    assert top.who == str(book.colleague)
    assert (
        reverse("record_history", args=["accounts.Account", book.taxable.pk])
        in response.content.decode()
    )


def test_runs_page_links_to_each_reconstruction(book, finished_run):
    page = client_for(book, "compliance").get(reverse("compliance_runs")).content.decode()
    assert reverse("run_reconstruction", args=[finished_run.pk]) in page


def test_export_download_is_a_verifiable_package_and_is_recorded(book, finished_run, today):
    client = client_for(book, "compliance")
    response = client.post(
        reverse("compliance_export"),
        {"date_from": today.isoformat(), "date_to": today.isoformat()},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert f'filename="exam-alpha-{today}-{today}.zip"' in response["Content-Disposition"]
    data = response.content
    report = verify_package(data, expected_manifest_sha256=response["X-Manifest-SHA256"])
    assert report.ok, report.problems
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert (
            archive.read(f"runs/{finished_run.pk}/snapshot.json")
            == finished_run.snapshot.text.encode()
        )
    event = AuditEvent.objects.get(event_type="audit.exported")
    assert event.actor == book.compliance
    assert json.loads(event.payload)["data"]["package_sha256"] == response["X-Package-SHA256"]
    bad = client.post(
        reverse("compliance_export"), {"date_from": today.isoformat(), "date_to": "2001-01-01"}
    )
    assert bad.status_code == 400
    assert AuditEvent.objects.filter(event_type="audit.exported").count() == 1


# --------------------------------------------------------------------------- runs


def test_reconstruction_shows_inputs_result_versions_and_events(book, finished_run):
    run = finished_run
    response = client_for(book, "owner").get(reverse("run_reconstruction", args=[run.pk]))
    page = response.content.decode()
    assert run.snapshot_sha256 in page and "matches" in page
    assert "“rebalance, keep taxes low”" in page
    assert "max_net_realized_gain" in page  # the overrides, as stored
    assert "IPS <strong>v1</strong>" in page
    assert "250.000000" in page and "72.500000" in page  # prices used
    assert "schwab-87654321" in page  # the trade's account
    assert run.result_sha256 in page
    assert f"<td>clarabel</td><td>{run.versions['clarabel']}</td>" in page
    events = [e.event_type for e, _ in response.context["events"]]
    assert events == ["optimizer.run_requested", "optimizer.run_finished"]
    assert "Run record history" in page  # the built-in registered section


def test_reconstruction_shows_the_ips_as_it_stood_when_the_run_read_it(book, finished_run, today):
    later = svc.ips_create_version(
        household=book.household,
        targets=[
            svc.TargetInput(weight=Decimal("0.40"), asset_class=book.equity),
            svc.TargetInput(weight=Decimal("0.55"), asset_class=book.bonds),
            svc.TargetInput(weight=Decimal("0.05"), asset_class=book.cash),
        ],
        effective_date=today,
        actor=book.owner,
    )
    response = client_for(book, "compliance").get(
        reverse("run_reconstruction", args=[finished_run.pk])
    )
    r = response.context["r"]
    assert r.ips.pk == book.ips.pk and r.ips.version == 1
    assert sorted(t.weight for t in r.ips_targets) == [
        Decimal("0.050000"),
        Decimal("0.350000"),
        Decimal("0.600000"),
    ]
    assert later.version == 2


def test_registered_sections_render_and_join_their_events_to_the_timeline(book, finished_run):
    def proposal_section(run):
        return ReconstructionSection(
            key="approvals",
            title="Approvals (test provider)",
            columns=("Who", "Decision"),
            rows=[["compliance", SectionLink("approved", "/proposals/1/")]],
            audit_objects=[("accounts.InvestmentPolicy", str(book.ips.pk))],
        )

    register_reconstruction_section("approvals", proposal_section, order=120)
    try:
        response = client_for(book, "compliance").get(
            reverse("run_reconstruction", args=[finished_run.pk])
        )
    finally:
        unregister_reconstruction_section("approvals")
    page = response.content.decode()
    assert "Approvals (test provider)" in page
    assert '<a href="/proposals/1/">approved</a>' in page
    events = [e.event_type for e, _ in response.context["events"]]
    assert "ips.version_created" in events


def test_snapshot_and_result_downloads_are_the_exact_stored_bytes(book, finished_run):
    client = client_for(book, "owner")
    snapshot = client.get(reverse("run_snapshot", args=[finished_run.pk]))
    assert snapshot.content == finished_run.snapshot.text.encode("utf-8")
    assert snapshot["Content-Type"] == "application/json"
    assert (
        f"run-{finished_run.pk}-snapshot-{finished_run.snapshot_sha256[:12]}.json"
        in snapshot["Content-Disposition"]
    )
    result = client.get(reverse("run_result", args=[finished_run.pk]))
    assert result.content == finished_run.result.text.encode("utf-8")


def test_replay_button_reports_byte_identical(book, finished_run):
    client = client_for(book, "owner")
    response = client.post(reverse("run_replay", args=[finished_run.pk]), follow=True)
    page = response.content.decode()
    assert (
        f"Replay of run {finished_run.pk}: byte-identical result (sha256 {finished_run.result_sha256})."
        in page
    )
    event = AuditEvent.objects.get(event_type="optimizer.run_replayed")
    assert event.actor == book.owner
    assert response.context["replays"][0][1]["identical"] is True


# --------------------------------------------------------------------------- point in time


def test_household_as_of_page_shows_the_old_values(book):
    before = timezone.now()
    while timezone.now() <= before:
        pass
    svc.account_set_cash(
        account=book.taxable, cash=Decimal("4321.00"), actor=book.owner, reason="x"
    )
    client = client_for(book, "compliance")
    url = reverse("household_as_of", args=[book.household.pk])
    old = client.get(url, {"when": before.isoformat()})
    assert old.status_code == 200
    view = old.context["view"]
    assert next(
        a for a in view.accounts if a.account.pk == book.taxable.pk
    ).account.cash == Decimal("1000.00")
    assert "cash $1,000.00" in old.content.decode()
    assert "$4,321.00" not in old.content.decode()
    now = client.get(url, {"when": timezone.now().isoformat()})
    assert "cash $4,321.00" in now.content.decode()
    assert client.get(url, {"when": "not a date"}).status_code == 400
    assert client.get(url, {"when": "2001-01-01"}).status_code == 404


def test_record_history_page_diffs_any_two_versions(book):
    svc.account_set_cash(
        account=book.taxable, cash=Decimal("2500.00"), actor=book.colleague, reason="x"
    )
    svc.account_set_cash(
        account=book.taxable, cash=Decimal("3000.00"), actor=book.owner, reason="y"
    )
    client = client_for(book, "owner")
    url = reverse("record_history", args=["accounts.Account", book.taxable.pk])
    page = client.get(url)
    rows = page.context["rows"]
    assert [row.record.cash for row in rows] == [
        Decimal("3000.00"),
        Decimal("2500.00"),
        Decimal("1000.00"),
    ]
    first, last = rows[-1].record, rows[0].record
    compared = client.get(url, {"a": first.history_id, "b": last.history_id})
    comparison = compared.context["comparison"]
    assert [(c.field, c.old, c.new) for c in comparison.changes] == [("cash", "1000.00", "3000.00")]
    assert "<td>cash</td><td>1000.00</td><td>3000.00</td>" in compared.content.decode()
    assert client.get(url, {"a": first.history_id, "b": 999999}).status_code == 404
