"""REST API views. Every queryset comes from the access helpers (``accounts.access``,
``portal.access``), so an object outside the user's firm or household is a 404, exactly as
in the pages; every write goes through the same services as the pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.access import (
    accounts_visible,
    can_change_household,
    households_visible,
    lots_visible,
    policies_visible,
)
from accounts.models import User
from optimizer.models import OptimizationRun
from optimizer.services import run_request
from portal import lockout
from portal import services as wf
from portal.access import (
    approvals_visible,
    export_files_visible,
    memoranda_visible,
    proposals_visible,
    runs_visible,
)
from portal.api import serializers as s
from portal.exports.services import ExportRefused, export_proposal
from portal.models import Proposal, ProposalExport
from portal.selectors import stale_changes
from portal.views_exports import stored_file_response


@dataclass(frozen=True)
class Filter:
    """A query parameter: ``?name=value`` filters on the ORM ``lookup``."""

    name: str
    lookup: str
    kind: str  # int | str | bool | date
    description: str

    def parse(self, raw: str) -> Any:
        try:
            if self.kind == "int":
                return int(raw)
            if self.kind == "bool":
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(raw)
                return raw.lower() in ("true", "1")
            if self.kind == "date":
                return dt.date.fromisoformat(raw)
        except ValueError:
            raise ValidationError({self.name: f"{raw!r} is not a valid {self.kind}."}) from None
        return raw


_TYPES = {
    "int": OpenApiTypes.INT,
    "str": OpenApiTypes.STR,
    "bool": OpenApiTypes.BOOL,
    "date": OpenApiTypes.DATE,
}


def filtered(*filters: Filter) -> Callable[[type], type]:
    """Attach the filters to a viewset and document them in the schema of its list view."""

    def wrap(cls: type) -> type:
        cls.filters = filters  # type: ignore[attr-defined]
        return extend_schema_view(
            list=extend_schema(
                parameters=[
                    OpenApiParameter(f.name, _TYPES[f.kind], description=f.description)
                    for f in filters
                ]
            )
        )(cls)

    return wrap


class FilterMixin(GenericAPIView[Any]):
    filters: tuple[Filter, ...] = ()

    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        for f in self.filters:
            raw = self.request.query_params.get(f.name)
            if raw not in (None, ""):
                queryset = queryset.filter(**{f.lookup: f.parse(str(raw))})
        return queryset


def _actor(request: Request) -> User:
    """The authenticated user (every view here requires authentication)."""
    return cast(User, request.user)


def _refusal(exc: wf.WorkflowError) -> Response:
    return Response({"detail": exc.message, "details": exc.details}, status=exc.status)


@filtered(
    Filter("name", "name__icontains", "str", "Part of the household name."),
    Filter("is_active", "is_active", "bool", "Active households only (true) or inactive."),
)
class HouseholdViewSet(FilterMixin, viewsets.ReadOnlyModelViewSet[Any]):
    """Households of your firm (a client sees their own)."""

    serializer_class = s.HouseholdSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return households_visible(self.request.user).prefetch_related("advisers").order_by("name")


@filtered(
    Filter("household", "household_id", "int", "Household id."),
    Filter("custodian", "custodian__code", "str", "Custodian code, e.g. schwab."),
    Filter("tax_treatment", "tax_treatment", "str", "taxable, deferred or exempt."),
)
class AccountViewSet(FilterMixin, viewsets.ReadOnlyModelViewSet[Any]):
    """Custodial accounts of the households you may read (cash in dollars)."""

    serializer_class = s.AccountSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return accounts_visible(self.request.user).select_related("custodian").order_by("pk")


@filtered(
    Filter("account", "account_id", "int", "Account id."),
    Filter("household", "account__household_id", "int", "Household id."),
    Filter("symbol", "security__symbol", "str", "Ticker."),
    Filter("open", "closed_on__isnull", "bool", "Open lots only (true) or closed (false)."),
)
class LotViewSet(FilterMixin, viewsets.ReadOnlyModelViewSet[Any]):
    """Tax lots: quantity, total cost basis, acquisition and holding-period dates."""

    serializer_class = s.TaxLotSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return lots_visible(self.request.user).select_related("security", "account").order_by("pk")


@filtered(Filter("household", "household_id", "int", "Household id."))
class InvestmentPolicyViewSet(FilterMixin, viewsets.ReadOnlyModelViewSet[Any]):
    """IPS versions (the one in force is the latest effective on or before a day)."""

    serializer_class = s.InvestmentPolicySerializer

    def get_queryset(self) -> QuerySet[Any]:
        return (
            policies_visible(self.request.user)
            .prefetch_related("targets__asset_class", "targets__security")
            .order_by("household_id", "-version")
        )


@filtered(
    Filter("household", "household_id", "int", "Household id."),
    Filter("scenario", "scenario", "str", "conservative, moderate, aggressive, tax_sensitive."),
    Filter("status", "status", "str", "queued, running, succeeded, infeasible, blocked, failed."),
)
class RunViewSet(
    FilterMixin,
    mixins.CreateModelMixin,
    viewsets.ReadOnlyModelViewSet[Any],
):
    """Optimization runs (firm staff). POST requests a run of a preset scenario; it runs on
    Celery and its ``status`` says when it is done."""

    serializer_class = s.RunSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return runs_visible(self.request.user).select_related("requested_by").order_by("-pk")

    @extend_schema(request=s.RunCreateSerializer, responses={201: s.RunSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = s.RunCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        household = (
            households_visible(request.user).filter(pk=data.validated_data["household"]).first()
        )
        if household is None:
            raise Http404("No such household")
        if not can_change_household(request.user, household):
            raise PermissionDenied("Only an adviser assigned to this household may run scenarios.")
        key = data.validated_data.get("idempotency_key")
        run = run_request(
            household=household,
            scenario=data.validated_data["scenario"],
            actor=_actor(request),
            idempotency_key=f"api-{household.pk}-{request.user.pk}-{key}" if key else None,
        )
        run = OptimizationRun.objects.get(pk=run.pk)
        return Response(s.RunSerializer(run).data, status=status.HTTP_201_CREATED)


@filtered(
    Filter("household", "household_id", "int", "Household id."),
    Filter(
        "status",
        "status",
        "str",
        "draft, pending_review, approved, rejected, withdrawn, exported, superseded.",
    ),
    Filter("scenario", "scenario", "str", "Scenario name."),
    Filter("requires_four_eyes", "requires_four_eyes", "bool", "Needs a compliance approval."),
)
class ProposalViewSet(FilterMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet[Any]):
    """Proposals and their workflow. POST stages a proposal from a run; the actions move it
    through its states (see docs/proposals.md). Each action accepts the ``version`` you
    reviewed and is refused with 409 when the proposal changed since."""

    def get_queryset(self) -> QuerySet[Any]:
        qs = proposals_visible(self.request.user).select_related("prepared_by", "decided_by")
        if self.action == "retrieve":
            qs = qs.prefetch_related(
                "trades__security", "trades__account", "approvals__approver", "edits__editor"
            )
        return qs.order_by("-pk")

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Any]]:
        return s.ProposalDetailSerializer if self.action == "retrieve" else s.ProposalSerializer

    def _proposal(self) -> Proposal:
        proposal: Proposal = self.get_object()
        return proposal

    def _done(self, proposal: Proposal, code: int = 200) -> Response:
        fresh = self.get_queryset().filter(pk=proposal.pk).first() or proposal
        return Response(
            s.ProposalDetailSerializer(fresh, context=self.get_serializer_context()).data,
            status=code,
        )

    @extend_schema(
        request=s.StageSerializer,
        responses={201: s.ProposalDetailSerializer, 409: s.RefusalSerializer},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = s.StageSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = runs_visible(request.user).filter(pk=data.validated_data["run"]).first()
        if run is None:
            raise Http404("No such run")
        try:
            proposal = wf.proposal_stage(run=run, actor=_actor(request))
        except wf.WorkflowError as exc:
            return _refusal(exc)
        self.action = "retrieve"
        return self._done(proposal, status.HTTP_201_CREATED)

    @extend_schema(
        request=s.VersionSerializer,
        responses={200: s.ProposalDetailSerializer, 409: s.RefusalSerializer},
    )
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str | None = None) -> Response:
        return self._transition(request, s.VersionSerializer, wf.proposal_submit)

    @extend_schema(
        request=s.ApproveSerializer,
        responses={200: s.ProposalDetailSerializer, 409: s.RefusalSerializer},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        return self._transition(request, s.ApproveSerializer, wf.proposal_approve, comment="")

    @extend_schema(
        request=s.RejectSerializer,
        responses={200: s.ProposalDetailSerializer, 409: s.RefusalSerializer},
    )
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        return self._transition(request, s.RejectSerializer, wf.proposal_reject, comment=None)

    @extend_schema(
        request=s.ApproveSerializer,
        responses={200: s.ProposalDetailSerializer, 409: s.RefusalSerializer},
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, pk: str | None = None) -> Response:
        return self._transition(request, s.ApproveSerializer, wf.proposal_withdraw, comment="")

    def _transition(
        self,
        request: Request,
        serializer: type[Any],
        service: Callable[..., Proposal],
        **defaults: str | None,
    ) -> Response:
        """Validate the body, call one workflow service, answer with the proposal or a 409.
        ``defaults`` names the extra fields the service takes (``None``: required)."""
        data = serializer(data=request.data)
        data.is_valid(raise_exception=True)
        extra = {
            name: data.validated_data[name]
            if default is None
            else data.validated_data.get(name, default)
            for name, default in defaults.items()
        }
        try:
            proposal = service(
                proposal=self._proposal(),
                actor=_actor(request),
                expected_version=data.validated_data.get("version"),
                **extra,
            )
        except wf.WorkflowError as exc:
            return _refusal(exc)
        return self._done(proposal)

    @extend_schema(
        request=s.EditInputSerializer,
        responses={
            200: s.ProposalDetailSerializer,
            400: s.RefusalSerializer,
            409: s.RefusalSerializer,
        },
    )
    @action(detail=True, methods=["post"])
    def edit(self, request: Request, pk: str | None = None) -> Response:
        data = s.EditInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changes = [
            wf.TradeChange(
                trade_id=c["trade"],
                shares=c.get("shares"),
                drop=c.get("drop", False),
                lots=dict(c.get("lots") or {}),
            )
            for c in data.validated_data["changes"]
        ]
        try:
            proposal = wf.proposal_edit(
                proposal=self._proposal(),
                actor=_actor(request),
                changes=changes,
                expected_version=data.validated_data.get("version"),
                note=data.validated_data.get("note", ""),
            )
        except wf.WorkflowError as exc:
            return _refusal(exc)
        return self._done(proposal)

    @extend_schema(
        request=s.VersionSerializer,
        responses={
            201: s.ProposalExportSerializer,
            200: s.ProposalExportSerializer,
            400: s.RefusalSerializer,
            409: s.RefusalSerializer,
        },
    )
    @action(detail=True, methods=["post"])
    def export(self, request: Request, pk: str | None = None) -> Response:
        """Export an approved proposal (PDF, trade files, memorandum, manifest): 201 with the
        export; 200 with the same export when it was already exported; 400 naming every order
        a custodian's rule refuses (nothing written)."""
        data = s.VersionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        proposal = self._proposal()
        expected = data.validated_data.get("version")
        existed = ProposalExport.objects.filter(proposal=proposal).exists()
        if not existed and expected is not None and expected != proposal.version:
            return _refusal(
                wf.VersionConflict(
                    f"Proposal {proposal.pk} is at version {proposal.version}, you saw version "
                    f"{expected}. Reload and try again."
                )
            )
        try:
            export = export_proposal(proposal=proposal, actor=_actor(request))
        except ExportRefused as exc:
            return Response({"detail": exc.message, "details": exc.problems}, status=400)
        except wf.WorkflowError as exc:
            return _refusal(exc)
        return Response(
            s.ProposalExportSerializer(export, context=self.get_serializer_context()).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )

    @extend_schema(responses={200: s.StaleSerializer})
    @action(detail=True, methods=["get"], url_path="stale-check")
    def stale_check(self, request: Request, pk: str | None = None) -> Response:
        """What changed in the book after the proposal's run (approval is refused if anything)."""
        changes = stale_changes(self._proposal())
        return Response({"stale": bool(changes), "changes": changes})


@filtered(Filter("proposal", "proposal_id", "int", "Proposal id."))
class ApprovalViewSet(FilterMixin, viewsets.ReadOnlyModelViewSet[Any]):
    """Approvals recorded on proposals (first and, under four-eyes, second)."""

    serializer_class = s.ApprovalSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return approvals_visible(self.request.user).select_related("approver").order_by("pk")


class TokenSerializer(serializers.Serializer[Any]):
    token = serializers.CharField()


class ObtainToken(ObtainAuthToken):
    """Exchange a username and password for an API token; shares the login lockout."""

    permission_classes = [AllowAny]

    @extend_schema(
        responses={200: TokenSerializer, 400: s.RefusalSerializer, 429: s.RefusalSerializer}
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        username = str(request.data.get("username", ""))
        if lockout.is_locked(request._request, username):
            return Response({"detail": lockout.locked_message(), "details": []}, status=429)
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            lockout.register_failure(request._request, username)
            return Response(
                {"detail": "Unable to log in with the credentials given.", "details": []},
                status=400,
            )
        user = serializer.validated_data["user"]
        lockout.register_success(user.username)
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


def api_docs(request: HttpRequest) -> HttpResponse:
    """The API reference, rendered server-side from the OpenAPI schema (no assets fetched)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = []
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            body = (op.get("requestBody") or {}).get("content", {}).get("application/json", {})
            operations.append(
                {
                    "path": path,
                    "method": method.upper(),
                    "summary": op.get("summary") or "",
                    "description": op.get("description") or "",
                    "parameters": op.get("parameters", []),
                    "request": (body.get("schema") or {}).get("$ref", "").rsplit("/", 1)[-1],
                    "responses": [
                        (
                            code,
                            (
                                (r.get("content") or {}).get("application/json", {}).get("schema")
                                or {}
                            )
                            .get("$ref", "")
                            .rsplit("/", 1)[-1],
                        )
                        for code, r in op.get("responses", {}).items()
                    ],
                }
            )
    components = []
    for name, comp in sorted(schema.get("components", {}).get("schemas", {}).items()):
        props = [
            {
                "name": prop,
                "type": spec.get("type") or spec.get("$ref", "").rsplit("/", 1)[-1] or "object",
                "format": spec.get("format", ""),
                "read_only": spec.get("readOnly", False),
                "required": prop in comp.get("required", []),
                "description": spec.get("description", ""),
            }
            for prop, spec in comp.get("properties", {}).items()
        ]
        components.append({"name": name, "properties": props, "enum": comp.get("enum", [])})
    return render(
        request,
        "portal/api_docs.html",
        {"info": schema.get("info", {}), "operations": operations, "components": components},
    )


@filtered(
    Filter("proposal", "export__proposal_id", "int", "Proposal id."),
    Filter("kind", "kind", "str", "File kind (rationale_pdf, schwab_trades, ...)."),
)
class ExportFileViewSet(FilterMixin, viewsets.ReadOnlyModelViewSet[Any]):
    """Exported files (metadata; ``download`` is the file's URL, identical bytes every time).
    A client sees only their household's client PDFs."""

    serializer_class = s.ExportFileSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return export_files_visible(self.request.user).select_related("export").order_by("pk")

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str | None = None) -> HttpResponse:
        """The file's stored bytes (identical on every download; ``X-Content-SHA256``)."""
        return stored_file_response(self.get_object(), _actor(request), inline_pdf=False)


@filtered(
    Filter("proposal", "proposal_id", "int", "Proposal id."),
    Filter("account", "account_id", "int", "Account id."),
)
class OrderMemorandumViewSet(FilterMixin, viewsets.ReadOnlyModelViewSet[Any]):
    """Order memoranda (SEC Rule 204-2(a)(3)), one per exported order. Firm staff only."""

    serializer_class = s.OrderMemorandumSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return (
            memoranda_visible(self.request.user)
            .select_related("recommended_by", "approved_by", "second_approved_by", "placed_by")
            .order_by("pk")
        )
