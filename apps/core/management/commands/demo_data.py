from __future__ import annotations

import os

from django.core.management.base import BaseCommand

from apps.accounts.models import User
from apps.teams.models import Membership, Role, Team
from apps.teams.services import create_team

DEMO_EMAIL = "demo@example.com"
DEMO_TEAM = "Demo team"


class Command(BaseCommand):
    help = "Create the demo user and team (idempotent) and print the login."

    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD", "scriptorium-demo")
        user = User.objects.filter(email=DEMO_EMAIL).first()
        if user is None:
            user = User.objects.create_user(DEMO_EMAIL, password, name="Demo User")
            self.stdout.write("Created the demo user.")
        team = Team.objects.filter(memberships__user=user, name=DEMO_TEAM).first()
        if team is None:
            team = create_team(DEMO_TEAM, user)
        Membership.objects.get_or_create(team=team, user=user, defaults={"role": Role.OWNER})
        self.stdout.write(self.style.SUCCESS(
            f"Demo login: {DEMO_EMAIL} / {password}  (team “{team.name}”)"
        ))
