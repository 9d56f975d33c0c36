"""System checks of the directory: every team's home shard must be configured."""

from __future__ import annotations

from django.core import checks
from django.db import DatabaseError, models

from accounts.models import Team
from pokerproject.regions import registry


@checks.register(checks.Tags.database)
def check_team_shards(app_configs=None, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """Teams homed on a shard missing from SHARD_URLS can't be served (their tables fail on
    every request). Runs where Django runs database checks (``migrate``, ``check --database
    default``), so a configuration that dropped a shard still in use is stopped at deploy."""
    if not databases or "default" not in databases:
        return []
    known = set(registry.shard_aliases())
    try:
        orphans = list(
            Team.objects.exclude(shard__in=known)
            .values_list("shard")
            .annotate(teams=models.Count("pk"))
            .order_by("shard")
        )
    except DatabaseError:  # not migrated yet: no team to check
        return []
    return [
        checks.Error(
            f"{teams} team(s) live on shard {shard!r}, which SHARD_URLS does not define.",
            hint="Add it back to SHARD_URLS; to retire a shard, move its teams away first "
            "(manage.py move_team).",
            id="regions.E003",
        )
        for shard, teams in orphans
    ]
