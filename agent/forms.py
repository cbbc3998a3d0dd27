"""The agent's forms: a plain-language request, its confirmation, a follow-up question."""

from __future__ import annotations

import re

from django import forms

from agent.parser import MAX_REQUEST_CHARS
from agent.services import MAX_QUESTION_CHARS

_TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")


class AgentRequestForm(forms.Form):
    text = forms.CharField(
        label="Request",
        max_length=MAX_REQUEST_CHARS,
        strip=True,
        widget=forms.Textarea(
            attrs={
                "rows": 3,
                "placeholder": (
                    "e.g. Create a scenario with $25K in max gains, restrict AAPL from selling, "
                    "and no short-term gains"
                ),
            }
        ),
    )


class AgentConfirmForm(forms.Form):
    """The token makes a double click start one run, and a later confirmation a new one."""

    token = forms.CharField(widget=forms.HiddenInput, max_length=32)

    def clean_token(self) -> str:
        token = str(self.cleaned_data["token"])
        if not _TOKEN_RE.match(token):
            raise forms.ValidationError("Invalid confirmation token; reload the page.")
        return token


class AgentQuestionForm(forms.Form):
    question = forms.CharField(
        label="Ask about this run",
        max_length=MAX_QUESTION_CHARS,
        strip=True,
        widget=forms.TextInput(
            attrs={"placeholder": "e.g. Why is tracking error still this high despite the tax?"}
        ),
    )
