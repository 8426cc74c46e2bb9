from django.urls import path

from apps.compress import views

app_name = "compress"

urlpatterns = [
    path("", views.index, name="index"),
    path("<int:pk>/", views.result, name="result"),
    path("<int:pk>/progress/", views.progress, name="progress"),
    path("<int:pk>/download/", views.download, name="download"),
]
