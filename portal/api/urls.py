from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from portal.api import views

router = DefaultRouter()
router.include_format_suffixes = False
router.register("households", views.HouseholdViewSet, basename="api-household")
router.register("accounts", views.AccountViewSet, basename="api-account")
router.register("lots", views.LotViewSet, basename="api-lot")
router.register("ips", views.InvestmentPolicyViewSet, basename="api-ips")
router.register("runs", views.RunViewSet, basename="api-run")
router.register("proposals", views.ProposalViewSet, basename="api-proposal")
router.register("approvals", views.ApprovalViewSet, basename="api-approval")
router.register("export-files", views.ExportFileViewSet, basename="api-export-file")
router.register("order-memoranda", views.OrderMemorandumViewSet, basename="api-order-memorandum")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", views.api_docs, name="api-docs"),
    path("auth/token/", views.ObtainToken.as_view(), name="api-token"),
    path("", include(router.urls)),
]
