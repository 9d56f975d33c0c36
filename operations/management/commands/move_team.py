"""Move a team's stories, rounds and votes to another shard (or region)."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Team
from operations.moves import MoveError, team_move
from pokerproject.regions import registry


class Command(BaseCommand):
    help = (
        "Move a team to another shard: pause its live table, copy its data, switch the "
        "directory, delete the old rows, resume. Safe to rerun after an interruption."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("shard", help="the target shard alias (see SHARD_URLS)")

    def handle(self, *args, slug: str, shard: str, **options):
        team = Team.objects.filter(slug=slug).first()
        if team is None:
            raise CommandError(f"no team {slug!r}")
        # A rerun finishes a move whose directory entry may already point at the target.
        origin = team.moving_from or team.shard
        before = f"{registry.region_of(origin)}/{origin}"
        try:
            steps = team_move(
                team=team, target=shard, on_step=lambda name: self.stdout.write(f"  {name}: done")
            )
        except MoveError as exc:
            raise CommandError(str(exc)) from exc
        if not steps:
            self.stdout.write(f"{slug} is already on {shard}")
            return
        team.refresh_from_db()
        self.stdout.write(
            self.style.SUCCESS(f"{slug} moved from {before} to {team.region}/{team.shard}")
        )
