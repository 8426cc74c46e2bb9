from django.urls import path

from apps.api import ui

app_name = "api_keys"

urlpatterns = [
    path("new/", ui.create_key, name="create"),
    path("<int:pk>/revoke/", ui.revoke_key, name="revoke"),
]
