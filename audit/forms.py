"""Forms of the compliance pages (filters and the exam export range)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms

from accounts.models import Firm, Household, User
from audit.compliance import EventFilters, firm_event_types


class EventFilterForm(forms.Form):
    actor = forms.ModelChoiceField(queryset=User.objects.none(), required=False, label="Actor")
    type = forms.ChoiceField(required=False, label="Event type")
    household = forms.ModelChoiceField(
        queryset=Household.objects.none(), required=False, label="Household"
    )
    date_from = forms.DateField(required=False, label="From")
    date_to = forms.DateField(required=False, label="To")

    def __init__(self, *args: Any, firm: Firm, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["actor"].queryset = User.objects.filter(firm=firm).order_by("username")  # type: ignore[attr-defined]
        self.fields["household"].queryset = Household.objects.filter(firm=firm).order_by("name")  # type: ignore[attr-defined]
        types = firm_event_types(firm)
        prefixes = sorted({t.split(".", 1)[0] + "." for t in types if "." in t})
        choices: list[tuple[str, str]] = [("", "any")]
        choices += [(p, f"{p}*") for p in prefixes]
        choices += [(t, t) for t in types]
        self.fields["type"].choices = choices  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and end < start:
            raise forms.ValidationError("The range ends before it starts.")
        return data

    def filters(self) -> EventFilters:
        data = self.cleaned_data
        actor, household = data.get("actor"), data.get("household")
        return EventFilters(
            actor_id=actor.pk if actor is not None else None,
            event_type=data.get("type") or "",
            household_id=household.pk if household is not None else None,
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
        )


class ExportForm(forms.Form):
    date_from = forms.DateField(label="From (first day)")
    date_to = forms.DateField(label="To (last day, inclusive)")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if isinstance(start, dt.date) and isinstance(end, dt.date) and end < start:
            raise forms.ValidationError("The range ends before it starts.")
        return data


class AsOfForm(forms.Form):
    when = forms.CharField(
        label="As of", help_text="YYYY-MM-DD (end of that day) or YYYY-MM-DDTHH:MM", max_length=40
    )

    def clean_when(self) -> dt.datetime:
        from audit.asof import parse_moment

        try:
            return parse_moment(self.cleaned_data["when"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
