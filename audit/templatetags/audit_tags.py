"""Template helpers of the audit pages."""

from __future__ import annotations

import json
from typing import Any

from django import template

from audit.asof import history_model_entry

register = template.Library()


@register.filter
def audit_json(value: Any) -> str:
    """Compact JSON with sorted keys (an event's data, overrides)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


@register.filter
def has_history_page(label: str) -> bool:
    return history_model_entry(str(label)) is not None


@register.filter
def history_kind(code: str) -> str:
    return {"+": "created", "~": "changed", "-": "deleted"}.get(str(code), str(code))


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    if isinstance(mapping, dict):
        return mapping.get(key)
    return None
