"""Route every query by the placement its model declares."""

from django.apps import apps
from django.db import models

from pokerproject.regions.placement import Placement, placement_of
from pokerproject.regions.registry import shard_aliases


class UnroutableQuery(RuntimeError):
    """A regional model was queried without naming its shard (use `.using(alias)`)."""


def _live_model_of(historical: type[models.Model] | None) -> type[models.Model] | None:
    """The live model that owns a historical model's table: a model moved to another app keeps
    its table (and its placement), so early migrations of its old app still find their shards."""
    if historical is None:
        return None
    table = historical._meta.db_table
    return next((m for m in apps.get_models() if m._meta.db_table == table), historical)


class PlacementRouter:
    def _route(self, model: type[models.Model], hints: dict) -> str:
        placement = placement_of(model)
        if placement is Placement.REGIONAL:
            instance = hints.get("instance")
            if instance is not None and instance._state.db:
                return instance._state.db
            raise UnroutableQuery(
                f"{model._meta.label} is regional: name the team's shard with .using(alias)"
            )
        return "default"

    def db_for_read(self, model: type[models.Model], **hints) -> str:
        return self._route(model, hints)

    def db_for_write(self, model: type[models.Model], **hints) -> str:
        return self._route(model, hints)

    def allow_relation(self, obj1: models.Model, obj2: models.Model, **hints) -> bool | None:
        # Relations exist only inside one database; a cross-database relation is a placement bug.
        return obj1._state.db == obj2._state.db

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints
    ) -> bool:
        if model_name is None:
            # Data migrations without a model hint run on the directory only.
            return db == "default"
        # Migrations pass historical models, which lack our class attributes: ask the live one.
        try:
            model: type[models.Model] | None = apps.get_model(app_label, model_name)
        except LookupError:
            model = _live_model_of(hints.get("model"))
        placement = placement_of(model) if model is not None else None
        if placement is Placement.REGIONAL:
            return db in shard_aliases()
        return db == "default"
