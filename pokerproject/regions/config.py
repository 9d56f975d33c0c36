"""Parse the shard configuration. Imported by settings, so it must not import Django models."""

from dataclasses import dataclass


class ShardConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ShardSpec:
    alias: str
    region: str
    url: str


def parse_shard_urls(value: str) -> list[ShardSpec]:
    """Parse ``alias@region=url,alias@region=url`` into shard specs.

    The alias names the database in DATABASES; the region groups shards for placement and
    replication. Aliases must be unique and must not be ``default`` (that is the directory).
    """
    shards: list[ShardSpec] = []
    for raw in value.split(","):
        item = raw.strip()
        if not item:
            continue
        head, sep, url = item.partition("=")
        alias, at, region = head.partition("@")
        alias, region, url = alias.strip(), region.strip(), url.strip()
        if not sep or not at or not alias or not region or not url:
            raise ShardConfigError(
                f"SHARD_URLS entry {item.split('=')[0]!r} is not alias@region=url"
            )
        if alias == "default":
            raise ShardConfigError("SHARD_URLS may not use the alias 'default'")
        if any(s.alias == alias for s in shards):
            raise ShardConfigError(f"SHARD_URLS names the alias {alias!r} twice")
        shards.append(ShardSpec(alias=alias, region=region, url=url))
    if not shards:
        raise ShardConfigError("SHARD_URLS names no shard")
    return shards
