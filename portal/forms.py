from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.utils import timezone

from accounts.models import AssetClass


class IPSVersionForm(forms.Form):
    """A new IPS version: asset-class targets in percent, with the policy's rates and limits."""

    effective_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    cash_floor_pct = forms.DecimalField(
        label="Cash floor (%)", min_value=0, max_value=100, decimal_places=4
    )
    default_band_pct = forms.DecimalField(
        label="Drift band (± %)", min_value=0, max_value=100, decimal_places=4
    )
    st_rate_pct = forms.DecimalField(
        label="Short-term rate (%)", min_value=0, max_value=100, decimal_places=4
    )
    lt_rate_pct = forms.DecimalField(
        label="Long-term rate (%)", min_value=0, max_value=100, decimal_places=4
    )
    annual_gain_budget = forms.DecimalField(
        label="Annual gain budget ($)", min_value=0, decimal_places=2, required=False
    )
    objectives = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

    def __init__(self, *args: Any, asset_classes: list[AssetClass], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asset_classes = asset_classes
        for ac in asset_classes:
            self.fields[f"target_{ac.code}"] = forms.DecimalField(
                label=f"{ac.name} (%)",
                min_value=0,
                max_value=100,
                decimal_places=4,
                required=False,
            )

    def clean_effective_date(self) -> Any:
        value = self.cleaned_data["effective_date"]
        if value > timezone.localdate() + dt.timedelta(days=366):
            raise forms.ValidationError("The effective date is more than a year ahead.")
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        total = Decimal("0")
        for ac in self.asset_classes:
            value = data.get(f"target_{ac.code}")
            if value:
                total += value
        if total != Decimal("100"):
            raise forms.ValidationError(
                f"Targets: the asset-class targets sum to {total}%; they must sum to exactly 100%."
            )
        return data

    def targets(self) -> list[tuple[AssetClass, Decimal]]:
        rows = []
        for ac in self.asset_classes:
            value = self.cleaned_data.get(f"target_{ac.code}")
            if value:
                rows.append((ac, _fraction(value)))
        return rows

    def fraction(self, name: str) -> Decimal:
        return _fraction(self.cleaned_data[name])


def _fraction(percent: Decimal) -> Decimal:
    try:
        return (percent / Decimal(100)).quantize(Decimal("0.000001"))
    except InvalidOperation as exc:  # pragma: no cover - bounded by the field validators
        raise forms.ValidationError(str(exc)) from None


# --------------------------------------------------------------------------- proposals

SCENARIO_CHOICES = [
    ("conservative", "Conservative: minimize tax"),
    ("moderate", "Moderate"),
    ("aggressive", "Aggressive: complete most of the transition"),
    ("tax_sensitive", "Tax-sensitive: harvest losses to offset gains"),
]


class RunScenariosForm(forms.Form):
    """Run one or more preset scenarios; ``token`` makes a double submit start nothing twice."""

    scenarios = forms.MultipleChoiceField(
        choices=SCENARIO_CHOICES, widget=forms.CheckboxSelectMultiple
    )
    token = forms.UUIDField(widget=forms.HiddenInput)


class VersionedForm(forms.Form):
    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)


class ApproveForm(VersionedForm):
    comment = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )


class RejectForm(VersionedForm):
    comment = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required: say why the proposal is rejected.",
    )


class WithdrawForm(VersionedForm):
    comment = forms.CharField(required=False, max_length=2000)


class EditTradesForm(VersionedForm):
    """Per trade: ``shares_<id>`` (the new quantity) and ``drop_<id>``."""

    note = forms.CharField(required=False, max_length=2000)

    def __init__(self, *args: Any, trades: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trades = trades
        for trade in trades:
            self.fields[f"shares_{trade.pk}"] = forms.DecimalField(
                min_value=0, decimal_places=6, max_digits=20, required=False
            )
            self.fields[f"drop_{trade.pk}"] = forms.BooleanField(required=False)

    def changes(self) -> list[tuple[Any, Decimal | None, bool]]:
        """(trade, new shares or None, drop) for every trade the form changes."""
        out: list[tuple[Any, Decimal | None, bool]] = []
        for trade in self.trades:
            drop = bool(self.cleaned_data.get(f"drop_{trade.pk}"))
            shares = self.cleaned_data.get(f"shares_{trade.pk}")
            if drop and not trade.dropped:
                out.append((trade, None, True))
            elif shares is not None and (shares != trade.shares or (trade.dropped and not drop)):
                if shares == 0:
                    out.append((trade, None, True))
                else:
                    out.append((trade, shares, False))
        return out


class BulkApproveForm(forms.Form):
    """``pick`` values are ``<proposal id>:<version>``; ``confirm`` is the second step."""

    pick = forms.MultipleChoiceField(choices=[], widget=forms.CheckboxSelectMultiple)
    confirm = forms.BooleanField(required=False)

    def __init__(self, *args: Any, choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["pick"].choices = choices  # type: ignore[attr-defined]

    def picked(self) -> list[tuple[int, int]]:
        out = []
        for value in self.cleaned_data["pick"]:
            pk, version = value.split(":")
            out.append((int(pk), int(version)))
        return out
