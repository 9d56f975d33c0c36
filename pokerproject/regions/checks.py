"""System checks that keep placement honest: every model declares it, no FK crosses databases,
every team lives on a shard this deployment knows."""

from django.apps import apps
from django.core import checks
from django.db import DatabaseError, models

from pokerproject.regions.placement import PROJECT_APP_LABELS, placement_of


@checks.register(checks.Tags.database, checks.Tags.models)
def check_placement(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for model in apps.get_models():
        placement = placement_of(model)
        if placement is None:
            if model._meta.app_label in PROJECT_APP_LABELS:
                errors.append(
                    checks.Error(
                        f"{model._meta.label} declares no placement.",
                        hint="Inherit GlobalModel or RegionalModel, or set `placement`.",
                        obj=model,
                        id="regions.E001",
                    )
                )
            continue
        for field in model._meta.get_fields():
            related = getattr(field, "related_model", None)
            if not field.is_relation or related is None or not field.concrete:
                continue
            if placement_of(related) != placement:
                errors.append(
                    checks.Error(
                        f"{model._meta.label}.{field.name} relates a {placement} model to a "
                        f"{placement_of(related)} one: no foreign key may cross databases.",
                        hint="Store the other side's id as a plain indexed integer.",
                        obj=model,
                        id="regions.E002",
                    )
                )
    return errors


@checks.register(checks.Tags.database)
def check_team_shards(app_configs=None, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """Teams homed on a shard missing from SHARD_URLS can't be served (their tables fail on
    every request). Runs where Django runs database checks (``migrate``, ``check --database
    default``), so a configuration that dropped a shard still in use is stopped at deploy."""
    from accounts.models import Team
    from pokerproject.regions import registry

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
