from django.contrib import admin
from django.urls import include, path

from apps.core import views as core_views
from apps.teams import views as team_views

team_patterns = [
    path("", include("apps.teams.urls")),
    path("jobs/", include("apps.jobs.urls")),
    path("documents/", include("apps.documents.urls")),
    path("chat/", include("apps.chat.urls")),
    path("writing/", include("apps.writing.urls")),
    path("compress/", include("apps.compress.urls")),
    path("api-keys/", include("apps.api.ui_urls")),
]

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("apps.api.urls")),
    path("teams/new/", team_views.create_team, name="create_team"),
    path("invite/<str:token>/", team_views.accept_invitation, name="accept_invitation"),
    path("t/<slug:team_slug>/", include(team_patterns)),
]

admin.site.site_header = "Scriptorium administration"
admin.site.site_title = "Scriptorium admin"
