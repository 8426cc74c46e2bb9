"""The model status page: which LLM backend serves this installation, and is it healthy;
and the two test jobs: a prompt through an LLM worker, and the word-count demo that shows
the job system (queue, worker, live progress) without a model."""

from __future__ import annotations

from django.shortcuts import redirect, render

from apps.jobs.forms import WordStatsForm
from apps.jobs.services import create_job
from apps.teams.access import team_view
from apps.teams.models import Role
from workers.llm import describe


@team_view(Role.ADMIN)
def model_status(request):
    demo_form = WordStatsForm()
    if request.method == "POST" and request.POST.get("action") == "word_stats":
        demo_form = WordStatsForm(request.POST)
        if demo_form.is_valid():
            text = demo_form.cleaned_data["text"]
            job = create_job(request.team, "word_stats", {"text": text}, user=request.user,
                             title=f"Word statistics: {text[:60]}")
            return redirect("jobs:detail", team_slug=request.team.slug, pk=job.pk)
    elif request.method == "POST":  # send a test prompt through an LLM worker
        job = create_job(request.team, "llm_check", {}, user=request.user, title="Model check")
        return redirect("jobs:detail", team_slug=request.team.slug, pk=job.pk)
    info = describe()
    capabilities = sorted(info.get("capabilities", {}).items())
    return render(request, "core/model_status.html",
                  {"info": info, "capabilities": capabilities, "demo_form": demo_form},
                  status=400 if demo_form.errors else 200)
