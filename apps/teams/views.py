from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.jobs.models import Status
from apps.teams import overview, services
from apps.teams.access import team_view
from apps.teams.forms import InvitationForm, RoleForm, TeamForm
from apps.teams.models import Role


@login_required
def create_team(request):
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        team = services.create_team(form.cleaned_data["name"], request.user)
        messages.success(request, f"Team “{team.name}” created. Invite your colleagues below.")
        return redirect("teams:settings", team_slug=team.slug)
    return render(request, "teams/create.html", {"form": form})


@team_view()
def dashboard(request):
    """The overview: the team's library, conversations and writing, and the first steps
    until the team has tried each of them."""
    team = request.team
    shown = overview.panels(team, request.membership)
    return render(request, "teams/dashboard.html", {
        "panels": shown, "done": {panel.name: panel.count > 0 for panel in shown},
        "first_steps": not all(panel.count for panel in shown),
        "has_ready_document": overview.has_ready_document(team, request.membership),
        "running": team.jobs.filter(status__in=[Status.QUEUED, Status.RUNNING]).count(),
        "member_count": team.memberships.count(),
    })


def _settings_context(request, **extra):
    team = request.team
    context = {
        "rename_form": TeamForm(initial={"name": team.name}),
        "invite_form": InvitationForm(),
        "memberships": team.memberships.select_related("user").order_by("user__email"),
        "invitations": team.invitations.select_related("created_by")[:50],
        "roles": Role.choices,
    }
    context.update(extra)
    return context


@team_view(write_minimum=Role.ADMIN)
def team_settings(request):
    if request.method == "POST":
        form = TeamForm(request.POST)
        if form.is_valid():
            services.rename_team(request.team, form.cleaned_data["name"])
            messages.success(request, "Team renamed.")
            return redirect("teams:settings", team_slug=request.team.slug)
        return render(request, "teams/settings.html",
                      _settings_context(request, rename_form=form), status=400)
    return render(request, "teams/settings.html", _settings_context(request))


@team_view(Role.ADMIN)
@require_POST
def create_invitation(request):
    form = InvitationForm(request.POST)
    if not form.is_valid():
        return render(request, "teams/settings.html",
                      _settings_context(request, invite_form=form), status=400)
    _, token = services.create_invitation(
        request.team, request.user, form.cleaned_data["role"], form.cleaned_data["email"]
    )
    link = request.build_absolute_uri(reverse("accept_invitation", args=[token]))
    return render(request, "teams/settings.html",
                  _settings_context(request, new_invite_link=link))


@team_view(Role.ADMIN)
@require_POST
def revoke_invitation(request, pk: int):
    invitation = get_object_or_404(request.team.invitations, pk=pk)
    services.revoke_invitation(invitation)
    messages.info(request, "Invitation withdrawn.")
    return redirect("teams:settings", team_slug=request.team.slug)


@team_view(Role.ADMIN)
@require_POST
def change_role(request, pk: int):
    target = get_object_or_404(request.team.memberships, pk=pk)
    form = RoleForm(request.POST)
    if form.is_valid():
        try:
            services.change_role(request.membership, target, form.cleaned_data["role"])
            messages.success(request, f"{target.user.display_name} is now {target.role}.")
        except services.TeamError as err:
            messages.error(request, str(err))
    else:
        messages.error(request, "Choose one of the listed roles.")
    return redirect("teams:settings", team_slug=request.team.slug)


def _revoked_note(count: int, who: str) -> str:
    """The API keys revoked with a membership, said where it ends."""
    if not count:
        return ""
    keys = "1 API key" if count == 1 else f"{count} API keys"
    return f" {keys} {who} made for this team {'was' if count == 1 else 'were'} revoked."


@team_view(Role.ADMIN)
@require_POST
def remove_member(request, pk: int):
    target = get_object_or_404(request.team.memberships.select_related("user"), pk=pk)
    try:
        revoked = services.remove_member(request.membership, target)
        messages.success(request, f"{target.user.display_name} was removed from the team."
                                  + _revoked_note(revoked, "they"))
    except services.TeamError as err:
        messages.error(request, str(err))
    return redirect("teams:settings", team_slug=request.team.slug)


@team_view()
@require_POST
def leave_team(request):
    try:
        revoked = services.leave_team(request.membership)
    except services.TeamError as err:
        messages.error(request, str(err))
        return redirect("teams:settings", team_slug=request.team.slug)
    request.session.pop("team_slug", None)
    messages.info(request, f"You left “{request.team.name}”." + _revoked_note(revoked, "you"))
    return redirect("home")


def accept_invitation(request, token: str):
    invitation = services.find_invitation(token)
    problem = services.invitation_problem(invitation)
    if problem:
        status = 410 if invitation else 404
        return render(request, "teams/invitation_invalid.html", {"problem": problem}, status=status)
    if not request.user.is_authenticated:
        return render(request, "teams/invitation.html", {"invitation": invitation})
    if request.method == "POST":
        try:
            membership = services.accept_invitation(token, request.user)
        except services.TeamError as err:
            return render(request, "teams/invitation_invalid.html", {"problem": str(err)},
                          status=410)
        messages.success(request, f"Welcome to “{membership.team.name}”.")
        return redirect("teams:dashboard", team_slug=membership.team.slug)
    return render(request, "teams/invitation.html", {"invitation": invitation})

