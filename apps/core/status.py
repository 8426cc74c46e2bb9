"""The model status page: which LLM backend serves this installation, and is it healthy."""

from __future__ import annotations

from django.shortcuts import redirect, render

from apps.jobs.services import create_job
from apps.teams.access import team_view
from apps.teams.models import Role
from workers.llm import describe


@team_view(Role.ADMIN)
def model_status(request):
    if request.method == "POST":  # send a test prompt through an LLM worker
        job = create_job(request.team, "llm_check", {}, user=request.user, title="Model check")
        return redirect("jobs:detail", team_slug=request.team.slug, pk=job.pk)
    info = describe()
    capabilities = sorted(info.get("capabilities", {}).items())
    return render(request, "core/model_status.html", {"info": info, "capabilities": capabilities})
