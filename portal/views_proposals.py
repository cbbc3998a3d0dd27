"""Runs, scenario comparison, proposals and their review: thin views over ``portal.access``,
``portal.selectors`` and ``portal.services``."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.access import (
    can_change_household,
    household_for_change_or_404,
    household_for_user_or_404,
    is_firm_staff,
)
from accounts.models import AssetClass, Role
from audit.access import can_audit_household
from optimizer.models import FINISHED
from optimizer.services import run_request
from portal import charts
from portal import services as wf
from portal.access import (
    export_files_visible,
    exports_visible,
    memoranda_visible,
    proposal_for_user_or_404,
    proposals_visible,
    run_for_user_or_404,
    runs_visible,
)
from portal.forms import (
    ApproveForm,
    BulkApproveForm,
    EditTradesForm,
    RejectForm,
    RunScenariosForm,
    WithdrawForm,
)
from portal.models import ApprovalStep, Proposal, ProposalStatus
from portal.selectors import review_queue, scenario_columns, scenario_runs, stale_changes

MAX_STATUS_IDS = 50


def _user(request: HttpRequest) -> Any:
    return request.user


# --------------------------------------------------------------------------- runs


@login_required
@require_POST
def run_scenarios(request: HttpRequest, pk: int) -> HttpResponseBase:
    """Request one run per chosen preset; Celery works while the comparison page shows progress
    (eager mode finishes before the redirect)."""
    household = household_for_change_or_404(request.user, pk)
    form = RunScenariosForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose at least one scenario to run.")
        return redirect("household_detail", pk=household.pk)
    token = form.cleaned_data["token"]
    runs = [
        run_request(
            household=household,
            scenario=scenario,
            actor=_user(request),
            idempotency_key=f"ui-{household.pk}-{request.user.pk}-{token}-{scenario}",
        )
        for scenario in form.cleaned_data["scenarios"]
    ]
    ids = ",".join(str(r.pk) for r in runs)
    return redirect(f"{reverse('scenario_compare', args=[household.pk])}?runs={ids}")


@login_required
@require_GET
def run_status(request: HttpRequest) -> JsonResponse:
    """``?ids=1,2,3`` -> the status of those runs the user may see (others are left out)."""
    raw = request.GET.get("ids", "")
    try:
        ids = [int(x) for x in raw.split(",") if x.strip()][:MAX_STATUS_IDS]
    except ValueError:
        return JsonResponse({"error": "ids must be a comma-separated list of run ids"}, status=400)
    runs = runs_visible(request.user).filter(pk__in=ids).order_by("pk")
    data = [
        {
            "id": r.pk,
            "scenario": r.scenario,
            "status": r.status,
            "status_label": r.get_status_display(),
            "finished": r.is_finished,
            "error": r.error[:300],
        }
        for r in runs
    ]
    return JsonResponse({"runs": data, "all_finished": all(r["finished"] for r in data)})


@login_required
@require_GET
def scenario_compare(request: HttpRequest, pk: int) -> HttpResponse:
    household = household_for_user_or_404(request.user, pk)
    if not is_firm_staff(request.user):
        raise Http404("No such page")
    raw = request.GET.get("runs", "")
    try:
        ids = [int(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        ids = []
    runs = scenario_runs(household, ids or None)
    columns = scenario_columns(runs)
    names = {ac.code: ac.name for ac in AssetClass.objects.all()} | {"cash": "Cash"}
    done = [c for c in columns if c.result is not None]
    context = {
        "household": household,
        "columns": columns,
        "pending": [c for c in columns if c.run.status not in FINISHED],
        "run_ids": ",".join(str(c.run.pk) for c in columns),
        "can_change": can_change_household(request.user, household),
        "allocation_charts": {
            c.run.pk: charts.allocation_chart(
                c.before.get("asset_classes", {}), c.after.get("asset_classes", {}), names
            )
            for c in done
        },
        "gains_chart": charts.gains_chart([(c.label, c.after.get("realized", {})) for c in done])
        if done
        else None,
        "forecast_chart": charts.forecast_chart(
            [
                (
                    c.label,
                    (c.result or {}).get("forecast", []),
                    float(c.before.get("tracking_error", 0.0)),
                )
                for c in done
            ]
        )
        if done
        else None,
    }
    return render(request, "portal/scenarios.html", context)


@login_required
@require_POST
def run_stage(request: HttpRequest, pk: int) -> HttpResponseBase:
    run = run_for_user_or_404(request.user, pk)
    try:
        proposal = wf.proposal_stage(run=run, actor=_user(request))
    except wf.WorkflowError as exc:
        messages.error(request, exc.message)
        return redirect(f"{reverse('scenario_compare', args=[run.household_id])}?runs={run.pk}")
    messages.success(request, f"Proposal {proposal.pk} staged from the {run.scenario} run.")
    return redirect("proposal_detail", pk=proposal.pk)


# --------------------------------------------------------------------------- proposals


@login_required
@require_GET
def proposal_list(request: HttpRequest) -> HttpResponse:
    proposals = proposals_visible(request.user).select_related("household", "prepared_by")
    status = request.GET.get("status", "")
    if status in ProposalStatus.values:
        proposals = proposals.filter(status=status)
    return render(
        request,
        "portal/proposal_list.html",
        {
            "proposals": proposals[:200],
            "status": status,
            "statuses": ProposalStatus.choices,
        },
    )


FLAG_LABELS = {
    "near_long_term": "Lot near long term",
    "harvest_blocked_wash_sale": "Harvest blocked by a wash sale",
    "buy_blocked_wash_sale": "Buy blocked by a wash sale",
    "restricted_position": "Restricted position",
    "wash_sale_window_opened": "Wash-sale window opened",
    "large_trade_list": "Large trade list",
}


def flag_text(flag: dict[str, Any]) -> str:
    kind = flag.get("kind", "")
    if kind == "near_long_term":
        action = "held back" if flag.get("held_back") else ("sold" if flag.get("sold") else "kept")
        return (
            f"Lot {flag.get('lot_id')} of {flag.get('symbol')} in {flag.get('account')} is "
            f"{flag.get('days_to_long_term')} days from long term (unrealized "
            f"${flag.get('unrealized_gain')}); {action}."
        )
    if kind == "harvest_blocked_wash_sale":
        return (
            f"Harvesting lot {flag.get('lot_id')} of {flag.get('symbol')} (loss "
            f"${flag.get('unrealized_loss')}) is blocked: a buy in "
            f"{flag.get('conflicting_buy_account')} on {flag.get('conflicting_buy_date')}."
        )
    if kind == "buy_blocked_wash_sale":
        return (
            f"Buying {flag.get('identical_group')} is blocked: a loss sale in "
            f"{flag.get('loss_sale_account')} on {flag.get('loss_sale_date')}."
        )
    if kind == "restricted_position":
        rules = [w for w in ("no_sell", "no_buy") if flag.get(w)]
        if flag.get("max_weight"):
            rules.append(f"max weight {flag['max_weight']}")
        where = f" in {flag['account']}" if flag.get("account") else ""
        return (
            f"{flag.get('symbol')}{where} is restricted ({', '.join(rules).replace('_', ' ')}; "
            f"{flag.get('reason')}), position ${flag.get('value')}."
        )
    if kind == "large_trade_list":
        return f"{flag.get('tickets')} tickets, more than {flag.get('threshold')}."
    return str(flag.get("text") or kind)


def _proposal_context(request: HttpRequest, proposal: Proposal, **forms: Any) -> dict[str, Any]:
    user = _user(request)
    trades = list(proposal.trades.select_related("account__custodian", "security"))
    by_account: OrderedDict[Any, list[Any]] = OrderedDict()
    for t in trades:
        by_account.setdefault(t.account, []).append(t)
    approvals = list(proposal.approvals.select_related("approver"))
    first = next((a for a in approvals if a.step == ApprovalStep.FIRST), None)
    is_adviser = can_change_household(user, proposal.household)
    is_compliance = user.role == Role.COMPLIANCE and user.firm_id == proposal.household.firm_id
    open_ = proposal.is_open
    stale = stale_changes(proposal) if open_ and is_firm_staff(user) else []
    can_approve = open_ and (
        (first is None and is_adviser)
        or (
            first is not None
            and proposal.requires_four_eyes
            and is_compliance
            and user.pk not in (proposal.prepared_by_id, first.approver_id)
        )
    )
    names = {ac.code: ac.name for ac in AssetClass.objects.all()} | {"cash": "Cash"}
    metrics = proposal.metrics
    before, after = metrics.get("before", {}), metrics.get("after", {})
    classes = [
        {
            "code": code,
            "name": names.get(code, code),
            "before": before.get("asset_classes", {}).get(code, {}),
            "after": row,
        }
        for code, row in after.get("asset_classes", {}).items()
    ]
    version = {"version": proposal.version}
    export = exports_visible(user).filter(proposal=proposal).first()
    return {
        "proposal": proposal,
        "export": export,
        "export_files": list(
            export_files_visible(user).filter(export__proposal=proposal).order_by("position")
        ),
        "memoranda": list(
            memoranda_visible(user)
            .filter(proposal=proposal)
            .select_related("recommended_by", "approved_by", "second_approved_by", "placed_by")
        ),
        "can_export": proposal.status == ProposalStatus.APPROVED and is_adviser,
        "can_audit": can_audit_household(user, proposal.household),
        "household": proposal.household,
        "by_account": list(by_account.items()),
        "trades": trades,
        "approvals": approvals,
        "edits": list(proposal.edits.select_related("editor")),
        "history": list(
            proposal.history.select_related("history_user").order_by("history_date", "history_id")
        ),
        "stale": stale,
        "before": before,
        "after": after,
        "classes": classes,
        "allocation_chart": charts.allocation_chart(
            before.get("asset_classes", {}), after.get("asset_classes", {}), names
        )
        if after
        else None,
        "flags": [
            {
                "kind": f.get("kind"),
                "label": FLAG_LABELS.get(f.get("kind", ""), f.get("kind")),
                "text": flag_text(f),
                "review": f in proposal.review_flags(),
            }
            for f in proposal.flags
        ],
        "first_approval": first,
        "is_staff": is_firm_staff(user),
        "can_edit": open_ and is_adviser and not approvals,
        "can_submit": proposal.status == ProposalStatus.DRAFT and is_adviser,
        "can_approve": can_approve,
        "can_reject": open_
        and (is_adviser or (is_compliance and first is not None and proposal.requires_four_eyes)),
        "can_withdraw": open_ and is_adviser,
        "can_rerun": open_ and is_adviser and bool(stale),
        "approve_form": forms.get("approve_form") or ApproveForm(initial=version),
        "reject_form": forms.get("reject_form") or RejectForm(initial=version),
        "withdraw_form": WithdrawForm(initial=version),
        "edit_form": forms.get("edit_form")
        or EditTradesForm(
            initial={**version, **{f"shares_{t.pk}": t.shares for t in trades}}, trades=trades
        ),
        "error": forms.get("error"),
    }


def _render_proposal(
    request: HttpRequest, proposal: Proposal, status: int = 200, **forms: Any
) -> HttpResponse:
    return render(
        request,
        "portal/proposal_detail.html",
        _proposal_context(request, proposal, **forms),
        status=status,
    )


@login_required
@require_GET
def proposal_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_proposal(request, proposal_for_user_or_404(request.user, pk))


def _refused(
    request: HttpRequest, proposal: Proposal, exc: wf.WorkflowError, **forms: Any
) -> HttpResponse:
    proposal.refresh_from_db()
    return _render_proposal(request, proposal, status=exc.status, error=exc, **forms)


@login_required
@require_POST
def proposal_edit(request: HttpRequest, pk: int) -> HttpResponse:
    proposal = proposal_for_user_or_404(request.user, pk)
    trades = list(proposal.trades.select_related("security", "account"))
    form = EditTradesForm(request.POST, trades=trades)
    if not form.is_valid():
        return _render_proposal(request, proposal, status=400, edit_form=form)
    changes = [
        wf.TradeChange(trade_id=t.pk, shares=shares, drop=drop)
        for t, shares, drop in form.changes()
    ]
    try:
        wf.proposal_edit(
            proposal=proposal,
            actor=_user(request),
            changes=changes,
            expected_version=form.cleaned_data["version"],
            note=form.cleaned_data["note"],
        )
    except wf.WorkflowError as exc:
        return _refused(request, proposal, exc, edit_form=form)
    messages.success(request, "Edit saved; constraints re-checked and figures recomputed.")
    return redirect("proposal_detail", pk=proposal.pk)


def _decide(
    request: HttpRequest,
    pk: int,
    form_class: type[Any],
    service: Callable[..., Proposal],
    *,
    form_key: str | None = None,
    comment: bool = True,
) -> Proposal | HttpResponse:
    """One workflow step from a posted form: the proposal after the service, or the page again
    (400 for a bad form, the refusal for a refused step). ``form_key`` re-renders the form."""
    proposal = proposal_for_user_or_404(request.user, pk)
    form = form_class(request.POST)
    kept = {form_key: form} if form_key else {}
    if not form.is_valid():
        return _render_proposal(request, proposal, status=400, **kept)
    extra = {"comment": form.cleaned_data["comment"]} if comment else {}
    try:
        return service(
            proposal=proposal,
            actor=_user(request),
            expected_version=form.cleaned_data["version"],
            **extra,
        )
    except wf.WorkflowError as exc:
        return _refused(request, proposal, exc, **kept)


@login_required
@require_POST
def proposal_submit(request: HttpRequest, pk: int) -> HttpResponse:
    done = _decide(request, pk, WithdrawForm, wf.proposal_submit, comment=False)
    if isinstance(done, HttpResponse):
        return done
    messages.success(request, "Submitted for review.")
    return redirect("proposal_detail", pk=done.pk)


@login_required
@require_POST
def proposal_approve(request: HttpRequest, pk: int) -> HttpResponse:
    done = _decide(request, pk, ApproveForm, wf.proposal_approve, form_key="approve_form")
    if isinstance(done, HttpResponse):
        return done
    if done.status == ProposalStatus.APPROVED:
        messages.success(request, f"Proposal {done.pk} approved.")
    else:
        messages.success(
            request,
            f"Your approval is recorded; proposal {done.pk} now needs a compliance approval.",
        )
    return redirect("proposal_detail", pk=done.pk)


@login_required
@require_POST
def proposal_reject(request: HttpRequest, pk: int) -> HttpResponse:
    done = _decide(request, pk, RejectForm, wf.proposal_reject, form_key="reject_form")
    if isinstance(done, HttpResponse):
        return done
    messages.success(request, f"Proposal {done.pk} rejected.")
    return redirect("proposal_detail", pk=done.pk)


@login_required
@require_POST
def proposal_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    done = _decide(request, pk, WithdrawForm, wf.proposal_withdraw)
    if isinstance(done, HttpResponse):
        return done
    messages.success(request, f"Proposal {done.pk} withdrawn.")
    return redirect("proposal_detail", pk=done.pk)


@login_required
@require_POST
def proposal_rerun(request: HttpRequest, pk: int) -> HttpResponse:
    proposal = proposal_for_user_or_404(request.user, pk)
    try:
        run = wf.proposal_rerun(proposal=proposal, actor=_user(request))
    except wf.WorkflowError as exc:
        return _refused(request, proposal, exc)
    messages.success(
        request, f"Re-running the {run.scenario} scenario on today's data; stage the new run below."
    )
    return redirect(f"{reverse('scenario_compare', args=[proposal.household_id])}?runs={run.pk}")


# --------------------------------------------------------------------------- bulk approval


@login_required
@require_POST
def bulk_approve(request: HttpRequest) -> HttpResponse:
    """Two steps: the picked vanilla proposals are shown once for confirmation; the confirmed
    POST approves each (a proposal that changed since it was picked is refused, not approved)."""
    user = _user(request)
    if user.role != Role.ADVISER:
        raise PermissionDenied("Only advisers approve proposals in bulk.")
    vanilla = [
        qp.proposal
        for row in review_queue(user)
        for qp in row.proposals
        if qp.vanilla and qp.can_approve
    ]
    choices = [(f"{p.pk}:{p.version}", str(p)) for p in vanilla]
    form = BulkApproveForm(request.POST, choices=choices)
    if not form.is_valid():
        messages.error(
            request,
            "Pick at least one proposal; a proposal that changed since the queue was loaded "
            "must be picked again.",
        )
        return redirect("home")
    picked = form.picked()
    by_pk = {p.pk: p for p in vanilla}
    chosen = [(by_pk[pk], version) for pk, version in picked]
    if not form.cleaned_data["confirm"]:
        return render(
            request,
            "portal/bulk_confirm.html",
            {"chosen": [p for p, _ in chosen], "values": [f"{p.pk}:{v}" for p, v in chosen]},
        )
    outcome = wf.proposal_bulk_approve(proposals=chosen, actor=user)
    if outcome.approved:
        messages.success(
            request,
            f"Approved {len(outcome.approved)} proposal{'s' if len(outcome.approved) != 1 else ''}: "
            + ", ".join(f"#{p.pk} {p.household}" for p in outcome.approved),
        )
    for proposal, why in outcome.refused:
        messages.error(request, f"Proposal {proposal.pk} was not approved: {why}")
    return redirect("home")
