"""Compare a team's finished rounds at home with the copies in every other region."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pokerproject.regions import registry
from replication.models import OutboxEntry
from replication.services import checksum, replica_payload
from rooms.game import FINISHED_STATUSES
from rooms.models import Round, RoundReplica
from rooms.services import round_copy_payload

if TYPE_CHECKING:
    from accounts.models import Team


@dataclass
class RegionDiff:
    region: str
    shard: str
    home_count: int
    copy_count: int
    missing: list[str] = field(default_factory=list)
    different: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return not (self.missing or self.different or self.extra)


def home_checksums(*, team: Team) -> dict[str, str]:
    rounds = (
        Round.objects.using(team.shard)
        .filter(team_id=team.pk, status__in=FINISHED_STATUSES)
        .select_related("story")
        .prefetch_related("votes")
    )
    return {str(r.pk): checksum(round_copy_payload(r)) for r in rounds}


def region_diffs(*, team: Team) -> list[RegionDiff]:
    """Per region, how its copies of the team's finished rounds differ from the originals. The
    home region is compared too: it must hold no copy at all (any is ``extra``)."""
    home = home_checksums(team=team)
    diffs = []
    for region in registry.regions():
        if region == team.region:
            for alias in registry.shards_in_region(region):
                strays = sorted(
                    str(pk)
                    for pk in RoundReplica.objects.using(alias)
                    .filter(team_id=team.pk)
                    .values_list("id", flat=True)
                )
                if strays:
                    diffs.append(
                        RegionDiff(
                            region=region,
                            shard=alias,
                            home_count=len(home),
                            copy_count=len(strays),
                            extra=strays,
                        )
                    )
            continue
        alias = registry.shard_for_team(team.pk, region)
        copies = {
            str(r.id): checksum(replica_payload(r))
            for r in RoundReplica.objects.using(alias).filter(team_id=team.pk)
        }
        diffs.append(
            RegionDiff(
                region=region,
                shard=alias,
                home_count=len(home),
                copy_count=len(copies),
                missing=sorted(k for k in home if k not in copies),
                different=sorted(k for k in home if k in copies and copies[k] != home[k]),
                extra=sorted(k for k in copies if k not in home),
            )
        )
    return diffs


def pending_count(*, team: Team) -> int:
    return (
        OutboxEntry.objects.using(team.shard)
        .filter(team_id=team.pk, delivered_at__isnull=True)
        .count()
    )
