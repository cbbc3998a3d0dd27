"""Custodian imports in the portal: upload (advisers), batches and reconciliation breaks
(advisers and compliance, read-only for compliance), resolving a break (the household's
adviser). Thin views over ``accounts.access`` and ``accounts.importing``."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import (
    break_for_change_or_404,
    breaks_visible,
    can_import,
    household_for_user_or_404,
    import_batch_for_user_or_404,
    import_batches_visible,
    is_firm_staff,
)
from accounts.importers import ImportFileError
from accounts.importing import import_file, reconciliation_break_resolve
from accounts.models import BreakStatus, Household, ReconciliationBreak
from portal.forms_imports import BreakResolveForm, ImportUploadForm

RESOLVED_SHOWN = 50


def _require_staff(user: Any) -> None:
    if not is_firm_staff(user):
        raise PermissionDenied("Imports are for the firm's advisers and compliance officers.")


def _with_related(breaks: QuerySet[ReconciliationBreak]) -> QuerySet[ReconciliationBreak]:
    return breaks.select_related(
        "account__household", "account__custodian", "security", "batch", "resolved_by"
    ).order_by("account__household__name", "account__number", "security__symbol", "pk")


def _changeable(user: Any) -> set[int]:
    """Households whose breaks ``user`` may resolve (an adviser's assigned households)."""
    if not can_import(user):
        return set()
    return set(user.advised_households.values_list("pk", flat=True))


@login_required
def import_list(request: HttpRequest) -> HttpResponse:
    _require_staff(request.user)
    batches = import_batches_visible(request.user).select_related("actor", "custodian")
    context = {
        "batches": batches[:200],
        "open_breaks": breaks_visible(request.user).filter(status=BreakStatus.OPEN).count(),
        "can_import": can_import(request.user),
    }
    return render(request, "portal/imports/list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def import_upload(request: HttpRequest) -> HttpResponseBase:
    user: Any = request.user
    if not can_import(user):
        raise PermissionDenied("Only the firm's advisers import custodian files.")
    problems: tuple[Any, ...] = ()
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            outcome = import_file(
                firm=user.firm,
                fmt=form.cleaned_data["file_format"],
                kind=form.cleaned_data["kind"] or None,
                file_name=upload.name,
                data=upload.read(),
                tolerance=form.cleaned_data["tolerance"],
                actor=user,
            )
        except ImportFileError as exc:
            problems = exc.problems
        else:
            batch = outcome.batch
            if outcome.created:
                messages.success(
                    request,
                    f"{batch.file_name} imported: {batch.rows_read} rows read,"
                    f" {batch.rows_created} created, {batch.rows_updated} updated,"
                    f" {batch.rows_unchanged} unchanged.",
                )
            else:
                messages.info(
                    request,
                    f"This file was already imported as batch #{batch.pk} on"
                    f" {batch.created_at:%Y-%m-%d %H:%M} UTC; nothing changed.",
                )
            return redirect("import_detail", pk=batch.pk)
    status = 400 if problems or form.errors else 200
    return render(
        request, "portal/imports/upload.html", {"form": form, "problems": problems}, status=status
    )


@login_required
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require_staff(request.user)
    batch = import_batch_for_user_or_404(request.user, pk)
    context = {
        "batch": batch,
        "breaks": _with_related(batch.breaks.all()),
        "changeable": _changeable(request.user),
        "form": BreakResolveForm(),
    }
    return render(request, "portal/imports/detail.html", context)


@login_required
def break_list(request: HttpRequest) -> HttpResponse:
    _require_staff(request.user)
    status = request.GET.get("status", BreakStatus.OPEN)
    if status not in (BreakStatus.OPEN, BreakStatus.RESOLVED):
        status = BreakStatus.OPEN
    breaks = _with_related(breaks_visible(request.user).filter(status=status))
    context = {
        "breaks": breaks[:500],
        "status": status,
        "changeable": _changeable(request.user),
        "form": BreakResolveForm(),
    }
    return render(request, "portal/imports/breaks.html", context)


@login_required
def household_reconciliation(request: HttpRequest, pk: int) -> HttpResponse:
    household = household_for_user_or_404(request.user, pk)
    _require_staff(request.user)
    return _household_page(request, household, BreakResolveForm(), status=200)


def _household_page(
    request: HttpRequest, household: Household, form: BreakResolveForm, *, status: int
) -> HttpResponse:
    breaks = breaks_visible(request.user).filter(account__household=household)
    context = {
        "household": household,
        "open_breaks": _with_related(breaks.filter(status=BreakStatus.OPEN)),
        "resolved_breaks": _with_related(breaks.filter(status=BreakStatus.RESOLVED))[
            :RESOLVED_SHOWN
        ],
        "changeable": _changeable(request.user),
        "form": form,
    }
    return render(request, "portal/imports/household.html", context, status=status)


@login_required
@require_POST
def break_resolve(request: HttpRequest, pk: int) -> HttpResponseBase:
    _require_staff(request.user)
    brk = break_for_change_or_404(request.user, pk)
    household = brk.account.household
    form = BreakResolveForm(request.POST)
    if form.is_valid():
        try:
            reconciliation_break_resolve(
                brk=brk,
                note=form.cleaned_data["note"],
                actor=request.user,  # type: ignore[arg-type]
            )
        except ValidationError as exc:
            form.add_error(None, "; ".join(exc.messages))
        else:
            messages.success(request, "Break marked resolved.")
            return redirect(reverse("household_reconciliation", args=[household.pk]))
    return _household_page(request, household, form, status=400)
