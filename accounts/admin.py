"""Django admin for staff, with history on every model and an audit event for every change."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.db.models import Model
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from accounts import models as m
from accounts.services import field_values, firm_of
from audit.retention import RetentionAdminMixin
from audit.services import audit_record


class AuditedAdmin(RetentionAdminMixin, SimpleHistoryAdmin):
    """Admin saves run full_clean (ModelForm) and append an audit event in the same transaction;
    records under retention cannot be deleted (audit.retention)."""

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,  # type: ignore[arg-type]
            event_type=f"admin.{obj._meta.model_name}.{'changed' if change else 'created'}",
            firm=firm_of(obj),
            obj=obj,
            data={"fields": sorted(form.changed_data), "after": field_values(obj)},
        )

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        audit_record(
            actor=request.user,  # type: ignore[arg-type]
            event_type=f"admin.{obj._meta.model_name}.deleted",
            firm=firm_of(obj),
            obj=obj,
            data={"before": field_values(obj)},
        )
        super().delete_model(request, obj)


class WeightsSumToOne(BaseInlineFormSet):
    """An inline of target weights must sum to exactly 100%."""

    def clean(self) -> None:
        super().clean()
        total = Decimal("0")
        rows = 0
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or form.cleaned_data.get("DELETE"):
                continue
            weight = form.cleaned_data.get("weight")
            if weight is None:
                continue
            rows += 1
            total += weight
        if rows and total != Decimal("1"):
            raise ValidationError(
                f"weight: the targets sum to {total * 100:.4f}%; they must sum to exactly 100%."
            )


class IPSTargetInline(admin.TabularInline):
    model = m.IPSTarget
    formset = WeightsSumToOne
    extra = 0


class ModelTargetInline(admin.TabularInline):
    model = m.ModelPortfolioTarget
    formset = WeightsSumToOne
    extra = 0


@admin.register(m.User)
class UserAdmin(DjangoUserAdmin, AuditedAdmin):
    list_display = ("username", "first_name", "last_name", "role", "firm", "household", "is_staff")
    list_filter = ("role", "firm", "is_staff")
    fieldsets = (
        *DjangoUserAdmin.fieldsets,  # type: ignore[misc]
        ("Portal role", {"fields": ("firm", "role", "household")}),
    )


@admin.register(m.Firm)
class FirmAdmin(AuditedAdmin):
    list_display = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(m.Household)
class HouseholdAdmin(AuditedAdmin):
    list_display = ("name", "firm", "is_active")
    list_filter = ("firm", "is_active")
    search_fields = ("name",)
    filter_horizontal = ("advisers",)


@admin.register(m.Client)
class ClientAdmin(AuditedAdmin):
    list_display = ("last_name", "first_name", "household")
    search_fields = ("last_name", "first_name")


@admin.register(m.Custodian)
class CustodianAdmin(AuditedAdmin):
    list_display = ("name", "code", "allows_fractional")


@admin.register(m.Account)
class AccountAdmin(AuditedAdmin):
    list_display = (
        "number",
        "name",
        "household",
        "custodian",
        "registration",
        "tax_treatment",
        "cash",
    )
    list_filter = ("custodian", "registration", "tax_treatment")
    search_fields = ("number", "name", "household__name")


@admin.register(m.AssetClass)
class AssetClassAdmin(AuditedAdmin):
    list_display = ("code", "name", "sort_order", "is_cash")


@admin.register(m.Security)
class SecurityAdmin(AuditedAdmin):
    list_display = ("symbol", "name", "kind", "asset_class", "identical_group", "cusip")
    list_filter = ("kind", "asset_class")
    search_fields = ("symbol", "name", "cusip")


@admin.register(m.Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = ("security", "date", "close", "source")
    list_filter = ("source",)
    search_fields = ("security__symbol",)
    date_hierarchy = "date"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(m.TaxLot)
class TaxLotAdmin(AuditedAdmin):
    list_display = (
        "lot_ref",
        "account",
        "security",
        "quantity",
        "cost_basis",
        "acquired",
        "closed_on",
    )
    list_filter = ("account__custodian",)
    search_fields = ("lot_ref", "security__symbol", "account__number")


@admin.register(m.Transaction)
class TransactionAdmin(AuditedAdmin):
    list_display = ("trade_date", "account", "kind", "security", "quantity", "price", "amount")
    list_filter = ("kind",)
    search_fields = ("account__number", "security__symbol", "external_id")
    date_hierarchy = "trade_date"


@admin.register(m.InvestmentPolicy)
class InvestmentPolicyAdmin(AuditedAdmin):
    list_display = ("household", "version", "effective_date", "cash_floor", "annual_gain_budget")
    inlines = [IPSTargetInline]


@admin.register(m.ModelPortfolio)
class ModelPortfolioAdmin(AuditedAdmin):
    list_display = ("name", "version", "firm", "effective_date")
    inlines = [ModelTargetInline]


@admin.register(m.Restriction)
class RestrictionAdmin(AuditedAdmin):
    list_display = ("household", "security", "kind", "reason", "start_date", "end_date")
    list_filter = ("kind", "reason")
