"""The Collections page (list; admins create, rename, restrict, grant, revoke, delete) and
moving a document between collections. Each view: resolve through the access helpers, call a
verb, answer with the collection's card (HTMX) or a redirect."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.collections import access, services
from apps.collections.services import CollectionRefused
from apps.teams.access import team_view
from apps.teams.models import Role


def _grantable(team):
    """Members and viewers: admins and owners read every collection anyway."""
    return team.memberships.filter(role__in=[Role.MEMBER, Role.VIEWER]).select_related(
        "user").order_by("user__email")


def _page(request, error: str = "", status: int = 200):
    team = request.team
    shown = access.readable_collections(team, request.membership).annotate(
        documents=Count("filings")).prefetch_related("grants__user")
    return render(request, "collections/list.html", {
        "collections": shown, "error": error,
        "members": _grantable(team),
    }, status=status)


def _card(request, collection, error: str = ""):
    """The collection's card for HTMX, else back to the page (with the error as a message)."""
    if request.htmx:
        collection = access.readable_collections(request.team, request.membership).annotate(
            documents=Count("filings")).get(pk=collection.pk)
        return render(request, "collections/list.html#collection", {
            "c": collection, "card_error": error,
            "members": _grantable(request.team),
        }, status=400 if error else 200)
    if error:
        messages.error(request, error)
    return redirect("collections:list", team_slug=request.team.slug)


@team_view(write_minimum=Role.ADMIN)
def collection_list(request):
    if request.method == "POST":
        try:
            services.create(request.team, request.POST.get("name", ""),
                            restricted=request.POST.get("restricted") == "on")
        except CollectionRefused as err:
            return _page(request, str(err), status=400)
        return redirect("collections:list", team_slug=request.team.slug)
    return _page(request)


def _collection(request, pk: int):
    return get_object_or_404(request.team.collections, pk=pk)


@team_view(Role.ADMIN)
@require_POST
def rename(request, pk: int):
    collection = _collection(request, pk)
    try:
        services.rename(collection, request.POST.get("name", ""))
    except CollectionRefused as err:
        collection.refresh_from_db()
        return _card(request, collection, str(err))
    return _card(request, collection)


@team_view(Role.ADMIN)
@require_POST
def restrict(request, pk: int):
    collection = services.set_restricted(_collection(request, pk),
                                         request.POST.get("restricted") == "on")
    return _card(request, collection)


@team_view(Role.ADMIN)
@require_POST
def grant(request, pk: int):
    collection = _collection(request, pk)
    member = request.team.memberships.filter(pk=_int(request.POST.get("member"))).first()
    if member is None:
        return _card(request, collection, "Choose a member of the team.")
    services.grant(collection, member.user, request.POST.get("access") == "write")
    return _card(request, collection)


@team_view(Role.ADMIN)
@require_POST
def revoke(request, pk: int, user_pk: int):
    collection = _collection(request, pk)
    services.revoke(collection, user_pk)
    return _card(request, collection)


@team_view(Role.ADMIN)
@require_POST
def delete(request, pk: int):
    collection = _collection(request, pk)
    try:
        services.delete(collection)
    except CollectionRefused as err:
        messages.error(request, str(err))
    else:
        messages.success(request, f"Collection “{collection.name}” deleted.")
    return redirect("collections:list", team_slug=request.team.slug)


@team_view(Role.MEMBER)
@require_POST
def move_document(request, pk: int):
    """Put a document into a collection (or none); back to where the form was."""
    document = get_object_or_404(access.readable_documents(request.team, request.membership),
                                 pk=pk)
    try:
        collection = services.target(request.team, request.membership,
                                     request.POST.get("collection"))
        services.move(request.team, request.membership, document, collection)
    except CollectionRefused as err:
        messages.error(request, str(err))
        return redirect("documents:detail", team_slug=request.team.slug, pk=document.pk)
    where = f"“{collection.name}”" if collection else "no collection"
    messages.success(request, f"“{document.title}” is now in {where}.")
    return redirect("documents:detail", team_slug=request.team.slug, pk=document.pk)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
