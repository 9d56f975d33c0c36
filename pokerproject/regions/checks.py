"""System checks that keep placement honest: every model declares it, no FK crosses databases,
every team lives on a shard this deployment knows."""

from django.apps import apps
from django.core import checks

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
