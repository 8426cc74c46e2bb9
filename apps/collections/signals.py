"""A person who leaves a team (or is removed) loses their collection grants there, so that
joining again does not bring back access an admin may since have forgotten."""

from __future__ import annotations

from django.db.models.signals import post_delete
from django.dispatch import receiver

from apps.collections.models import CollectionAccess
from apps.teams.models import Membership


@receiver(post_delete, sender=Membership, dispatch_uid="collections-drop-grants")
def drop_grants(sender, instance: Membership, **kwargs) -> None:
    CollectionAccess.objects.filter(collection__team_id=instance.team_id,
                                    user_id=instance.user_id).delete()
