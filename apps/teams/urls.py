from django.urls import path

from apps.core.status import model_status
from apps.teams import usage_views, views

app_name = "teams"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("settings/", views.team_settings, name="settings"),
    path("settings/model/", model_status, name="model_status"),
    path("usage/", usage_views.usage, name="usage"),
    path("invitations/", views.create_invitation, name="invite"),
    path("invitations/<int:pk>/revoke/", views.revoke_invitation, name="revoke_invitation"),
    path("members/<int:pk>/role/", views.change_role, name="change_role"),
    path("members/<int:pk>/remove/", views.remove_member, name="remove_member"),
    path("leave/", views.leave_team, name="leave"),
]
