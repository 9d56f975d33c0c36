"""The regions and shards of this deployment, and where a team is placed.

Read from settings on each call (never at import time) so tests can override SHARDS.
"""

import hashlib

from django.conf import settings

from pokerproject.regions.config import ShardSpec


class UnknownRegion(LookupError):
    pass


def shards() -> list[ShardSpec]:
    return list(settings.SHARDS)


def shard_aliases() -> list[str]:
    return [s.alias for s in settings.SHARDS]


def regions() -> list[str]:
    """Regions in configuration order, each once."""
    seen: dict[str, None] = {}
    for shard in settings.SHARDS:
        seen.setdefault(shard.region, None)
    return list(seen)


def home_region() -> str:
    """This deployment's region, or the first configured one if REGION names none of them."""
    known = regions()
    return settings.REGION if settings.REGION in known else known[0]


def shards_in_region(region: str) -> list[str]:
    aliases = [s.alias for s in settings.SHARDS if s.region == region]
    if not aliases:
        raise UnknownRegion(region)
    return aliases


def region_of(alias: str) -> str:
    for shard in settings.SHARDS:
        if shard.alias == alias:
            return shard.region
    raise UnknownRegion(alias)


def _weight(team_id: int, alias: str) -> int:
    digest = hashlib.blake2b(f"{team_id}:{alias}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def shard_for_team(team_id: int, region: str) -> str:
    """Pick a team's home shard within its region by rendezvous (highest-random-weight) hashing.

    Adding a shard to a region moves only the teams that now hash to it; the choice is recorded in
    the directory, so existing teams stay where they are until moved on purpose.
    """
    return max(shards_in_region(region), key=lambda alias: _weight(team_id, alias))
