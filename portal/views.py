"""The adviser's portal: thin views over the access helpers, selectors and services."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts.access import (
    can_change_household,
    household_for_change_or_404,
    household_for_user_or_404,
    households_visible,
    is_firm_staff,
)
from accounts.models import AssetClass, Role, TaxLot
from accounts.selectors import household_valuation, ips_in_force, latest_prices
from accounts.services import TargetInput, ips_create_version
from audit.services import audit_record
from portal import lockout
from portal.access import export_files_visible, proposals_visible, runs_visible
from portal.forms import IPSVersionForm, RunScenariosForm
from portal.models import CLIENT_FILE_KINDS
from portal.selectors import review_queue


class LoginView(auth_views.LoginView):
    """Login with throttling: repeated failures lock the username (and the address) out for a
    while (``portal.lockout``); a locked-out attempt is refused with 429 even when correct."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username = str(request.POST.get("username", ""))
        if lockout.is_locked(request, username):
            form = self.get_form()
            return render(
                request,
                self.template_name,
                {"form": form, "locked": lockout.locked_message(), "next": self.get_success_url()},
                status=429,
            )
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        lockout.register_failure(self.request, str(self.request.POST.get("username", "")))
        return super().form_invalid(form)

    @transaction.atomic
    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        user = form.get_user()
        lockout.register_success(user.username)
        audit_record(actor=user, event_type="auth.login", firm=user.firm, data={})
        return response


class LogoutView(auth_views.LogoutView):
    @transaction.atomic
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if user.is_authenticated:
            audit_record(actor=user, event_type="auth.logout", firm=user.firm, data={})
        return super().post(request, *args, **kwargs)


@login_required
def home(request: HttpRequest) -> HttpResponseBase:
    """The review queue: the firm's households ranked by need, flags first; vanilla proposals
    can be approved in bulk after one confirmation. Clients go to their household."""
    user: Any = request.user
    if user.role == Role.CLIENT and user.household_id:
        return redirect("household_detail", pk=user.household_id)
    rows = review_queue(user)
    vanilla = [qp for row in rows for qp in row.proposals if qp.vanilla and qp.can_approve]
    awaiting = [
        qp
        for row in rows
        for qp in row.proposals
        if qp.awaiting_compliance and user.role == Role.COMPLIANCE
    ]
    context = {
        "rows": rows,
        "flagged": sum(1 for r in rows if r.flags),
        "vanilla": vanilla,
        "awaiting": awaiting,
        "open_count": sum(len(r.proposals) for r in rows),
    }
    return render(request, "portal/queue.html", context)


@login_required
def household_list(request: HttpRequest) -> HttpResponse:
    households = list(
        households_visible(request.user).filter(is_active=True).prefetch_related("advisers")
    )
    classes = list(AssetClass.objects.all())
    security_ids = TaxLot.objects.filter(
        account__household__in=households, closed_on__isnull=True
    ).values_list("security_id", flat=True)
    prices = latest_prices(security_ids)
    rows = [household_valuation(h, prices=prices, asset_classes=classes) for h in households]
    rows.sort(key=lambda v: (-v.max_drift, v.household.name))
    return render(request, "portal/household_list.html", {"rows": rows})


@login_required
def household_detail(request: HttpRequest, pk: int) -> HttpResponse:
    household = household_for_user_or_404(request.user, pk)
    valuation = household_valuation(household)
    restrictions = household.restrictions.select_related("security", "account").order_by(
        "security__symbol"
    )
    can_change = can_change_household(request.user, household)
    runs = list(runs_visible(request.user).filter(household=household)[:12])
    context = {
        "household": household,
        "valuation": valuation,
        "restrictions": restrictions,
        "clients": household.clients.all(),
        "advisers": household.advisers.all(),
        "can_change": can_change,
        "is_staff": is_firm_staff(request.user),
        "runs": runs,
        "pending_runs": ",".join(str(r.pk) for r in runs if not r.is_finished),
        "proposals": list(
            proposals_visible(request.user)
            .filter(household=household)
            .select_related("prepared_by")[:20]
        ),
        "reports": list(
            export_files_visible(request.user)
            .filter(kind__in=CLIENT_FILE_KINDS, export__proposal__household=household)
            .select_related("export__proposal")
            .order_by("-export__entered_at", "position")
        ),
        "run_form": RunScenariosForm(initial={"scenarios": ["moderate"], "token": uuid.uuid4()})
        if can_change
        else None,
    }
    return render(request, "portal/household_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def ips_page(request: HttpRequest, pk: int) -> HttpResponse:
    if request.method == "POST":
        household = household_for_change_or_404(request.user, pk)
    else:
        household = household_for_user_or_404(request.user, pk)
    classes = list(AssetClass.objects.all())
    current = ips_in_force(household)
    versions = household.policies.prefetch_related(
        "targets__asset_class", "targets__security"
    ).select_related("created_by", "model_portfolio")
    form = None
    if can_change_household(request.user, household):
        if request.method == "POST":
            form = IPSVersionForm(request.POST, asset_classes=classes)
            if form.is_valid():
                try:
                    ips = ips_create_version(
                        household=household,
                        targets=[TargetInput(weight=w, asset_class=ac) for ac, w in form.targets()],
                        effective_date=form.cleaned_data["effective_date"],
                        cash_floor=form.fraction("cash_floor_pct"),
                        default_band=form.fraction("default_band_pct"),
                        st_rate=form.fraction("st_rate_pct"),
                        lt_rate=form.fraction("lt_rate_pct"),
                        annual_gain_budget=form.cleaned_data["annual_gain_budget"],
                        objectives=form.cleaned_data["objectives"],
                        model_portfolio=current.model_portfolio if current else None,
                        actor=request.user,  # type: ignore[arg-type]
                    )
                except ValidationError as exc:
                    for field, errors in exc.message_dict.items():
                        for error in errors:
                            form.add_error(None, f"{field}: {error}")
                else:
                    messages.success(request, f"IPS version {ips.version} saved.")
                    return redirect(reverse("ips_page", args=[household.pk]))
        else:
            form = IPSVersionForm(initial=_ips_initial(current, classes), asset_classes=classes)
    return render(
        request,
        "portal/ips.html",
        {"household": household, "current": current, "versions": versions, "form": form},
        status=400 if form is not None and form.errors else 200,
    )


def _ips_initial(current: Any, classes: list[AssetClass]) -> dict[str, Any]:
    initial: dict[str, Any] = {"effective_date": timezone.localdate()}
    if current is None:
        return initial
    initial.update(
        cash_floor_pct=current.cash_floor * 100,
        default_band_pct=current.default_band * 100,
        st_rate_pct=current.st_rate * 100,
        lt_rate_pct=current.lt_rate * 100,
        annual_gain_budget=current.annual_gain_budget,
        objectives=current.objectives,
    )
    for target in current.targets.all():
        if target.asset_class_id:
            initial[f"target_{target.asset_class.code}"] = target.weight * 100
    return initial
