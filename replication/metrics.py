"""Replication figures for Prometheus, read from the shards at scrape time.

The copies are applied by Celery workers, which nobody scrapes; the outbox and the copies record
when each change committed and when it was applied, so any web process can report the lag.
"""

from datetime import timedelta

from django.db.models import Max, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from pokerproject import metrics
from pokerproject.regions import registry
from replication.models import OutboxEntry
from rooms.models import RoundReplica

WINDOW = timedelta(minutes=5)


class ReplicationCollector:
    def describe(self):
        # Named here so registering does not call collect(), which reads the databases.
        yield GaugeMetricFamily("poker_replication_pending", "", labels=["shard"])
        yield GaugeMetricFamily("poker_replication_oldest_pending_seconds", "", labels=["shard"])
        yield GaugeMetricFamily("poker_replication_lag_seconds", "", labels=["shard"])

    def collect(self):
        pending = GaugeMetricFamily(
            "poker_replication_pending", "Outbox rows not yet delivered", labels=["shard"]
        )
        oldest = GaugeMetricFamily(
            "poker_replication_oldest_pending_seconds",
            "Age of the oldest undelivered outbox row",
            labels=["shard"],
        )
        lag = GaugeMetricFamily(
            "poker_replication_lag_seconds",
            "Largest commit-to-copy lag of copies applied in the last five minutes",
            labels=["shard"],
        )
        now = timezone.now()
        for alias in registry.shard_aliases():
            try:
                rows = OutboxEntry.objects.using(alias).filter(delivered_at__isnull=True)
                summary = rows.aggregate(first=Min("created_at"))
                pending.add_metric([alias], rows.count())
                first = summary["first"]
                oldest.add_metric([alias], (now - first).total_seconds() if first else 0.0)
                recent = RoundReplica.objects.using(alias).filter(applied_at__gte=now - WINDOW)
                lag.add_metric([alias], recent.aggregate(m=Max("lag_seconds"))["m"] or 0.0)
            except Exception:  # noqa: S112 - a shard that is down must not break the scrape
                continue
        yield pending
        yield oldest
        yield lag


def register() -> None:
    metrics.register_scrape_collector(ReplicationCollector())
