"""The agent app: its records join the audit tools (exam export, run reconstruction, record
history pages) through the registries those tools offer (docs/audit.md)."""

from __future__ import annotations

from django.apps import AppConfig


class AgentConfig(AppConfig):
    name = "agent"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from agent.audit_sections import register

        register()
