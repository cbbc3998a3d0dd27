"""Audit and exam pages: run reconstruction and replay, point in time, record history, and the
compliance area (event log, changes, verification, four-eyes queue, exam export).

Access (``audit.access``): the compliance area is for compliance officers only (everyone else
404); a run's reconstruction, a household as of a moment and a record's history are for
compliance and the household's assigned advisers (other advisers of the firm 403; clients,
other firms 404; anonymous users are sent to the login page).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.apps import apps
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.access import (
    check_record_access,
    compliance_firm_or_404,
    household_for_audit_or_404,
    run_for_audit_or_404,
)
from audit.asof import (
    NotOnRecord,
    diff_versions,
    history_model_entry,
    household_as_of,
    record_history,
    record_owner,
    version_fields,
)
from audit.compliance import (
    EventFilters,
    firm_events,
    pending_approvals,
    pending_approvals_registered,
    recent_changes,
)
from audit.export import exam_package_export
from audit.forms import AsOfForm, EventFilterForm, ExportForm
from audit.models import VerificationTrigger
from audit.reconstruction import run_reconstruction, snapshot_tables
from audit.verification import latest_verification, verification_run
from optimizer.models import OptimizationRun
from optimizer.replay import ReplayNotPossible, run_replay

EVENTS_PER_PAGE = 50
RUNS_PER_PAGE = 50


def _page(request: HttpRequest, items: Any, per_page: int) -> Any:
    return Paginator(items, per_page).get_page(request.GET.get("page"))


# --------------------------------------------------------------------------- compliance area


@login_required
@require_GET
def compliance_home(request: HttpRequest) -> HttpResponse:
    firm = compliance_firm_or_404(request.user)
    scheduled = latest_verification(trigger=VerificationTrigger.SCHEDULED)
    on_demand = latest_verification(trigger=VerificationTrigger.ON_DEMAND, scope=firm.slug)
    context = {
        "firm": firm,
        "scheduled": scheduled,
        "scheduled_entry": scheduled.chain_entry(firm.slug) if scheduled else None,
        "on_demand": on_demand,
        "on_demand_entry": on_demand.chain_entry(firm.slug) if on_demand else None,
        "approvals_registered": pending_approvals_registered(),
        "approvals": pending_approvals(firm, request.user),  # type: ignore[arg-type]
        "recent_events": list(firm_events(firm, EventFilters())[:10]),
    }
    return render(request, "portal/audit/compliance.html", context)


@login_required
@require_POST
def compliance_verify(request: HttpRequest) -> HttpResponseBase:
    firm = compliance_firm_or_404(request.user)
    run = verification_run(
        actor=request.user,  # type: ignore[arg-type]
        trigger=VerificationTrigger.ON_DEMAND,
        firm=firm,
    )
    if run.ok:
        messages.success(request, f"Audit chain intact: {run.events_checked} events verified.")
    else:
        messages.error(request, f"Audit chain BROKEN: {run.problem}")
    return redirect("compliance_home")


@login_required
@require_GET
def compliance_events(request: HttpRequest) -> HttpResponse:
    firm = compliance_firm_or_404(request.user)
    form = EventFilterForm(request.GET or None, firm=firm)
    if request.GET and not form.is_valid():
        return render(
            request,
            "portal/audit/events.html",
            {"firm": firm, "form": form, "page": None, "query": ""},
            status=400,
        )
    filters = form.filters() if form.is_bound else EventFilters()
    page = _page(request, firm_events(firm, filters), EVENTS_PER_PAGE)
    rows = [(event, json.loads(event.payload).get("data", {})) for event in page.object_list]
    return render(
        request,
        "portal/audit/events.html",
        {
            "firm": firm,
            "form": form,
            "page": page,
            "rows": rows,
            "query": urlencode(filters.as_query()),
        },
    )


@login_required
@require_GET
def compliance_changes(request: HttpRequest) -> HttpResponse:
    firm = compliance_firm_or_404(request.user)
    rows = recent_changes(firm, limit=100)
    return render(request, "portal/audit/changes.html", {"firm": firm, "rows": rows})


@login_required
@require_GET
def compliance_runs(request: HttpRequest) -> HttpResponse:
    firm = compliance_firm_or_404(request.user)
    runs = (
        OptimizationRun.objects.filter(household__firm=firm)
        .select_related("household", "requested_by")
        .order_by("-created_at", "-id")
    )
    return render(
        request,
        "portal/audit/runs.html",
        {"firm": firm, "page": _page(request, runs, RUNS_PER_PAGE)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def compliance_export(request: HttpRequest) -> HttpResponse:
    firm = compliance_firm_or_404(request.user)
    if request.method == "POST":
        form = ExportForm(request.POST)
        if form.is_valid():
            start, end = form.cleaned_data["date_from"], form.cleaned_data["date_to"]
            package = exam_package_export(
                firm=firm,
                date_from=start,
                date_to=end,
                actor=request.user,  # type: ignore[arg-type]
            )
            response = HttpResponse(package.data, content_type="application/zip")
            name = f"exam-{firm.slug}-{start.isoformat()}-{end.isoformat()}.zip"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            response["X-Package-SHA256"] = package.sha256
            response["X-Manifest-SHA256"] = package.manifest_sha256
            return response
        return render(request, "portal/audit/export.html", {"firm": firm, "form": form}, status=400)
    today = timezone.localdate()
    form = ExportForm(initial={"date_from": today.replace(month=1, day=1), "date_to": today})
    return render(request, "portal/audit/export.html", {"firm": firm, "form": form})


# --------------------------------------------------------------------------- runs


@login_required
@require_GET
def run_reconstruction_page(request: HttpRequest, pk: int) -> HttpResponse:
    run = run_for_audit_or_404(request.user, pk)
    reconstruction = run_reconstruction(run)
    return render(
        request,
        "portal/audit/reconstruction.html",
        {
            "run": run,
            "r": reconstruction,
            "tables": snapshot_tables(reconstruction.snapshot),
            "result": reconstruction.result,
            "events": reconstruction.event_data(),
            "replays": reconstruction.replays(),
            "timings": sorted((run.timings or {}).items()),
            "versions": sorted((run.versions or {}).items()),
            "overrides": json.dumps(run.overrides or {}, indent=2, sort_keys=True),
        },
    )


def _document_response(text: str, name: str) -> HttpResponse:
    response = HttpResponse(text.encode("utf-8"), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
@require_GET
def run_snapshot_download(request: HttpRequest, pk: int) -> HttpResponse:
    run = run_for_audit_or_404(request.user, pk)
    if run.snapshot is None:
        raise Http404("This run has no stored snapshot")
    return _document_response(
        run.snapshot.text, f"run-{run.pk}-snapshot-{run.snapshot_sha256[:12]}.json"
    )


@login_required
@require_GET
def run_result_download(request: HttpRequest, pk: int) -> HttpResponse:
    run = run_for_audit_or_404(request.user, pk)
    if run.result is None:
        raise Http404("This run has no stored result")
    return _document_response(run.result.text, f"run-{run.pk}-result-{run.result_sha256[:12]}.json")


@login_required
@require_POST
def run_replay_view(request: HttpRequest, pk: int) -> HttpResponseBase:
    run = run_for_audit_or_404(request.user, pk)
    try:
        report = run_replay(run_id=run.pk, actor=request.user)  # type: ignore[arg-type]
    except ReplayNotPossible as exc:
        messages.error(request, str(exc))
    else:
        if report.identical:
            messages.success(
                request,
                f"Replay of run {run.pk}: byte-identical result "
                f"(sha256 {report.result_sha256_replayed or report.outcome_now}).",
            )
        else:
            messages.error(
                request,
                f"Replay of run {run.pk} differs from the recorded result: "
                + "; ".join(report.lines()[:5]),
            )
    return redirect(reverse("run_reconstruction", args=[run.pk]) + "#replays")


# --------------------------------------------------------------------------- point in time


@login_required
@require_GET
def household_as_of_page(request: HttpRequest, pk: int) -> HttpResponse:
    household = household_for_audit_or_404(request.user, pk)
    form = AsOfForm(request.GET or None)
    view = None
    error = ""
    status = 200
    if form.is_bound:
        if form.is_valid():
            try:
                view = household_as_of(household.pk, form.cleaned_data["when"])
            except NotOnRecord as exc:
                error = str(exc)
                status = 404
        else:
            status = 400
    return render(
        request,
        "portal/audit/household_as_of.html",
        {"household": household, "form": form, "view": view, "error": error},
        status=status,
    )


@login_required
@require_GET
def record_history_page(request: HttpRequest, label: str, pk: int) -> HttpResponse:
    entry = history_model_entry(label)
    if entry is None:
        raise Http404("No history pages for this kind of record")
    household_id, firm_id = record_owner(entry, pk)
    check_record_access(request.user, household_id=household_id, firm_id=firm_id)
    model = apps.get_model(label)
    rows = record_history(model, pk)
    comparison = None
    chosen = (request.GET.get("a"), request.GET.get("b"))
    if all(chosen):
        by_id = {str(row.record.history_id): row.record for row in rows}
        first, second = by_id.get(chosen[0] or ""), by_id.get(chosen[1] or "")
        if first is None or second is None:
            raise Http404("No such version of this record")
        comparison = diff_versions(first, second)
    latest = rows[-1].record if rows else None
    return render(
        request,
        "portal/audit/record_history.html",
        {
            "label": label,
            "verbose_name": model._meta.verbose_name,
            "pk": pk,
            "rows": list(reversed(rows)),
            "latest_fields": version_fields(latest) if latest is not None else [],
            "comparison": comparison,
            "household_id": household_id,
        },
    )
