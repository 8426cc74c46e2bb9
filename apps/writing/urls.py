from django.urls import path

from apps.writing import streams, views

app_name = "writing"

urlpatterns = [
    path("", views.project_list, name="list"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/progress/", views.progress, name="progress"),
    path("<int:pk>/stream/", streams.stream, name="stream"),
    path("<int:pk>/plan/", views.plan, name="plan"),
    path("<int:pk>/write/", views.write, name="write"),
    path("<int:pk>/source/", views.source, name="source"),
    path("<int:pk>/delete/", views.delete, name="delete"),
    path("<int:pk>/export.<str:fmt>", views.export, name="export"),
    path("<int:pk>/sections/add/", views.section_add, name="section_add"),
    path("<int:pk>/sections/<int:section_pk>/edit/", views.section_edit, name="section_edit"),
    path("<int:pk>/sections/<int:section_pk>/delete/", views.section_delete,
         name="section_delete"),
    path("<int:pk>/sections/<int:section_pk>/move/", views.section_move, name="section_move"),
    path("<int:pk>/sections/<int:section_pk>/regenerate/", views.regenerate,
         name="regenerate"),
    path("<int:pk>/sections/<int:section_pk>/rewrite-from/", views.rewrite_from,
         name="rewrite_from"),
]
