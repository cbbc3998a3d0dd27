"""Forms of the custodian-import pages."""

from __future__ import annotations

from typing import Any

from django import forms

from accounts.importing import DEFAULT_TOLERANCE, MAX_FILE_BYTES
from accounts.models import ImportFormat, ImportKind


class ImportUploadForm(forms.Form):
    file_format = forms.ChoiceField(label="Format", choices=ImportFormat.choices)
    kind = forms.ChoiceField(
        label="Kind",
        choices=[("", "Tell from the file's header"), *ImportKind.choices],
        required=False,
    )
    file = forms.FileField(label="File (CSV)")
    tolerance = forms.DecimalField(
        label="Reconciliation tolerance (shares)",
        min_value=0,
        max_digits=12,
        decimal_places=6,
        initial=DEFAULT_TOLERANCE,
        help_text="Positions files: a difference up to this many shares is not a break.",
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_FILE_BYTES:
            raise forms.ValidationError(
                f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB."
            )
        return upload


class BreakResolveForm(forms.Form):
    note = forms.CharField(
        label="How was it resolved?",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say how the break was resolved."},
    )
