"""Serializers of the REST API. Money, shares and fractions are exact decimal strings."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.access import can_change_household
from accounts.models import Account, Household, InvestmentPolicy, IPSTarget, TaxLot
from optimizer.models import OptimizationRun
from optimizer.services import SCENARIOS
from portal.models import (
    ExportFile,
    OrderMemorandum,
    Proposal,
    ProposalApproval,
    ProposalEdit,
    ProposalExport,
    ProposalTrade,
)


class HouseholdSerializer(serializers.ModelSerializer[Household]):
    advisers: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        many=True, read_only=True, slug_field="username"
    )
    can_change = serializers.SerializerMethodField()

    class Meta:
        model = Household
        fields = ["id", "name", "is_active", "advisers", "notes", "created_at", "can_change"]

    def get_can_change(self, obj: Household) -> bool:
        return can_change_household(self.context["request"].user, obj)


class AccountSerializer(serializers.ModelSerializer[Account]):
    custodian: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        read_only=True, slug_field="code"
    )

    class Meta:
        model = Account
        fields = [
            "id",
            "household",
            "custodian",
            "number",
            "name",
            "registration",
            "tax_treatment",
            "cash",
            "allows_fractional",
            "opened",
            "is_active",
        ]


class TaxLotSerializer(serializers.ModelSerializer[TaxLot]):
    symbol = serializers.CharField(source="security.symbol", read_only=True)
    household = serializers.IntegerField(source="account.household_id", read_only=True)

    class Meta:
        model = TaxLot
        fields = [
            "id",
            "account",
            "household",
            "symbol",
            "lot_ref",
            "quantity",
            "cost_basis",
            "acquired",
            "holding_period_start",
            "wash_sale_adjustment",
            "closed_on",
        ]


class IPSTargetSerializer(serializers.ModelSerializer[IPSTarget]):
    asset_class: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        read_only=True, slug_field="code"
    )
    security: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        read_only=True, slug_field="symbol"
    )

    class Meta:
        model = IPSTarget
        fields = ["asset_class", "security", "weight", "band"]


class InvestmentPolicySerializer(serializers.ModelSerializer[InvestmentPolicy]):
    targets = IPSTargetSerializer(many=True, read_only=True)

    class Meta:
        model = InvestmentPolicy
        fields = [
            "id",
            "household",
            "version",
            "effective_date",
            "cash_floor",
            "default_band",
            "st_rate",
            "lt_rate",
            "annual_gain_budget",
            "model_portfolio",
            "objectives",
            "created_at",
            "targets",
        ]


class RunSerializer(serializers.ModelSerializer[OptimizationRun]):
    requested_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        read_only=True, slug_field="username"
    )

    class Meta:
        model = OptimizationRun
        fields = [
            "id",
            "household",
            "scenario",
            "mode",
            "status",
            "as_of",
            "requested_by",
            "request_text",
            "ips",
            "snapshot_sha256",
            "result_sha256",
            "summary",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]


class RunCreateSerializer(serializers.Serializer[Any]):
    household = serializers.IntegerField()
    scenario = serializers.ChoiceField(choices=[s for s in SCENARIOS if s != "custom"])
    idempotency_key = serializers.CharField(max_length=100, required=False)


class ProposalTradeSerializer(serializers.ModelSerializer[ProposalTrade]):
    symbol = serializers.CharField(source="security.symbol", read_only=True)
    account_number = serializers.CharField(source="account.number", read_only=True)

    class Meta:
        model = ProposalTrade
        fields = [
            "id",
            "position",
            "account",
            "account_number",
            "snapshot_account",
            "symbol",
            "side",
            "shares",
            "original_shares",
            "dropped",
            "price",
            "estimated_value",
            "cost",
            "ticket_fee",
            "realized_gain",
            "realized_short_term",
            "realized_long_term",
            "lots",
        ]


class ApprovalSerializer(serializers.ModelSerializer[ProposalApproval]):
    approver: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        read_only=True, slug_field="username"
    )

    class Meta:
        model = ProposalApproval
        fields = [
            "id",
            "proposal",
            "step",
            "approver",
            "role",
            "proposal_version",
            "comment",
            "created_at",
        ]


class EditSerializer(serializers.ModelSerializer[ProposalEdit]):
    editor: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        read_only=True, slug_field="username"
    )

    class Meta:
        model = ProposalEdit
        fields = ["id", "editor", "from_version", "to_version", "changes", "note", "created_at"]


_PROPOSAL_FIELDS = [
    "id",
    "household",
    "run",
    "scenario",
    "status",
    "version",
    "prepared_by",
    "snapshot_sha256",
    "as_of",
    "realized_net",
    "realized_short_term_gain",
    "estimated_tax",
    "turnover",
    "trading_cost",
    "tickets",
    "requires_four_eyes",
    "four_eyes_reasons",
    "edited",
    "submitted_at",
    "decided_by",
    "decided_at",
    "decision_comment",
    "superseded_by",
    "created_at",
    "updated_at",
]


class ProposalSerializer(serializers.ModelSerializer[Proposal]):
    prepared_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        read_only=True, slug_field="username"
    )
    decided_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        read_only=True, slug_field="username"
    )

    class Meta:
        model = Proposal
        fields = _PROPOSAL_FIELDS


class ProposalDetailSerializer(ProposalSerializer):
    trades = ProposalTradeSerializer(many=True, read_only=True)
    approvals = ApprovalSerializer(many=True, read_only=True)
    edits = EditSerializer(many=True, read_only=True)

    class Meta:
        model = Proposal
        fields = [
            *_PROPOSAL_FIELDS,
            "metrics",
            "binding_constraints",
            "flags",
            "facts",
            "restricted_symbols",
            "trades",
            "approvals",
            "edits",
        ]


class StageSerializer(serializers.Serializer[Any]):
    run = serializers.IntegerField(help_text="A succeeded run of a household you advise.")


class VersionSerializer(serializers.Serializer[Any]):
    version = serializers.IntegerField(
        required=False, min_value=1, help_text="The version you reviewed; refused if it moved on."
    )


class ApproveSerializer(VersionSerializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class RejectSerializer(VersionSerializer):
    comment = serializers.CharField(max_length=2000)


class TradeChangeSerializer(serializers.Serializer[Any]):
    trade = serializers.IntegerField()
    shares = serializers.DecimalField(max_digits=20, decimal_places=6, required=False, min_value=0)
    drop = serializers.BooleanField(required=False, default=False)
    lots = serializers.DictField(
        child=serializers.DecimalField(max_digits=20, decimal_places=6, min_value=0),
        required=False,
        help_text="Sells only: exact shares per lot id (the snapshot's lot ids).",
    )


class EditInputSerializer(VersionSerializer):
    changes = TradeChangeSerializer(many=True)
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class StaleSerializer(serializers.Serializer[Any]):
    stale = serializers.BooleanField()
    changes = serializers.ListField(child=serializers.CharField())


class RefusalSerializer(serializers.Serializer[Any]):
    detail = serializers.CharField()
    details = serializers.ListField(child=serializers.CharField())


class ExportFileSerializer(serializers.ModelSerializer[ExportFile]):
    proposal = serializers.IntegerField(source="export.proposal_id", read_only=True)
    download = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportFile
        fields = [
            "id",
            "proposal",
            "kind",
            "name",
            "content_type",
            "sha256",
            "size",
            "order_count",
            "total_shares",
            "created_at",
            "download",
            "page_url",
        ]

    def get_download(self, obj: ExportFile) -> str:
        """The API download (token or session auth)."""
        from django.urls import reverse

        return reverse("api-export-file-download", args=[obj.pk])

    def get_page_url(self, obj: ExportFile) -> str:
        """The portal's download link (session auth)."""
        from django.urls import reverse

        return reverse("export_file", args=[obj.export.proposal_id, obj.name])


class ProposalExportSerializer(serializers.ModelSerializer[ProposalExport]):
    exported_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        read_only=True, slug_field="username"
    )
    files = ExportFileSerializer(many=True, read_only=True)

    class Meta:
        model = ProposalExport
        fields = [
            "id",
            "proposal",
            "proposal_version",
            "exported_by",
            "entered_at",
            "snapshot_sha256",
            "manifest_sha256",
            "order_count",
            "block_count",
            "total_shares",
            "files",
        ]


class OrderMemorandumSerializer(serializers.ModelSerializer[OrderMemorandum]):
    recommended_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        read_only=True, slug_field="username"
    )
    approved_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        read_only=True, slug_field="username"
    )
    second_approved_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        read_only=True, slug_field="username"
    )
    placed_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        read_only=True, slug_field="username"
    )

    class Meta:
        model = OrderMemorandum
        fields = [
            "id",
            "proposal",
            "order_id",
            "block_id",
            "account",
            "account_number",
            "custodian",
            "symbol",
            "side",
            "quantity",
            "order_type",
            "time_in_force",
            "limit_price",
            "estimated_price",
            "estimated_value",
            "lots",
            "recommended_by",
            "approved_by",
            "second_approved_by",
            "placed_by",
            "entered_at",
            "discretionary",
        ]
