"""Collection verbs: create, rename, restrict, grant and revoke access, delete, move a
document, upload into a collection. Callers have checked the team role (admins manage
collections); moves and uploads check write access here, through ``access``."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from apps.collections import access
from apps.collections.models import Collection, CollectionAccess, CollectionDocument
from apps.documents import services as documents

NAME_MAX = Collection._meta.get_field("name").max_length


class CollectionRefused(Exception):
    """Shown to the person as it is."""


def _name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise CollectionRefused("Give the collection a name.")
    if len(name) > NAME_MAX:
        raise CollectionRefused(f"A collection's name has at most {NAME_MAX} characters.")
    return name


def create(team, name: str, restricted: bool = False) -> Collection:
    try:
        with transaction.atomic():
            return Collection.objects.create(team=team, name=_name(name), restricted=restricted)
    except IntegrityError:
        raise CollectionRefused(f"The team already has a collection named “{name}”.") from None


def rename(collection: Collection, name: str) -> Collection:
    collection.name = _name(name)
    try:
        with transaction.atomic():
            collection.save(update_fields=["name"])
    except IntegrityError:
        raise CollectionRefused(f"The team already has a collection named “{name}”.") from None
    return collection


def set_restricted(collection: Collection, restricted: bool) -> Collection:
    collection.restricted = restricted
    collection.save(update_fields=["restricted"])
    return collection


def grant(collection: Collection, user, can_write: bool) -> CollectionAccess:
    """Give a member of the collection's team read (or read + write) access."""
    if not collection.team.memberships.filter(user=user).exists():
        raise CollectionRefused("Only members of the team can be given access.")
    row, _ = CollectionAccess.objects.update_or_create(
        collection=collection, user=user, defaults={"can_write": can_write})
    return row


def revoke(collection: Collection, user) -> None:
    collection.grants.filter(user=user).delete()


def delete(collection: Collection) -> None:
    """Only an empty collection: its documents would otherwise fall open to the team."""
    if collection.filings.exists():
        raise CollectionRefused(f"“{collection.name}” still holds documents: move or delete "
                                "them first.")
    collection.delete()


def move(team, who, document, collection: Collection | None) -> None:
    """Into ``collection`` (from ``target``; None: out of any). Needs write access to the
    document where it is; taking it out of every collection is for people, not for keys
    scoped to collections."""
    if not access.writable_documents(team, who).filter(pk=document.pk).exists():
        raise CollectionRefused("You cannot change this document (read access only).")
    if collection is None:
        if access.reader(team, who).key_id is not None:
            raise CollectionRefused("This API key is scoped to collections: choose one.")
        CollectionDocument.objects.filter(document=document).delete()
        return
    CollectionDocument.objects.update_or_create(document=document,
                                                defaults={"collection": collection})


def upload(team, who, user, uploaded, collection: Collection | None) -> documents.UploadOutcome:
    """``documents.upload`` into ``collection`` (from ``target``). A file already in the team
    stays where it is; one the uploader may not read is refused without its title."""
    if collection is None and access.reader(team, who).key_id is not None:
        raise documents.UploadRefused("This API key is scoped to collections: name the "
                                      "collection to upload into.", "collection_required")
    with transaction.atomic():  # the document is never seen outside its collection
        outcome = documents.upload(team, user, uploaded)
        if outcome.created and collection is not None:
            CollectionDocument.objects.create(document=outcome.document, collection=collection)
    if not outcome.created and not access.readable_documents(team, who).filter(
            pk=outcome.document.pk).exists():
        raise documents.UploadRefused(
            "This file is already in the team's library, in a collection you cannot read.",
            "duplicate_hidden", 409)
    return outcome


def target(team, who, value) -> Collection | None:
    """The collection a form or request names (its id) for an upload or a move, among those
    ``who`` may write to; None for no value. Refused alike whether it does not exist, is
    hidden, or is read-only to them."""
    if value in (None, "", UNFILED):
        return None
    try:
        pk = int(value)
    except (TypeError, ValueError):
        pk = None
    found = access.writable_collections(team, who).filter(pk=pk).first() if pk else None
    if found is None:
        raise CollectionRefused("No such collection, or you cannot add documents to it.")
    return found


UNFILED = "none"


def in_collection(documents, collections, chosen: str):
    """The library's filter: ``chosen`` a collection id among ``collections`` (those the
    person may read), UNFILED for documents in no collection, "" for all."""
    if chosen == UNFILED:
        return documents.filter(filing__isnull=True)
    try:
        pk = int(chosen)
    except (TypeError, ValueError):
        return documents
    return documents.filter(filing__collection__in=collections.filter(pk=pk))
