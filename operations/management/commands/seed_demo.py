"""Create a demo team with a few members and stories, so a fresh install is playable at once.

In operations, above the directory and the backlog, because it fills both."""

import os

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts import services as account_services
from accounts.models import Membership, Team, User
from accounts.roles import Role
from stories import services as story_services

DEMO_STORIES = [
    ("DEMO-1", "Sign up with e-mail and password", "As a visitor I can create an account."),
    ("DEMO-2", "Reset a forgotten password", "A link by e-mail lets me choose a new password."),
    ("DEMO-3", "Export the backlog as CSV", "Facilitators can download every story and estimate."),
    ("DEMO-4", "Dark mode", "The app follows the system's colour scheme."),
]


class Command(BaseCommand):
    help = "Create (or keep) the demo users alice, bob and carol and their team 'Demo team'."

    def add_arguments(self, parser):
        parser.add_argument(
            "--password",
            default=os.environ.get("DEMO_PASSWORD", "poker-demo"),
            help="Password for the demo users (default: $DEMO_PASSWORD or 'poker-demo').",
        )

    def handle(self, *args, **options):
        password = options["password"]
        people = [("alice", Role.FACILITATOR), ("bob", Role.VOTER), ("carol", Role.OBSERVER)]
        users = {}
        with transaction.atomic(using="default"):
            for username, _ in people:
                # An address on the reserved example.com: invites, resets and session
                # summaries of the demo show on the console (the embedded EMAIL_URL).
                user, created = User.objects.get_or_create(
                    username=username,
                    defaults={
                        "first_name": username.capitalize(),
                        "email": f"{username}@example.com",
                    },
                )
                if created:
                    user.set_password(password)
                    user.save()
                users[username] = user
        team = Team.objects.filter(slug="demo").first()
        if team is None:
            team = account_services.team_create(name="Demo", creator=users["alice"])
            facilitator = Membership.objects.select_related("team").get(
                team=team, user=users["alice"]
            )
            for key, title, description in DEMO_STORIES:
                story_services.story_create(
                    membership=facilitator, title=title, description=description, external_key=key
                )
        for username, role in people:
            account_services.membership_add(team=team, user=users[username], role=role)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo team '{team.name}' (/teams/{team.slug}/): log in as alice (facilitator), "
                f"bob (voter) or carol (observer), password '{password}'."
            )
        )
