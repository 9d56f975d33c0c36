"""Where a model's rows live.

Every model of this project declares ``placement``: GLOBAL rows live in the directory (`default`),
REGIONAL rows on the shard of the team that owns them. Django's own apps are global.
"""

from enum import StrEnum

from django.db import models


class Placement(StrEnum):
    GLOBAL = "global"
    REGIONAL = "regional"


# Django and third-party apps whose tables belong in the directory.
GLOBAL_APP_LABELS = frozenset(
    {
        "admin",
        "auth",
        "contenttypes",
        "sessions",
        "django_celery_beat",
        "django_prometheus",
        # django-axes' login attempts and lockouts: who may log in is the directory's business.
        "axes",
    }
)
PROJECT_APP_LABELS = frozenset(
    {"regions", "accounts", "stories", "rooms", "replication", "integrations", "notifications"}
)


def placement_of(model: type[models.Model]) -> Placement | None:
    declared = getattr(model, "placement", None)
    if declared is not None:
        return Placement(declared)
    if model._meta.app_label in GLOBAL_APP_LABELS:
        return Placement.GLOBAL
    return None


class GlobalModel(models.Model):
    """A row of the directory database."""

    placement = Placement.GLOBAL

    class Meta:
        abstract = True


class RegionalModel(models.Model):
    """A row that lives on its team's shard; always read and write it with an explicit alias."""

    placement = Placement.REGIONAL

    class Meta:
        abstract = True
