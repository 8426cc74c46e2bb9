from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.api import views

app_name = "api"

# The team is addressed by its slug; an API key works for its own team only.
team_patterns = [
    path("documents/", views.DocumentList.as_view(), name="documents"),
    path("documents/<int:pk>/", views.DocumentDetail.as_view(), name="document"),
    path("documents/<int:pk>/pages/<int:page>/", views.DocumentPage.as_view(),
         name="document_page"),
    path("questions/estimate/", views.QuestionEstimate.as_view(), name="question_estimate"),
    path("batches/", views.BatchList.as_view(), name="batches"),
    path("batches/<int:pk>/", views.BatchDetail.as_view(), name="batch"),
    path("batches/<int:pk>/cancel/", views.BatchCancel.as_view(), name="batch_cancel"),
    path("batches/<int:pk>/retry/", views.BatchRetry.as_view(), name="batch_retry"),
    path("batches/<int:pk>/results/", views.BatchResults.as_view(), name="batch_results"),
    path("batches/<int:pk>/results.jsonl", views.BatchResultsJsonl.as_view(),
         name="batch_results_jsonl"),
]

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("v1/teams/", views.TeamList.as_view(), name="teams"),
    path("v1/teams/<slug:slug>/", include(team_patterns)),
]
