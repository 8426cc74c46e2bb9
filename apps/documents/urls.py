from django.urls import path

from apps.documents import views

app_name = "documents"

urlpatterns = [
    path("", views.library, name="library"),
    path("upload/", views.upload, name="upload"),
    path("search/", views.search, name="search"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/status/", views.status, name="status"),
    path("<int:pk>/delete/", views.delete, name="delete"),
    path("<int:pk>/reingest/", views.reingest, name="reingest"),
    path("<int:pk>/rename/", views.rename, name="rename"),
]
