from django.urls import path

from apps.collections import views

app_name = "collections"

urlpatterns = [
    path("", views.collection_list, name="list"),
    path("<int:pk>/rename/", views.rename, name="rename"),
    path("<int:pk>/restrict/", views.restrict, name="restrict"),
    path("<int:pk>/grant/", views.grant, name="grant"),
    path("<int:pk>/revoke/<int:user_pk>/", views.revoke, name="revoke"),
    path("<int:pk>/delete/", views.delete, name="delete"),
    path("documents/<int:pk>/move/", views.move_document, name="move_document"),
]
