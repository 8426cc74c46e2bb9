from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import include, path, reverse

from apps.core import views as core_views
from apps.teams import views as team_views

team_patterns = [
    path("", include("apps.teams.urls")),
    path("jobs/", include("apps.jobs.urls")),
    path("documents/", include("apps.documents.urls")),
    path("collections/", include("apps.collections.urls")),
    path("chat/", include("apps.chat.urls")),
    path("writing/", include("apps.writing.urls")),
    path("compress/", include("apps.compress.urls")),
    path("api-keys/", include("apps.api.ui_urls")),
    path("batches/", include("apps.api.batch_urls")),
]

def admin_login(request):
    """The admin signs in through the site's login, so that its rate limits (allauth, in the
    shared cache) apply: the admin's own form has none. Signed in without admin rights:
    403 (sending them to the login again would loop)."""
    if admin.site.has_permission(request):
        return redirect("admin:index")
    if request.user.is_authenticated:
        raise PermissionDenied
    return redirect_to_login(request.GET.get("next") or reverse("admin:index"))


urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),  # liveness: no I/O
    path("readyz", core_views.readyz, name="readyz"),  # readiness: database and broker
    path("accounts/", include("allauth.urls")),
    path("admin/login/", admin_login),  # before admin.site.urls, which has its own
    path("admin/", admin.site.urls),
    path("api/", include("apps.api.urls")),
    path("teams/new/", team_views.create_team, name="create_team"),
    path("invite/<str:token>/", team_views.accept_invitation, name="accept_invitation"),
    path("t/<slug:team_slug>/", include(team_patterns)),
]

admin.site.site_header = "Scriptorium administration"
admin.site.site_title = "Scriptorium admin"
