"""Staged proposals and their review: the workflow records (see ``docs/proposals.md``).

A ``Proposal`` is staged from one succeeded ``OptimizationRun`` (one scenario) and carries that
run's trades as ``ProposalTrade`` rows (per account, security and side; sells keep their lot
detail in exact decimal strings). Every change goes through ``portal.services``: states move
only by the ``proposal_<verb>`` services, each of which writes history and an audit event.

``version`` grows by one with every change of a proposal (edit, submit, approval, decision):
a form or API call that names the version it saw is refused when the proposal has moved on,
so two people acting at once cannot both win.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from accounts.models import fraction_field, money_field, price_field, quantity_field

ZERO = Decimal("0")


class ProposalStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING_REVIEW = "pending_review", "Pending review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
    EXPORTED = "exported", "Exported"
    SUPERSEDED = "superseded", "Superseded"


OPEN_STATUSES = (ProposalStatus.DRAFT, ProposalStatus.PENDING_REVIEW)
CLIENT_VISIBLE_STATUSES = (ProposalStatus.APPROVED, ProposalStatus.EXPORTED)
REVIEW_FLAG_KINDS = frozenset(
    {"near_long_term", "harvest_blocked_wash_sale", "buy_blocked_wash_sale", "large_trade_list"}
)


class Proposal(models.Model):
    household = models.ForeignKey(
        "accounts.Household", on_delete=models.PROTECT, related_name="proposals"
    )
    run = models.ForeignKey(
        "optimizer.OptimizationRun", on_delete=models.PROTECT, related_name="proposals"
    )
    scenario = models.CharField(max_length=40)
    status = models.CharField(
        max_length=20, choices=ProposalStatus.choices, default=ProposalStatus.DRAFT
    )
    version = models.PositiveIntegerField(default=1)
    prepared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="prepared_proposals"
    )
    snapshot_sha256 = models.CharField(max_length=64)
    as_of = models.DateField()
    # The current figures (recomputed by the independent checker's metrics after every edit).
    metrics = models.JSONField(default=dict, blank=True)
    binding_constraints = models.JSONField(default=list, blank=True)
    facts = models.JSONField(default=list, blank=True)
    flags = models.JSONField(default=list, blank=True)
    realized_net = money_field(default=ZERO, help_text="Net realized gain, taxable accounts.")
    realized_short_term_gain = money_field(
        default=ZERO, help_text="Short-term gains realized in taxable accounts (before losses)."
    )
    estimated_tax = money_field(default=ZERO)
    turnover = fraction_field(default=ZERO)
    trading_cost = money_field(default=ZERO)
    tickets = models.PositiveIntegerField(default=0)
    restricted_symbols = models.JSONField(default=list, blank=True)
    requires_four_eyes = models.BooleanField(default=False)
    four_eyes_reasons = models.JSONField(default=list, blank=True)
    edited = models.BooleanField(default=False)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True)
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="supersedes"
    )
    exported_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["household", "status"])]
        constraints = [
            models.UniqueConstraint(fields=["run"], name="proposal_one_per_run"),
            models.CheckConstraint(
                condition=~Q(status__in=["approved", "rejected", "exported"])
                | Q(decided_at__isnull=False),
                name="proposal_decision_has_time",
            ),
        ]

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_vanilla(self) -> bool:
        """Approvable in bulk: open, no review flag, no four-eyes rule, nothing approved yet."""
        return (
            self.is_open
            and not self.requires_four_eyes
            and not self.review_flags()
            and not self.approvals.exists()
        )

    def review_flags(self) -> list[dict[str, Any]]:
        """The optimizer's flags that ask for a human look (restricted positions that were not
        traded and informational wash-sale windows do not)."""
        return [f for f in self.flags if f.get("kind") in REVIEW_FLAG_KINDS]

    def __str__(self) -> str:
        return f"proposal {self.pk} {self.scenario} ({self.status})"


class TradeSide(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"


class ProposalTrade(models.Model):
    """One order of a proposal. ``original_shares`` is what the optimizer proposed; ``shares``
    the current quantity (an edit changes it, or drops the order). ``lots`` lists the lot sales
    of a sell: ``{lot_id, taxlot, lot_ref, shares, proceeds, cost_basis, realized_gain, term,
    holding_days, taxable}`` with money and shares as exact decimal strings."""

    proposal = models.ForeignKey(Proposal, on_delete=models.CASCADE, related_name="trades")
    position = models.PositiveIntegerField()
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="+")
    security = models.ForeignKey("accounts.Security", on_delete=models.PROTECT, related_name="+")
    snapshot_account = models.CharField(max_length=80)
    side = models.CharField(max_length=4, choices=TradeSide.choices)
    shares = quantity_field()
    original_shares = quantity_field()
    dropped = models.BooleanField(default=False)
    price = price_field()
    estimated_value = money_field()
    cost = money_field()
    ticket_fee = money_field()
    realized_gain = money_field(null=True, blank=True)
    realized_short_term = money_field(null=True, blank=True)
    realized_long_term = money_field(null=True, blank=True)
    lots = models.JSONField(default=list, blank=True)
    original_lots = models.JSONField(default=list, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["proposal", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["proposal", "account", "security", "side"], name="proposal_trade_unique"
            ),
            models.CheckConstraint(condition=Q(shares__gte=0), name="proposal_trade_shares_ge0"),
        ]

    @property
    def is_edited(self) -> bool:
        return self.dropped or self.shares != self.original_shares

    def __str__(self) -> str:
        return f"{self.side} {self.shares} {self.security_id} in {self.account_id}"


class ApprovalStep(models.TextChoices):
    FIRST = "first", "Approval"
    SECOND = "second", "Second approval (four-eyes)"


class ProposalApproval(models.Model):
    """An approval of one version of a proposal. One row per step: a double click, or two
    approvers at once, can never record two approvals of the same step."""

    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="approvals")
    step = models.CharField(max_length=10, choices=ApprovalStep.choices)
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="proposal_approvals"
    )
    role = models.CharField(max_length=20)
    proposal_version = models.PositiveIntegerField()
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["proposal", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["proposal", "step"], name="approval_one_per_step"),
            models.UniqueConstraint(
                fields=["proposal", "approver"], name="approval_one_per_approver"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.step} approval of proposal {self.proposal_id} by {self.approver_id}"


class ProposalEdit(models.Model):
    """One edit of a proposal's trades, with the figures before and after it."""

    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="edits")
    editor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    from_version = models.PositiveIntegerField()
    to_version = models.PositiveIntegerField()
    changes = models.JSONField(default=list)
    note = models.TextField(blank=True)
    metrics_before = models.JSONField(default=dict)
    metrics_after = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["proposal", "created_at", "id"]

    def __str__(self) -> str:
        return f"edit {self.from_version}->{self.to_version} of proposal {self.proposal_id}"


# --------------------------------------------------------------------------- exports


class ExportKind(models.TextChoices):
    RATIONALE_PDF = "rationale_pdf", "Client PDF rationale"
    SCHWAB_TRADES = "schwab_trades", "Schwab-style trade file"
    SCHWAB_LOTS = "schwab_lots", "Schwab-style lot instructions"
    FIDELITY_ORDERS = "fidelity_orders", "Fidelity import orders"
    GENERIC_ORDERS = "generic_orders", "Orders (generic CSV)"
    GENERIC_LOTS = "generic_lots", "Lot instructions (generic CSV)"
    BLOCKS = "blocks", "Block orders and allocations"
    ORDER_MEMORANDUM = "order_memorandum", "Order memorandum"
    MANIFEST = "manifest", "Manifest (hashes and control totals)"


CLIENT_FILE_KINDS = (ExportKind.RATIONALE_PDF,)


class ProposalExport(models.Model):
    """The one export of an approved proposal: its files, order memoranda and manifest. A
    proposal is exported once; exporting again returns this record (no second set of orders)."""

    proposal = models.OneToOneField(Proposal, on_delete=models.PROTECT, related_name="export")
    proposal_version = models.PositiveIntegerField()
    exported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    entered_at = models.DateTimeField(help_text="When the orders were entered (the export).")
    snapshot_sha256 = models.CharField(max_length=64)
    manifest_sha256 = models.CharField(max_length=64)
    order_count = models.PositiveIntegerField()
    block_count = models.PositiveIntegerField()
    total_shares = quantity_field()
    history = HistoricalRecords()

    class Meta:
        ordering = ["-entered_at", "-id"]

    def __str__(self) -> str:
        return f"export of proposal {self.proposal_id}"


class ExportFile(models.Model):
    """One exported file, stored byte for byte: a download returns exactly these bytes, whose
    SHA-256 is recorded here, in the export's manifest and in the audit event. Immutable."""

    export = models.ForeignKey(ProposalExport, on_delete=models.PROTECT, related_name="files")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=30, choices=ExportKind.choices)
    name = models.CharField(max_length=200, unique=True)
    content_type = models.CharField(max_length=100)
    content = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    order_count = models.PositiveIntegerField(default=0)
    total_shares = quantity_field(default=ZERO)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["export", "position"]
        constraints = [
            models.UniqueConstraint(fields=["export", "position"], name="export_file_position"),
            models.UniqueConstraint(fields=["export", "kind"], name="export_file_one_per_kind"),
        ]

    @property
    def client_visible(self) -> bool:
        return self.kind in CLIENT_FILE_KINDS

    def save(self, *args: Any, **kwargs: Any) -> None:
        from django.core.exceptions import ValidationError

        from audit.canonical import sha256_hex

        if not self._state.adding:
            raise ValidationError("An exported file is immutable.")
        if sha256_hex(bytes(self.content)) != self.sha256:
            raise ValidationError({"sha256": "does not match the content"})
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        from django.core.exceptions import ValidationError

        raise ValidationError("An exported file is kept for the retention period.")

    def __str__(self) -> str:
        return self.name


class OrderMemorandum(models.Model):
    """The memorandum of one order (SEC Rule 204-2(a)(3)): its terms, who recommended it, who
    approved it, who entered (placed) it, the account, when it was entered, and whether the
    firm used discretion. Written once with the export; never changed."""

    export = models.ForeignKey(ProposalExport, on_delete=models.PROTECT, related_name="memoranda")
    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="memoranda")
    trade = models.OneToOneField(ProposalTrade, on_delete=models.PROTECT, related_name="memorandum")
    order_id = models.CharField(max_length=40, unique=True)
    block_id = models.CharField(max_length=40)
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="+")
    account_number = models.CharField(max_length=40)
    custodian = models.CharField(max_length=40)
    security = models.ForeignKey("accounts.Security", on_delete=models.PROTECT, related_name="+")
    symbol = models.CharField(max_length=20)
    side = models.CharField(max_length=4, choices=TradeSide.choices)
    quantity = quantity_field()
    order_type = models.CharField(max_length=10)
    time_in_force = models.CharField(max_length=10)
    limit_price = price_field(null=True, blank=True)
    estimated_price = price_field()
    estimated_value = money_field()
    lots = models.JSONField(default=list, blank=True)
    recommended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    second_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    entered_at = models.DateTimeField()
    discretionary = models.BooleanField()
    history = HistoricalRecords()

    class Meta:
        ordering = ["export", "order_id"]

    def __str__(self) -> str:
        return f"memorandum {self.order_id}"
