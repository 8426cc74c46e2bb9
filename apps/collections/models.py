"""Collections: a team's documents grouped, each group open to the whole team or restricted
to named members (read, or read and write). Who may read or write what is computed in one
place, ``apps.collections.access``."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Collection(models.Model):
    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="collections")
    name = models.CharField(max_length=80)
    # Restricted: only members granted access (and the team's admins and owners) see it.
    restricted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="unique_collection_name")
        ]

    def __str__(self) -> str:
        return self.name


class CollectionAccess(models.Model):
    """A member's access to a restricted collection: read, or read and write."""

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="grants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="collection_grants")
    can_write = models.BooleanField(default=False)

    class Meta:
        ordering = ["collection_id", "user_id"]
        constraints = [
            models.UniqueConstraint(fields=["collection", "user"], name="unique_collection_grant")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.collection} ({'write' if self.can_write else 'read'})"


class CollectionDocument(models.Model):
    """A document's collection: at most one (no row: the document is in no collection and
    the whole team may read it). Kept here so that the documents app knows nothing of it."""

    document = models.OneToOneField("documents.Document", on_delete=models.CASCADE,
                                    primary_key=True, related_name="filing")
    # RESTRICT: a collection with documents cannot be deleted (they would fall open to the
    # whole team); deleting the team deletes both.
    collection = models.ForeignKey(Collection, on_delete=models.RESTRICT, related_name="filings")

    def __str__(self) -> str:
        return f"{self.document_id} in {self.collection_id}"
