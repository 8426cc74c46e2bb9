"""Team settings: the API keys card (list, create — the secret shown once — revoke)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.api import keys
from apps.api.models import Scope
from apps.teams.access import team_view
from apps.teams.models import Role


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="What uses it, e.g. “nightly QA run”.")
    write = forms.BooleanField(required=False, label="Write access",
                               help_text="Upload and delete documents, submit and cancel "
                                         "batches. Without it the key can only read.")
    collections = forms.ModelMultipleChoiceField(
        queryset=None, required=False, widget=forms.CheckboxSelectMultiple,
        label="Only these collections",
        help_text="None ticked: the whole team's documents. Ticked: the key reads (and "
                  "writes) only the documents in these collections.")

    def __init__(self, *args, team, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["collections"].queryset = team.collections.all()
        if not self.fields["collections"].queryset.exists():
            del self.fields["collections"]


@team_view(Role.ADMIN)
@require_POST
def create_key(request):
    form = ApiKeyForm(request.POST, team=request.team)
    if not form.is_valid():
        messages.error(request, "Give the key a name (at most 80 characters) and choose "
                                "among the team's collections.")
        return redirect("teams:settings", team_slug=request.team.slug)
    scopes = [Scope.READ] + ([Scope.WRITE] if form.cleaned_data["write"] else [])
    key, token = keys.create_key(request.team, request.user, form.cleaned_data["name"], scopes,
                                 collections=form.cleaned_data.get("collections") or ())
    # Rendered, not redirected: the secret must never sit in a URL or a session.
    response = render(request, "api/key_created.html", {"key": key, "token": token})
    response["Cache-Control"] = "no-store"
    return response


@team_view(Role.ADMIN)
@require_POST
def revoke_key(request, pk: int):
    key = get_object_or_404(request.team.api_keys, pk=pk)
    keys.revoke(key)
    messages.info(request, f"API key {key.prefix}… revoked; requests with it now get 401.")
    return redirect("teams:settings", team_slug=request.team.slug)
