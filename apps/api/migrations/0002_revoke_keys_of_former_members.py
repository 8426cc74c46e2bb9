"""Keys now end with their maker's membership; revoke those made by people who already left."""

from django.db import migrations
from django.db.models import Exists, OuterRef
from django.utils import timezone


def revoke_keys_of_former_members(apps, schema_editor):
    ApiKey = apps.get_model("api", "ApiKey")
    Membership = apps.get_model("teams", "Membership")
    member = Membership.objects.filter(team_id=OuterRef("team_id"),
                                       user_id=OuterRef("created_by_id"))
    ApiKey.objects.filter(revoked_at=None, created_by__isnull=False).exclude(
        Exists(member)).update(revoked_at=timezone.now())


class Migration(migrations.Migration):

    dependencies = [
        ("api", "0001_initial"),
        ("teams", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(revoke_keys_of_former_members, migrations.RunPython.noop),
    ]
