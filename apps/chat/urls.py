from django.urls import path

from apps.chat import streams, views

app_name = "chat"

urlpatterns = [
    path("", views.conversation_list, name="list"),
    path("needle/", views.needle, name="needle"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/ask/", views.ask, name="ask"),
    path("<int:pk>/preview/", views.preview, name="preview"),
    path("<int:pk>/export.<str:fmt>", views.export, name="export"),
    path("<int:pk>/rename/", views.rename, name="rename"),
    path("<int:pk>/delete/", views.delete, name="delete"),
    path("<int:pk>/messages/<int:message_pk>/", views.message, name="message"),
    path("<int:pk>/messages/<int:message_pk>/retry/", views.retry, name="retry"),
    path("<int:pk>/messages/<int:message_pk>/stream/", streams.stream, name="stream"),
]
