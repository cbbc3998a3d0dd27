from django.contrib import admin
from django.urls import path

from portal import views, views_imports

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
    path("admin/", admin.site.urls),
]
