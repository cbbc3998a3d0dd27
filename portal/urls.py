from django.contrib import admin
from django.urls import include, path

from portal import (
    views,
    views_agent,
    views_audit,
    views_exports,
    views_imports,
    views_proposals,
)

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("households/", views.household_list, name="household_list"),
    path("households/<int:pk>/", views.household_detail, name="household_detail"),
    path("households/<int:pk>/ips/", views.ips_page, name="ips_page"),
    path("imports/", views_imports.import_list, name="import_list"),
    path("imports/upload/", views_imports.import_upload, name="import_upload"),
    path("imports/<int:pk>/", views_imports.import_detail, name="import_detail"),
    path("imports/breaks/", views_imports.break_list, name="break_list"),
    path("imports/breaks/<int:pk>/resolve/", views_imports.break_resolve, name="break_resolve"),
    path(
        "households/<int:pk>/reconciliation/",
        views_imports.household_reconciliation,
        name="household_reconciliation",
    ),
    path("households/<int:pk>/runs/", views_proposals.run_scenarios, name="run_scenarios"),
    path(
        "households/<int:pk>/scenarios/", views_proposals.scenario_compare, name="scenario_compare"
    ),
    path("runs/status/", views_proposals.run_status, name="run_status"),
    path("runs/<int:pk>/stage/", views_proposals.run_stage, name="run_stage"),
    path("proposals/", views_proposals.proposal_list, name="proposal_list"),
    path("proposals/bulk-approve/", views_proposals.bulk_approve, name="bulk_approve"),
    path("proposals/<int:pk>/", views_proposals.proposal_detail, name="proposal_detail"),
    path("proposals/<int:pk>/edit/", views_proposals.proposal_edit, name="proposal_edit"),
    path("proposals/<int:pk>/submit/", views_proposals.proposal_submit, name="proposal_submit"),
    path("proposals/<int:pk>/approve/", views_proposals.proposal_approve, name="proposal_approve"),
    path("proposals/<int:pk>/reject/", views_proposals.proposal_reject, name="proposal_reject"),
    path(
        "proposals/<int:pk>/withdraw/", views_proposals.proposal_withdraw, name="proposal_withdraw"
    ),
    path("proposals/<int:pk>/rerun/", views_proposals.proposal_rerun, name="proposal_rerun"),
    path("proposals/<int:pk>/export/", views_exports.proposal_export, name="proposal_export"),
    path(
        "proposals/<int:pk>/files/<str:name>",
        views_exports.export_file_download,
        name="export_file",
    ),
    path("api/", include("portal.api.urls")),
    path("compliance/", views_audit.compliance_home, name="compliance_home"),
    path("compliance/verify/", views_audit.compliance_verify, name="compliance_verify"),
    path("compliance/events/", views_audit.compliance_events, name="compliance_events"),
    path("compliance/changes/", views_audit.compliance_changes, name="compliance_changes"),
    path("compliance/runs/", views_audit.compliance_runs, name="compliance_runs"),
    path("compliance/export/", views_audit.compliance_export, name="compliance_export"),
    path("audit/runs/<int:pk>/", views_audit.run_reconstruction_page, name="run_reconstruction"),
    path(
        "audit/runs/<int:pk>/snapshot.json", views_audit.run_snapshot_download, name="run_snapshot"
    ),
    path("audit/runs/<int:pk>/result.json", views_audit.run_result_download, name="run_result"),
    path("audit/runs/<int:pk>/replay/", views_audit.run_replay_view, name="run_replay"),
    path(
        "audit/households/<int:pk>/as-of/",
        views_audit.household_as_of_page,
        name="household_as_of",
    ),
    path(
        "audit/history/<str:label>/<int:pk>/",
        views_audit.record_history_page,
        name="record_history",
    ),
    path("households/<int:pk>/agent/", views_agent.agent_request, name="agent_request"),
    path("households/<int:pk>/agent/<int:iid>/", views_agent.agent_parse, name="agent_parse"),
    path(
        "households/<int:pk>/agent/<int:iid>/confirm/",
        views_agent.agent_confirm,
        name="agent_confirm",
    ),
    path("agent/runs/<int:pk>/", views_agent.agent_run, name="agent_run"),
    path("agent/runs/<int:pk>/ask/", views_agent.agent_ask, name="agent_ask"),
    path("admin/", admin.site.urls),
]
